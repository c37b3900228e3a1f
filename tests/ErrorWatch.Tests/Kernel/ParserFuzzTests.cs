using System.Globalization;
using ErrorWatch.Kernel;
using Xunit.Abstractions;
using static ErrorWatch.Tests.Kernel.EventBuilder;

namespace ErrorWatch.Tests.Kernel;

/// <summary>
/// Property-based and mutation fuzzing of the event parser (see <see cref="ParserFuzzer"/>). CI runs a
/// seeded set of 20,000 inputs; benchmarks/run-parser-fuzz.sh runs 1,000,000 or more through the same
/// test with ERRORWATCH_FUZZ_INPUTS (and ERRORWATCH_FUZZ_SEED, ERRORWATCH_FUZZ_REPORT for the counts).
/// </summary>
public class ParserFuzzTests(ITestOutputHelper output)
{
    private const int DefaultSeed = 20261121;
    private const long DefaultInputs = 20_000;

    /// <summary>Every fixture plus synthetic buffers for what the captures lack (README "Not covered").</summary>
    internal static List<byte[]> Corpus()
    {
        var fsid = new FilesystemId(0x44445555, 0x66667777);
        var corpus = Directory.GetFiles(TestPaths.FixturesDir, "*.bin").Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToList();
        corpus.Add(new EventBuilder()
            .Event().Fid(fsid, FileIdIno64Gen, Ino64Gen(1, 2)).Pidfd(5).Record(99, new byte[4]).Error(-5, 3)
            .Event(FanQOverflow)
            .Event(FanMntAttach).Mount(42)
            .Build());
        corpus.Add(new EventBuilder().Event().Error(117).Fid(fsid, FileIdIno32Gen, Ino32Gen(12, 7)).Build()); // reversed order
        corpus.Add(new EventBuilder().Event().Fid(fsid, 0x4d, new byte[128]).Error(int.MinValue, uint.MaxValue).Build());
        return corpus;
    }

