using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using ErrorWatch.Kernel;

namespace ErrorWatch.Tests.Kernel;

/// <summary>A property the parser broke, with everything needed to replay it.</summary>
internal sealed class FuzzFailure(string message) : Exception(message);

/// <summary>Counts from one fuzz run, for the test output and docs/performance.md.</summary>
internal sealed class FuzzStats
{
    public long Inputs, Generated, Mutated, Bytes, Events, RawRecords, CleanInputs, FramingErrors, EventsWithProblems,
        FastPathShaped, GuardedParses, MaxInputBytes, AllocatedBytesAfterWarmUp, RuntimeAllocations;
    public readonly Dictionary<string, long> Mutations = new(StringComparer.Ordinal);
    public readonly Dictionary<FanotifyProblem, long> Problems = new();
    public TimeSpan Elapsed;

    public override string ToString()
    {
        var s = new StringBuilder();
        s.AppendLine($"inputs={Inputs} (generated well-formed={Generated}, mutated={Mutated}) bytes={Bytes} max_input={MaxInputBytes} B elapsed={Elapsed.TotalSeconds:F1} s ({Inputs / Math.Max(Elapsed.TotalSeconds, 1e-9):F0} inputs/s)");
        s.AppendLine($"guarded parses={GuardedParses} (each input twice: flush against a trailing and a leading PROT_NONE page)");
        s.AppendLine($"events={Events} raw records={RawRecords} FID+ERROR-shaped events={FastPathShaped}; inputs parsed to the end without any problem={CleanInputs}, with a framing error={FramingErrors}; events with a record problem={EventsWithProblems}");
        s.AppendLine($"bytes allocated by the parser after warm-up={AllocatedBytesAfterWarmUp} (parses during which the runtime allocated, not again on the same input: {RuntimeAllocations})");
        s.AppendLine("problems: " + string.Join(", ", Problems.OrderBy(p => p.Key).Select(p => $"{p.Key}={p.Value}")));
        s.Append("mutations: " + string.Join(", ", Mutations.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => $"{p.Key}={p.Value}")));
        return s.ToString();
    }
}

/// <summary>
/// Seeded, structure-aware fuzzer and property checker for <see cref="FanotifyEventReader"/> and
/// <see cref="EventRecords"/> (FsCheck cannot be restored here, so the generator is written out).
/// Each input is either a well-formed buffer generated from a model (property: the parser returns
/// exactly the model) or a fixture / generated buffer put through 1–4 mutations: bit flips,
/// truncations, length fields (event_len, metadata_len, record len, handle_bytes) set to 0, huge or
/// odd values, records reordered, duplicated or dropped, events swapped, buffers spliced, bytes
/// overwritten, inserted or cut. Every input is parsed twice from guarded memory
/// (<see cref="GuardedMemory"/>), flush against a PROT_NONE page after it and before it, and must:
/// not throw; finish (events ≤ length/24, records ≤ event_len/4, a watchdog for the rest); return
/// only spans inside the input; allocate nothing (after warm-up); agree field by field with
/// <see cref="ReferenceParser"/>. Deterministic for a seed: a failure names seed and iteration.
/// </summary>
internal sealed class ParserFuzzer : IDisposable
{
    public const int MaxInput = 128 * 1024;
    private const int WarmUpInputs = 2000;
    private static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(20);

    private readonly int _seed;
    private readonly Random _random;
    private readonly List<byte[]> _corpus;
    private readonly GuardedMemory _memory = new(MaxInput);
    private readonly Observed[] _observed = new Observed[MaxInput / ReferenceParser.MetadataLength + 2];
    private long _iteration;
    private byte[] _current = [];
    private long _started = Stopwatch.GetTimestamp();

    public ParserFuzzer(int seed, IEnumerable<byte[]> corpus)
    {
        _seed = seed;
        _random = new Random(seed);
        _corpus = corpus.ToList();
    }

    public FuzzStats Stats { get; } = new();

