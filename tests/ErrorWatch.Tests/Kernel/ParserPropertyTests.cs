using FsCheck;
using FsCheck.Fluent;

namespace ErrorWatch.Tests.Kernel;

/// <summary>
/// FsCheck properties of the event parser, beside the seeded mutation fuzzer (ParserFuzzTests): FsCheck
/// generates the inputs and, when a property fails, shrinks the input to a small one and prints the seed
/// to replay it. Each input gets every check of <see cref="ParserFuzzer.CheckOne"/>: parsed from guarded
/// memory with the buffer against a guard page at either end (a read past it faults), the same events,
/// records and problem as the reference parser, and no allocation once warm.
/// </summary>
public class ParserPropertyTests
{
    // Fixed so CI is reproducible; FsCheck prints the (seed, gamma) of a failure for WithReplay.
    private static readonly Config Seeded = Config.QuickThrowOnFailure.WithReplay(20261121UL, 0x9E3779B97F4A7C15UL);

    [Fact]
    public void Any_bytes_parse_safely_and_as_the_reference_parser_says()
    {
        using var fuzzer = new ParserFuzzer(1, ParserFuzzTests.Corpus());
        var bytes = ArbMap.Default.GeneratorFor<byte>().ArrayOf().Select(b => b.Length > ParserFuzzer.MaxInput ? b[..ParserFuzzer.MaxInput] : b);
        Prop.ForAll(bytes.ToArbitrary(), input =>
        {
            fuzzer.CheckOne(input);
            return true;
        }).Check(Seeded.WithMaxTest(3000).WithEndSize(400));
    }

    /// <summary>A corpus buffer (the captured fixtures and synthetic ones) with byte edits, then cut or not: shrinking finds the fewest edits that break a property.</summary>
    [Fact]
    public void Edited_captures_parse_safely_and_as_the_reference_parser_says()
    {
        var corpus = ParserFuzzTests.Corpus();
        using var fuzzer = new ParserFuzzer(2, corpus);
        var edited =
            from index in Gen.Choose(0, corpus.Count - 1)
            from edits in Gen.Zip(Gen.Choose(0, int.MaxValue), ArbMap.Default.GeneratorFor<byte>()).ListOf()
            from cut in Gen.Frequency((3, Gen.Constant(-1)), (1, Gen.Choose(0, int.MaxValue)))
            select Edit(corpus[index], edits, cut);
        Prop.ForAll(edited.ToArbitrary(), input =>
        {
            fuzzer.CheckOne(input);
            return true;
        }).Check(Seeded.WithMaxTest(3000));
    }

    /// <summary>The length fields set to the values that break naive readers: 0, tiny, odd, just past the end, huge.</summary>
    [Fact]
    public void Length_fields_at_their_worst_parse_safely_and_as_the_reference_parser_says()
    {
        var corpus = ParserFuzzTests.Corpus();
        using var fuzzer = new ParserFuzzer(3, corpus);
        uint[] lengths = [0, 1, 3, 7, 23, 24, 25, 0xffff, 0x10000, 0x7fffffff, 0xffffffff];
        // event_len (u32 at 0), metadata_len (u16 at 6) and the first record's len (u16 at metadata_len + 2).
        var broken =
            from index in Gen.Choose(0, corpus.Count - 1)
            from field in Gen.Elements(0, 6, 26)
            from length in Gen.Elements(lengths)
            select SetLength(corpus[index], field, length);
        Prop.ForAll(broken.ToArbitrary(), input =>
        {
            fuzzer.CheckOne(input);
            return true;
        }).Check(Seeded.WithMaxTest(1000));
    }

    private static byte[] Edit(byte[] original, IEnumerable<(int Position, byte Value)> edits, int cut)
    {
        var bytes = original.ToArray();
        foreach (var (position, value) in edits)
            bytes[position % bytes.Length] = value;
        return cut < 0 ? bytes : bytes[..(cut % (bytes.Length + 1))];
    }

    private static byte[] SetLength(byte[] original, int at, uint length)
    {
        var bytes = original.ToArray();
        if (at == 0 && bytes.Length >= 4)
            BitConverter.TryWriteBytes(bytes.AsSpan(0, 4), length);
        else if (at + 2 <= bytes.Length)
            BitConverter.TryWriteBytes(bytes.AsSpan(at, 2), (ushort)length);
        return bytes;
    }
}