    [Fact]
    public void MutatedAndGeneratedBuffers_HoldEveryPropertyFromGuardedMemory()
    {
        var inputs = long.TryParse(Environment.GetEnvironmentVariable("ERRORWATCH_FUZZ_INPUTS"), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : DefaultInputs;
        var seed = int.TryParse(Environment.GetEnvironmentVariable("ERRORWATCH_FUZZ_SEED"), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var s) ? s : DefaultSeed;

        using var fuzzer = new ParserFuzzer(seed, Corpus());
        var stats = fuzzer.Run(inputs, output.WriteLine);

        output.WriteLine($"seed={seed}");
        output.WriteLine(stats.ToString());
        if (Environment.GetEnvironmentVariable("ERRORWATCH_FUZZ_REPORT") is { Length: > 0 } report)
            File.WriteAllText(report, $"seed={seed}{Environment.NewLine}{stats}{Environment.NewLine}");
        Assert.Equal(inputs, stats.Inputs);
        Assert.Equal(2 * inputs, stats.GuardedParses);
        // The mix is what it claims: both kinds of input, clean and broken buffers, every problem kind reached.
        Assert.True(stats.Generated > inputs / 20 && stats.Mutated > inputs / 2);
        Assert.True(stats.CleanInputs > 0 && stats.FramingErrors > 0 && stats.EventsWithProblems > 0);
        Assert.True(stats.FastPathShaped > 0);
        Assert.Equal(0, stats.AllocatedBytesAfterWarmUp);
        foreach (var problem in Enum.GetValues<FanotifyProblem>().Where(p => p != FanotifyProblem.None))
            Assert.True(stats.Problems.ContainsKey(problem), $"no input reached {problem}");
    }

    [Fact]
    public void WellFormedGeneratedBuffers_ParseToExactlyTheirModel()
    {
        var random = new Random(DefaultSeed + 1);
        using var fuzzer = new ParserFuzzer(DefaultSeed + 1, Corpus());
        for (var i = 0; i < 2000; i++)
        {
            var model = ParserFuzzer.Generator.Events(random);
            var buffer = ParserFuzzer.Generator.Build(model);
            var parsed = ParsedBuffer.Parse(buffer);
            Assert.True(parsed.AtEnd, $"input {i}: {parsed.Error}");
            Assert.Equal(model.Count, parsed.Events.Count);
            for (var e = 0; e < model.Count; e++)
            {
                var m = model[e];
                var ev = parsed.Events[e];
                Assert.Equal(m.Mask, ev.Mask);
                Assert.Equal(m.Pid, ev.Pid);
                Assert.Equal(m.Records.Count, ev.RawRecords.Count);
                Assert.Equal(m.Records.Select(r => r.Type), ev.RawRecords.Select(r => r.Type));
                var fid = m.Records.FirstOrDefault(r => r.Type == 1);
                Assert.Equal(fid is not null, ev.HasFid);
                Assert.Equal(fid?.Handle ?? [], ev.Handle);
                Assert.Equal(fid?.HandleType ?? 0xff, ev.HandleType);
                var error = m.Records.FirstOrDefault(r => r.Type == 5);
                Assert.Equal(error?.Count ?? 0, ev.Error.Count);
                Assert.Equal(error is null ? 1u : Math.Max(error.Count, 1u), ev.ErrorCount);
            }
        }
    }

    [Fact]
    public void GuardPages_AreMappedWithoutAnyAccess()
    {
        using var memory = new GuardedMemory(10_000);
        var (leading, trailing) = memory.GuardPages;
        var maps = File.ReadAllLines("/proc/self/maps");

        Assert.Equal("---p", Permissions(maps, leading));
        Assert.Equal("---p", Permissions(maps, trailing));
        Assert.StartsWith("rw", Permissions(maps, leading + Environment.SystemPageSize));

        // Inputs end exactly at the trailing guard page, or start exactly after the leading one.
        byte[] input = [1, 2, 3];
        unsafe
        {
            fixed (byte* end = memory.AtEnd(input))
                Assert.Equal(trailing, (nint)(end + input.Length));
            fixed (byte* start = memory.AtStart(input))
                Assert.Equal(leading + Environment.SystemPageSize, (nint)start);
        }
    }

    [Fact]
    public void FastPathAndGeneralWalk_AgreeOnTheCanonicalLayoutAndItsNearMisses()
    {
        var fsid = new FilesystemId(1, 2);
        byte[][] buffers =
        [
            new EventBuilder().Event().Fid(fsid, FileIdIno32Gen, Ino32Gen(12, 7)).Error(117).Build(),                   // fast path
            new EventBuilder().Event().Fid(fsid, FileIdIno32Gen, Ino32Gen(12, 7)).Record(InfoError, new byte[8], 12).Build(),
            new EventBuilder().Event().Fid(fsid, FileIdIno32Gen, Ino32Gen(12, 7)).Record(InfoError, new byte[12], 16).Build(), // ERROR of 16
            new EventBuilder().Event().Fid(fsid, FileIdIno32Gen, Ino32Gen(12, 7), handleBytesField: 9).Error(117).Build(),  // handle past record
            new EventBuilder().Event().Fid(fsid, 0x4d, new byte[129]).Error(117).Build(),                               // handle > 128
            new EventBuilder().Event().Error(117).Fid(fsid, FileIdInvalid, []).Build(),                                  // reversed
            new EventBuilder().Event().Fid(fsid, FileIdInvalid, []).Error(117).Error(5).Build(),                         // extra record
        ];
        buffers[1][24 + 28 + 1] = 1; // ERROR header pad byte set: not the canonical header, same meaning

        foreach (var buffer in buffers)
        {
            var (expected, error) = ReferenceParser.Parse(buffer);
            var parsed = ParsedBuffer.Parse(buffer);
            Assert.Equal(error, parsed.Error);
            var x = Assert.Single(expected);
            var ev = parsed.Single();
            Assert.Equal(x.Problem, ev.Problem);
            Assert.Equal(x.Fid >= 0, ev.HasFid);
            Assert.Equal(x.Error >= 0, ev.HasError);
            Assert.Equal(x.Unknown, ev.UnknownCount);
        }
    }

    private static string Permissions(string[] maps, nint address)
    {
        foreach (var line in maps)
        {
            var parts = line.Split(' ', 3);
            var range = parts[0].Split('-');
            var from = nint.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var to = nint.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (address >= from && address < to)
                return parts[1];
        }
        return "unmapped";
    }
}