    /// <summary>Runs <paramref name="inputs"/> inputs; throws <see cref="FuzzFailure"/> at the first broken property.</summary>
    public FuzzStats Run(long inputs, Action<string>? progress = null)
    {
        var clock = Stopwatch.StartNew();
        using var watchdog = new Timer(_ => CheckForHang(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        for (_iteration = 0; _iteration < inputs; _iteration++)
        {
            Volatile.Write(ref _started, Stopwatch.GetTimestamp());
            if (_random.Next(8) == 0)
                RunGenerated();
            else
                RunMutated();
            if (progress is not null && (_iteration + 1) % 100_000 == 0)
                progress($"{_iteration + 1} inputs, {clock.Elapsed.TotalSeconds:F0} s");
        }
        Stats.Elapsed = clock.Elapsed;
        return Stats;
    }

    // ---- the two kinds of input ---------------------------------------------------------------------

    /// <summary>Property: a well-formed buffer parses to exactly the events and records it was generated from.</summary>
    private void RunGenerated()
    {
        var model = Generator.Events(_random);
        var input = Generator.Build(model);
        Stats.Generated++;
        Check(input, model);
    }

    private void RunMutated()
    {
        var input = PickBase();
        var mutations = _random.Next(1, 5);
        for (var m = 0; m < mutations; m++)
        {
            var (name, mutated) = Mutator.Apply(input, _random, _corpus);
            Count(Stats.Mutations, name);
            input = mutated.Length > MaxInput ? mutated[..MaxInput] : mutated;
        }
        Stats.Mutated++;
        Check(input, model: null);
    }

    private byte[] PickBase()
    {
        if (_random.Next(4) == 0)
            return Generator.Build(Generator.Events(_random));
        var original = _corpus[_random.Next(_corpus.Count)];
        if (original.Length <= 1024 || _random.Next(50) == 0)
            return original;
        // A window of the storm buffer: whole events most of the time, any bytes otherwise.
        var (events, _) = ReferenceParser.Parse(original);
        if (events.Count > 0 && _random.Next(4) != 0)
        {
            var first = _random.Next(events.Count);
            var last = Math.Min(events.Count - 1, first + _random.Next(16));
            return original[events[first].Offset..(events[last].Offset + events[last].Length)];
        }
        var start = _random.Next(original.Length);
        return original[start..Math.Min(original.Length, start + _random.Next(1, 1024))];
    }

    // ---- checking one input -------------------------------------------------------------------------

    /// <summary>Every check of one input (guarded parses at both ends, agreement with the reference parser, no
    /// allocation once warm): for inputs another generator made (ParserPropertyTests). Throws <see cref="FuzzFailure"/>.</summary>
    public void CheckOne(byte[] input) => Check(input, null);

    private void Check(byte[] input, List<Generator.Event>? model)
    {
        _current = input;
        Stats.Inputs++;
        Stats.Bytes += input.Length;
        Stats.MaxInputBytes = Math.Max(Stats.MaxInputBytes, input.Length);
        try
        {
            var expected = ReferenceParser.Parse(input);
            foreach (var trailingGuard in new[] { true, false })
            {
                var guarded = trailingGuard ? _memory.AtEnd(input) : _memory.AtStart(input);
                var before = GC.GetAllocatedBytesForCurrentThread();
                var count = ParsePass(guarded, out var error, out var atEnd, out var end);
                var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
                Stats.GuardedParses++;
                if (Stats.Inputs > WarmUpInputs && allocated != 0)
                {
                    // The JIT's tier-up (on-stack replacement, call counting) can allocate on the thread
                    // it happens on, when a loaded machine delays it past the warm-up: an allocation the
                    // same input does not make again is the runtime's. One the parser makes, it makes
                    // every time.
                    var again = long.MaxValue;
                    for (var retry = 0; retry < 3 && again != 0; retry++)
                    {
                        before = GC.GetAllocatedBytesForCurrentThread();
                        ParsePass(guarded, out _, out _, out _);
                        again = GC.GetAllocatedBytesForCurrentThread() - before;
                    }
                    if (again != 0)
                    {
                        Stats.AllocatedBytesAfterWarmUp += allocated;
                        Fail($"the parse allocated {allocated} bytes, and {again} again on the same input");
                    }
                    Stats.RuntimeAllocations++;
                }
                Compare(input, count, error, atEnd, end, expected, trailingGuard ? "trailing guard" : "leading guard");
            }
            if (model is not null)
                CompareWithModel(input, model, expected.Events.Count);
            Tally(input, expected);
        }
        catch (FuzzFailure)
        {
            throw;
        }
        catch (Exception e)
        {
            Fail($"exception escaped the parser or the checks: {e}");
        }
    }

    /// <summary>What the parser gave for one event, copied out without allocating.</summary>
    private struct Observed
    {
        public int Offset, BytesAt, BytesLength;
        public uint Length;
        public byte Version;
        public ushort MetadataLength;
        public ulong Mask;
        public int Fd, Pid;
        public bool IsOverflow, IsFsError, IsMountEvent;
        public int RawRecords;
        public FanotifyParseError WalkError;
        public bool RawSpanOutside;
        public bool HasFid, HasError, HasPidfd, HasMountId, IsWholeFilesystem;
        public FilesystemId Fsid;
        public int HandleType, HandleAt, HandleLength;
        public ErrorRecord Error;
        public uint ErrorCount;
        public int Pidfd;
        public ulong MountId;
        public int Unknown, RecordBytesAt, RecordBytesLength, RecordOffset;
        public FanotifyParseError Problem;
    }

    /// <summary>The parse under test: everything a consumer can ask, stored into preallocated structs.</summary>
    private int ParsePass(ReadOnlySpan<byte> buffer, out FanotifyParseError error, out bool atEnd, out int end)
    {
        ref var start = ref MemoryMarshal.GetReference(buffer);
        var reader = new FanotifyEventReader(buffer);
        var n = 0;
        while (reader.TryRead(out var ev))
        {
            if (n == _observed.Length)
                break; // more events than 24-byte events fit: reported by Compare
            ref var o = ref _observed[n++];
            o.Offset = ev.Offset;
            o.BytesAt = At(ref start, ev.Bytes);
            o.BytesLength = ev.Bytes.Length;
            o.Length = ev.Length;
            o.Version = ev.Version;
            o.MetadataLength = ev.MetadataLength;
            o.Mask = ev.Mask;
            o.Fd = ev.Fd;
            o.Pid = ev.Pid;
            o.IsOverflow = ev.IsOverflow;
            o.IsFsError = ev.IsFsError;
            o.IsMountEvent = ev.IsMountEvent;

            // The raw record walk, and every typed view of every record (EventDecoder uses them).
            var raw = 0;
            o.RawSpanOutside = false;
            var walker = ev.Records;
            while (walker.TryRead(out var rec))
            {
                if (++raw > ev.Bytes.Length / 4)
                    break; // a walk that does not advance: reported by Compare
                o.RawSpanOutside |= !Inside(ref start, buffer.Length, rec.Bytes) || rec.Length < 4 || rec.Type != rec.Bytes[0];
                if (rec.TryGetFid(out var fid, out _))
                    o.RawSpanOutside |= !Inside(ref start, buffer.Length, fid.Handle) || fid.Handle.Length > 128 || (fid.IsWholeFilesystem && fid.Handle.Length > 0 && fid.HandleType != 0xff);
                _ = rec.TryGetError(out var recordError) ? recordError.Errno : 0;
                _ = rec.TryGetPidfd(out var pidfd) ? pidfd : 0;
                _ = rec.TryGetMountId(out var mountId) ? mountId : 0;
            }
            o.RawRecords = raw;
            o.WalkError = walker.Error;

            var r = ev.ReadRecords();
            o.HasFid = r.HasFid;
            o.Fsid = r.Fsid;
            o.HandleType = r.HandleType;
            o.HandleAt = At(ref start, r.Handle);
            o.HandleLength = r.Handle.Length;
            o.HasError = r.HasError;
            o.Error = r.Error;
            o.ErrorCount = r.ErrorCount;
            o.HasPidfd = r.HasPidfd;
            o.Pidfd = r.Pidfd;
            o.HasMountId = r.HasMountId;
            o.MountId = r.MountId;
            o.Unknown = r.UnknownCount;
            o.RecordBytesAt = At(ref start, r.RecordBytes);
            o.RecordBytesLength = r.RecordBytes.Length;
            o.RecordOffset = r.RecordOffset;
            o.IsWholeFilesystem = r.IsWholeFilesystem;
            o.Problem = r.Problem;
        }
        error = reader.Error;
        atEnd = reader.AtEnd;
        end = reader.Offset;
        return n;
    }

    /// <summary>Offset of a span inside the buffer, or -1 for an empty span (which points nowhere in particular).</summary>
    private static int At(ref byte start, ReadOnlySpan<byte> part) =>
        part.IsEmpty ? -1 : (int)Math.Clamp((long)Unsafe.ByteOffset(ref start, ref MemoryMarshal.GetReference(part)), int.MinValue, int.MaxValue);

    private static bool Inside(ref byte start, int length, ReadOnlySpan<byte> part)
    {
        if (part.IsEmpty)
            return true;
        var at = (long)Unsafe.ByteOffset(ref start, ref MemoryMarshal.GetReference(part));
        return at >= 0 && at + part.Length <= length;
    }

    private void Compare(byte[] b, int count, FanotifyParseError error, bool atEnd, int end,
        (List<ReferenceEvent> Events, FanotifyParseError Error) expected, string placement)
    {
        if (count == _observed.Length)
            Fail($"[{placement}] more events than {b.Length} bytes can hold");
        Expect(count, expected.Events.Count, "events", placement);
        Expect(error, expected.Error, "framing error", placement);
        Expect(atEnd, !expected.Error.IsError, "AtEnd", placement);
        var expectedEnd = expected.Events.Count == 0 ? 0 : expected.Events[^1].Offset + expected.Events[^1].Length;
        Expect(end, expectedEnd, "reader offset", placement);

        for (var i = 0; i < count; i++)
        {
            ref var o = ref _observed[i];
            var x = expected.Events[i];
            var what = $"[{placement}] event {i} at {x.Offset}";
            Expect(o.Offset, x.Offset, what + " offset", "");
            Expect(o.BytesAt, x.Offset, what + " Bytes location", "");
            Expect(o.BytesLength, x.Length, what + " Bytes length", "");
            Expect(o.Length, (uint)x.Length, what + " event_len", "");
            Expect(o.Version, (byte)3, what + " version", "");
            Expect(o.MetadataLength, x.MetadataLength, what + " metadata_len", "");
            Expect(o.Mask, x.Mask, what + " mask", "");
            Expect(o.Fd, I32(b, x.Offset + 16), what + " fd", "");
            Expect(o.Pid, I32(b, x.Offset + 20), what + " pid", "");
            Expect(o.IsOverflow, (x.Mask & 0x4000) != 0, what + " IsOverflow", "");
            Expect(o.IsFsError, (x.Mask & 0x8000) != 0, what + " IsFsError", "");
            Expect(o.IsMountEvent, (x.Mask & 0x03000000) != 0, what + " IsMountEvent", "");
            if (o.RawSpanOutside)
                Fail($"{what}: a record or handle span from the raw walk lies outside the buffer or is inconsistent");
            Expect(o.RawRecords, x.RawRecords, what + " raw records", "");
            Expect(o.WalkError, x.WalkError, what + " raw walk error", "");

            Expect(o.HasFid, x.Fid >= 0, what + " HasFid", "");
            Expect(o.Fsid, x.Fid >= 0 ? new FilesystemId(I32(b, x.Fid + 4), I32(b, x.Fid + 8)) : default, what + " fsid", "");
            Expect(o.HandleType, x.Fid >= 0 ? I32(b, x.Fid + 16) : 0xff, what + " handle type", "");
            var handleLength = x.Fid >= 0 ? (int)U32(b, x.Fid + 12) : 0;
            Expect(o.HandleLength, handleLength, what + " handle length", "");
            Expect(o.HandleAt, handleLength > 0 ? x.Fid + 20 : -1, what + " handle location", "");
            Expect(o.IsWholeFilesystem, x.Fid < 0 || handleLength == 0 || I32(b, x.Fid + 16) == 0xff, what + " IsWholeFilesystem", "");
            Expect(o.HasError, x.Error >= 0, what + " HasError", "");
            Expect(o.Error, x.Error >= 0 ? new ErrorRecord(I32(b, x.Error + 4), U32(b, x.Error + 8)) : default, what + " error record", "");
            Expect(o.ErrorCount, x.Error >= 0 ? Math.Max(U32(b, x.Error + 8), 1u) : 1u, what + " ErrorCount", "");
            if (o.Error.Errno < 0)
                Fail($"{what}: negative Errno {o.Error.Errno}");
            Expect(o.HasPidfd, x.Pidfd >= 0, what + " HasPidfd", "");
            Expect(o.Pidfd, x.Pidfd >= 0 ? I32(b, x.Pidfd + 4) : 0, what + " pidfd", "");
            Expect(o.HasMountId, x.Mount >= 0, what + " HasMountId", "");
            Expect(o.MountId, x.Mount >= 0 ? BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(x.Mount + 8)) : 0, what + " mount id", "");
            Expect(o.Unknown, x.Unknown, what + " unknown records", "");
            var recordBytes = x.Length - x.MetadataLength;
            Expect(o.RecordBytesLength, recordBytes, what + " RecordBytes length", "");
            Expect(o.RecordBytesAt, recordBytes > 0 ? x.Offset + x.MetadataLength : -1, what + " RecordBytes location", "");
            Expect(o.RecordOffset, x.Offset + x.MetadataLength, what + " RecordOffset", "");
            Expect(o.Problem, x.Problem, what + " problem", "");
            // Every message must format (the daemon logs them).
            if (o.Problem.ToString().Length == 0)
                Fail($"{what}: empty problem text");
        }
        if (error.ToString().Length == 0)
            Fail($"[{placement}] empty framing error text");
    }

    /// <summary>Well-formed input: the parser must return the generator's model, not merely agree with the reference.</summary>
    private void CompareWithModel(byte[] b, List<Generator.Event> model, int parsedEvents)
    {
        Expect(parsedEvents, model.Count, "[generated] events", "");
        var offset = 0;
        for (var i = 0; i < model.Count; i++)
        {
            var m = model[i];
            ref var o = ref _observed[i];
            var what = $"[generated] event {i}";
            Expect(o.Offset, offset, what + " offset", "");
            Expect(o.Mask, m.Mask, what + " mask", "");
            Expect(o.Pid, m.Pid, what + " pid", "");
            var fid = m.Records.FirstOrDefault(r => r.Type == 1);
            var err = m.Records.FirstOrDefault(r => r.Type == 5);
            var pidfd = m.Records.FirstOrDefault(r => r.Type == 4);
            var mnt = m.Records.FirstOrDefault(r => r.Type == 7);
            var known = new[] { fid, err, pidfd, mnt }.Count(r => r is not null);
            Expect(o.HasFid, fid is not null, what + " HasFid", "");
            if (fid is not null)
            {
                Expect(o.Fsid, fid.Fsid, what + " fsid", "");
                Expect(o.HandleType, fid.HandleType, what + " handle type", "");
                if (!b.AsSpan(o.HandleAt < 0 ? 0 : o.HandleAt, o.HandleLength).SequenceEqual(fid.Handle))
                    Fail($"{what}: handle bytes differ from the generated handle");
            }
            Expect(o.HasError, err is not null, what + " HasError", "");
            if (err is not null)
            {
                Expect(o.Error, new ErrorRecord(err.RawError, err.Count), what + " error", "");
                Expect(o.Error.Errno, err.RawError == int.MinValue ? int.MaxValue : Math.Abs(err.RawError), what + " errno", "");
            }
            Expect(o.Pidfd, pidfd?.Pidfd ?? 0, what + " pidfd", "");
            Expect(o.MountId, mnt?.MountId ?? 0, what + " mount id", "");
            Expect(o.Unknown, m.Records.Count - known, what + " unknown", "");
            var problem = (m.Mask & 0x8000) == 0 ? FanotifyProblem.None
                : err is null ? FanotifyProblem.MissingErrorRecord
                : fid is null ? FanotifyProblem.MissingFidRecord
                : FanotifyProblem.None;
            Expect(o.Problem.Problem, problem, what + " problem", "");
            offset += (int)o.Length;
        }
        Expect(offset, b.Length, "[generated] bytes consumed", "");
    }

    private void Tally(byte[] input, (List<ReferenceEvent> Events, FanotifyParseError Error) expected)
    {
        Stats.Events += expected.Events.Count;
        var clean = !expected.Error.IsError;
        foreach (var ev in expected.Events)
        {
            Stats.RawRecords += ev.RawRecords;
            if (ev.Problem.IsError)
            {
                clean = false;
                Stats.EventsWithProblems++;
                Count(Stats.Problems, ev.Problem.Problem);
            }
            if (ev.RawRecords == 2 && ev.Fid == ev.Offset + ev.MetadataLength && ev.Error >= 0 && ev.Error + 12 == ev.Offset + ev.Length)
                Stats.FastPathShaped++;
        }
        if (expected.Error.IsError)
        {
            Stats.FramingErrors++;
            Count(Stats.Problems, expected.Error.Problem);
        }
        if (clean)
            Stats.CleanInputs++;
    }

    private static void Count<T>(Dictionary<T, long> counts, T key) where T : notnull =>
        counts[key] = counts.TryGetValue(key, out var n) ? n + 1 : 1;

    private void Expect<T>(T actual, T expected, string what, string placement)
    {
        if (!EqualityComparer<T>.Default.Equals(actual, expected))
            Fail($"{placement}{(placement.Length > 0 ? " " : "")}{what}: parser {actual}, reference {expected}");
    }

    private void Fail(string message) =>
        throw new FuzzFailure($"seed {_seed}, input {Stats.Inputs} (iteration {_iteration}): {message}{Environment.NewLine}input ({_current.Length} bytes): {Convert.ToHexString(_current)}");

    private void CheckForHang()
    {
        var running = Stopwatch.GetElapsedTime(Volatile.Read(ref _started));
        if (running > HangLimit)
            Environment.FailFast($"parser fuzz: seed {_seed}, iteration {_iteration} has run for {running.TotalSeconds:F0} s (hang); input {Convert.ToHexString(_current)}");
    }

    private static int I32(byte[] b, int at) => BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan(at));
    private static uint U32(byte[] b, int at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at));

    public void Dispose() => _memory.Dispose();

    // ---- generating well-formed buffers -------------------------------------------------------------

    internal static class Generator
    {
        internal sealed record Record(byte Type, byte[] Bytes)
        {
            public FilesystemId Fsid { get; init; }
            public int HandleType { get; init; }
            public byte[] Handle { get; init; } = [];
            public int RawError { get; init; }
            public uint Count { get; init; }
            public int Pidfd { get; init; }
            public ulong MountId { get; init; }
        }

        internal sealed record Event(ulong Mask, int Pid, List<Record> Records);

        private static readonly int[] Errnos = [117, 74, 108, 5, 28, -117, -74, -5, 0, 1, int.MaxValue, int.MinValue, -1];
        private static readonly uint[] Counts = [1, 1, 1, 2, 3, 600, 0, uint.MaxValue, 0x80000000];
        private static readonly int[] HandleTypes = [1, 1, 0xff, 0x81, 2, 0x82, 0x4d, 0, -1];

        public static List<Event> Events(Random random)
        {
            var events = new List<Event>();
            for (var n = random.Next(1, 9); n > 0; n--)
            {
                var mask = random.Next(10) switch
                {
                    < 6 => 0x8000UL,
                    6 => 0x4000UL,
                    7 => random.Next(2) == 0 ? 0x01000000UL : 0x02000000UL,
                    8 => 0x03000000UL,
                    _ => (ulong)random.NextInt64() | (random.Next(2) == 0 ? 0x8000UL : 0),
                };
                var records = new List<Record>();
                if (mask == 0x8000UL && random.Next(3) != 0)
                {
                    records.Add(Fid(random));
                    records.Add(Error(random));
                }
                else
                {
                    for (var r = random.Next(0, 6); r > 0; r--)
                    {
                        records.Add(random.Next(6) switch
                        {
                            0 => Fid(random),
                            1 => Error(random),
                            2 => Pidfd(random),
                            3 => Mount(random),
                            _ => Unknown(random),
                        });
                    }
                }
                events.Add(new Event(mask, random.Next(3) == 0 ? 0 : random.Next(), records));
            }
            return events;
        }

        private static Record Fid(Random random)
        {
            var type = HandleTypes[random.Next(HandleTypes.Length)];
            var length = type == 0xff ? 0 : random.Next(4) switch { 0 => 8, 1 => 12, 2 => 128, _ => random.Next(0, 129) };
            var handle = new byte[length];
            random.NextBytes(handle);
            var fsid = new FilesystemId(random.Next(), random.Next());
            var bytes = new byte[(20 + length + 3) & ~3];
            Header(bytes, 1);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), fsid.Val0);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), fsid.Val1);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(12), (uint)length);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(16), type);
            handle.CopyTo(bytes, 20);
            return new Record(1, bytes) { Fsid = fsid, HandleType = type, Handle = handle };
        }

        private static Record Error(Random random)
        {
            var error = random.Next(4) == 0 ? random.Next(int.MinValue, int.MaxValue) : Errnos[random.Next(Errnos.Length)];
            var count = random.Next(4) == 0 ? (uint)random.NextInt64(0, 1L << 32) : Counts[random.Next(Counts.Length)];
            var bytes = new byte[random.Next(5) == 0 ? 16 : 12]; // a longer record keeps its fixed part
            Header(bytes, 5);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), error);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), count);
            return new Record(5, bytes) { RawError = error, Count = count };
        }

        private static Record Pidfd(Random random)
        {
            var pidfd = random.Next(3) == 0 ? -1 : random.Next();
            var bytes = new byte[8];
            Header(bytes, 4);
            BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), pidfd);
            return new Record(4, bytes) { Pidfd = pidfd };
        }

        private static Record Mount(Random random)
        {
            var id = (ulong)random.NextInt64();
            var bytes = new byte[16];
            Header(bytes, 7);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(8), id);
            return new Record(7, bytes) { MountId = id };
        }

        private static Record Unknown(Random random)
        {
            byte[] types = [0, 2, 3, 6, 8, 10, 12, 99, 255];
            var bytes = new byte[4 + random.Next(0, 41)];
            random.NextBytes(bytes);
            Header(bytes, types[random.Next(types.Length)]);
            return new Record(bytes[0], bytes);
        }

        private static void Header(byte[] bytes, byte type)
        {
            bytes[0] = type;
            bytes[1] = 0;
            BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2), (ushort)bytes.Length);
        }

        public static byte[] Build(List<Event> events)
        {
            var output = new List<byte>();
            Span<byte> metadata = stackalloc byte[24];
            foreach (var ev in events)
            {
                var length = 24 + ev.Records.Sum(r => r.Bytes.Length);
                metadata.Clear();
                BinaryPrimitives.WriteUInt32LittleEndian(metadata, (uint)length);
                metadata[4] = 3;
                BinaryPrimitives.WriteUInt16LittleEndian(metadata[6..], 24);
                BinaryPrimitives.WriteUInt64LittleEndian(metadata[8..], ev.Mask);
                BinaryPrimitives.WriteInt32LittleEndian(metadata[16..], -1);
                BinaryPrimitives.WriteInt32LittleEndian(metadata[20..], ev.Pid);
                output.AddRange(metadata);
                foreach (var r in ev.Records)
                    output.AddRange(r.Bytes);
            }
            return output.ToArray();
        }
    }

    // ---- mutating buffers ---------------------------------------------------------------------------

    internal static class Mutator
    {
        private enum Field { EventLength, Version, MetadataLength, RecordType, RecordLength, HandleBytes, Errno }

        private readonly record struct Site(int Offset, int Width, Field Field);

        private readonly record struct Span(int Start, int Length);

        /// <summary>Where the fields are, found by a lenient walk (every plausible event and record, stopping where lengths stop making sense).</summary>
        private static (List<Site> Sites, List<Span> Events, List<(int Event, List<Span> Records)> Records) Layout(byte[] b)
        {
            var sites = new List<Site>();
            var events = new List<Span>();
            var records = new List<(int, List<Span>)>();
            var off = 0;
            while (b.Length - off >= 24)
            {
                var eventLength = (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(off)), int.MaxValue);
                var metadataLength = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(off + 6));
                sites.Add(new(off, 4, Field.EventLength));
                sites.Add(new(off + 4, 1, Field.Version));
                sites.Add(new(off + 6, 2, Field.MetadataLength));
                if (eventLength < 24 || eventLength > b.Length - off)
                    break;
                events.Add(new(off, eventLength));
                var list = new List<Span>();
                var p = off + Math.Clamp((int)metadataLength, 24, eventLength);
                var end = off + eventLength;
                while (end - p >= 4)
                {
                    var length = BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(p + 2));
                    sites.Add(new(p, 1, Field.RecordType));
                    sites.Add(new(p + 2, 2, Field.RecordLength));
                    if (b[p] == 1 && end - p >= 20)
                        sites.Add(new(p + 12, 4, Field.HandleBytes));
                    if (b[p] == 5 && end - p >= 12)
                        sites.Add(new(p + 4, 4, Field.Errno));
                    if (length < 4 || length > end - p)
                        break;
                    list.Add(new(p, length));
                    p += length;
                }
                records.Add((events.Count - 1, list));
                off += eventLength;
            }
            return (sites, events, records);
        }

        private static readonly long[] Interesting =
        [
            0, 1, 2, 3, 4, 5, 7, 8, 11, 12, 13, 15, 16, 19, 20, 21, 23, 24, 25, 27, 28, 31, 32, 127, 128, 129, 148, 255,
            0x7fff, 0x8000, 0xfffe, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
        ];

        public static (string Name, byte[] Output) Apply(byte[] input, Random random, List<byte[]> corpus)
        {
            var b = (byte[])input.Clone();
            if (b.Length == 0)
                return ("splice", corpus[random.Next(corpus.Count)]);
            var (sites, events, records) = Layout(b);
            switch (random.Next(14))
            {
                case 0:
                    for (var k = random.Next(1, 9); k > 0; k--)
                        b[random.Next(b.Length)] ^= (byte)(1 << random.Next(8));
                    return ("bit-flip", b);
                case 1:
                    return ("truncate", b[..random.Next(b.Length)]);
                case 2 when events.Count > 0:
                {
                    // Cut at an event boundary, or a few bytes either side of one.
                    var e = events[random.Next(events.Count)];
                    var at = Math.Clamp(e.Start + e.Length + random.Next(-8, 9), 0, b.Length);
                    return ("truncate-near-event-end", b[..at]);
                }
                case 3 or 4 or 5 when sites.Count > 0:
                {
                    var lengths = sites.Where(s => s.Field is Field.EventLength or Field.MetadataLength or Field.RecordLength or Field.HandleBytes).ToList();
                    if (lengths.Count == 0)
                        goto default;
                    var site = lengths[random.Next(lengths.Count)];
                    var original = site.Width == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(site.Offset)) : BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan(site.Offset));
                    long value = random.Next(4) switch
                    {
                        0 => Interesting[random.Next(Interesting.Length)],
                        1 => original + random.Next(-4, 5), // off by a little, odd or even
                        2 => original | 1,
                        _ => random.Next(2) == 0 ? b.Length - site.Offset + random.Next(-2, 3) : b.Length,
                    };
                    Write(b, site, value);
                    return ($"length-{site.Field}", b);
                }
                case 6 when records.Any(r => r.Records.Count >= 2):
                {
                    // Reorder the records of one event (event_len unchanged).
                    var candidates = records.Where(r => r.Records.Count >= 2).ToList();
                    var (_, list) = candidates[random.Next(candidates.Count)];
                    var start = list[0].Start;
                    var parts = list.Select(r => b.AsSpan(r.Start, r.Length).ToArray()).OrderBy(_ => random.Next()).ToList();
                    var p = start;
                    foreach (var part in parts)
                    {
                        part.CopyTo(b, p);
                        p += part.Length;
                    }
                    return ("reorder-records", b);
                }
                case 7 when events.Count >= 2:
                {
                    var i = random.Next(events.Count);
                    var j = random.Next(events.Count);
                    var pieces = events.Select(e => b.AsSpan(e.Start, e.Length).ToArray()).ToList();
                    (pieces[i], pieces[j]) = (pieces[j], pieces[i]);
                    var tail = events[^1].Start + events[^1].Length;
                    return ("reorder-events", [.. pieces.SelectMany(x => x), .. b.AsSpan(tail)]);
                }
                case 8 when records.Any(r => r.Records.Count > 0):
                {
                    // Duplicate a record into an event, growing event_len (or not, 1 in 4).
                    var withRecords = records.Where(r => r.Records.Count > 0).ToList();
                    var (ei, list) = withRecords[random.Next(withRecords.Count)];
                    var rec = list[random.Next(list.Count)];
                    var target = events[random.Next(events.Count)];
                    var insertAt = target.Start + target.Length;
                    var copy = b.AsSpan(rec.Start, rec.Length).ToArray();
                    var output = (byte[])[.. b.AsSpan(0, insertAt), .. copy, .. b.AsSpan(insertAt)];
                    if (random.Next(4) != 0)
                        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(target.Start), (uint)(target.Length + copy.Length));
                    return ("duplicate-record", output);
                }
                case 9 when records.Any(r => r.Records.Count > 0):
                {
                    var withRecords = records.Where(r => r.Records.Count > 0).ToList();
                    var (ei, list) = withRecords[random.Next(withRecords.Count)];
                    var rec = list[random.Next(list.Count)];
                    var output = (byte[])[.. b.AsSpan(0, rec.Start), .. b.AsSpan(rec.Start + rec.Length)];
                    if (random.Next(4) != 0)
                        BinaryPrimitives.WriteUInt32LittleEndian(output.AsSpan(events[ei].Start), (uint)(events[ei].Length - rec.Length));
                    return ("drop-record", output);
                }
                case 10:
                {
                    var other = corpus[random.Next(corpus.Count)];
                    var from = random.Next(other.Length + 1);
                    var piece = other.AsSpan(from, Math.Min(other.Length - from, random.Next(1, 512)));
                    var at = random.Next(2) == 0 && events.Count > 0 ? events[random.Next(events.Count)].Start : random.Next(b.Length + 1);
                    return ("splice", [.. b.AsSpan(0, at), .. piece, .. b.AsSpan(at)]);
                }
                case 11 when sites.Count > 0:
                {
                    var typed = sites.Where(s => s.Field is Field.RecordType or Field.Version or Field.Errno).ToList();
                    if (typed.Count == 0)
                        goto default;
                    var site = typed[random.Next(typed.Count)];
                    long value = site.Field switch
                    {
                        Field.RecordType => new long[] { 0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 255 }[random.Next(12)],
                        Field.Version => new long[] { 0, 2, 3, 4, 255 }[random.Next(5)],
                        _ => new long[] { 0, -1, -5, -117, int.MinValue, int.MaxValue, 117 }[random.Next(7)],
                    };
                    Write(b, site, value);
                    return ($"field-{site.Field}", b);
                }
                case 12:
                {
                    var from = random.Next(b.Length);
                    var count = random.Next(1, Math.Min(24, b.Length - from) + 1);
                    return ("cut-bytes", [.. b.AsSpan(0, from), .. b.AsSpan(from + count)]);
                }
                case 13:
                {
                    var extra = new byte[random.Next(1, 25)];
                    random.NextBytes(extra);
                    var at = random.Next(b.Length + 1);
                    return ("insert-bytes", [.. b.AsSpan(0, at), .. extra, .. b.AsSpan(at)]);
                }
                default:
                    for (var k = random.Next(1, 9); k > 0; k--)
                        b[random.Next(b.Length)] = (byte)random.Next(256);
                    return ("random-bytes", b);
            }
        }

        private static void Write(byte[] b, Site site, long value)
        {
            switch (site.Width)
            {
                case 4:
                    BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(site.Offset), unchecked((uint)value));
                    break;
                case 2:
                    BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(site.Offset), unchecked((ushort)value));
                    break;
                default:
                    b[site.Offset] = unchecked((byte)value);
                    break;
            }
        }
    }
}
