using System.Buffers.Binary;
using System.Globalization;
using ErrorWatch.Reports;

namespace ErrorWatch.Store;

/// <summary>
/// One stored record as a query visits it: the report's exact JSON (what <c>errorwatch list --json</c>
/// prints), its time and where it ends in the store, and the typed report or its facts, read from
/// the JSON on demand (<see cref="ReportJson"/> reads it; nothing else parses the store).
/// </summary>
public readonly ref struct StoredRecord(ReadOnlySpan<byte> json, DateTimeOffset time, StorePosition end)
{
    public ReadOnlySpan<byte> Json { get; } = json;
    public DateTimeOffset Time { get; } = time;
    public StorePosition End { get; } = end;

    /// <exception cref="ReportFormatException">The record holds no report as ErrorWatch writes one.</exception>
    public CorruptionReport Report() => ReportJson.Read(Json);

    /// <exception cref="ReportFormatException">The record holds no report as ErrorWatch writes one.</exception>
    public ReportFacts Facts() => ReportJson.ReadFacts(Json, Time);
}

/// <summary>Visits one stored record; false stops the reading.</summary>
public delegate bool StoredRecordVisitor(in StoredRecord record);

/// <summary>What a query read: problems met (damage skipped, segments retention removed first), and whether its <see cref="ReportQuery.AfterId"/> was found in the store.</summary>
public sealed record QueryResult(IReadOnlyList<string> Problems, bool AfterIdFound);

/// <summary>
/// The store's query API, the one way anything reads stored reports: by id, since a time, after an
/// id, per filesystem (<see cref="ReportQuery"/>), and after a <see cref="StorePosition"/> for the
/// outputs that follow the store. It takes no lock (the daemon may be appending meanwhile): records
/// are whole once their length is on disk, and a torn last record is a write in progress.
/// <para>
/// Reading by id or from a time does not read the whole store: each segment's first record header
/// gives the time it starts at (one pread), and a UUIDv7 id carries its report's time, so only the
/// segments whose time span can hold it are read.
/// </para>
/// </summary>
public static class StoredReports
{
    /// <summary>
    /// Reports are appended nearly in time order (a finding's time may precede an event decoded just
    /// before it); a segment whose span is within this of a time is read too.
    /// </summary>
    private static readonly TimeSpan Slack = TimeSpan.FromSeconds(60);

    /// <summary>The stored report with this id, or null; damage met on the way is added to <paramref name="problems"/>.</summary>
    public static CorruptionReport? Find(string stateDirectory, string id, List<string> problems)
    {
        Locate(stateDirectory, Index(stateDirectory), id, problems, wantReport: true, out var report);
        return report;
    }

    /// <summary>
    /// Visits the matching reports oldest first, reading only the segments that can hold them.
    /// <see cref="ReportQuery.AfterId"/> means "stored after that report"; when the store no longer
    /// holds it (retention), the reports made after the time its id carries.
    /// </summary>
    public static QueryResult Query(string stateDirectory, ReportQuery query, StoredRecordVisitor visit)
    {
        var problems = new List<string>();
        var segments = Index(stateDirectory);
        if (segments.Count == 0)
            return new QueryResult(problems, false);
        var from = new StorePosition(segments[0].Number, 0);
        string? unfoundId = null;
        DateTimeOffset? unfoundTime = null;
        if (query.AfterId is { } afterId)
        {
            if (Locate(stateDirectory, segments, afterId, problems, wantReport: false, out _) is { } position)
                from = position;
            else
                (unfoundId, unfoundTime) = (afterId, IdTime(afterId));
        }
        // Segments wholly before the time asked for are not read.
        if (Later(query.Since, unfoundTime) is { } start)
            from = Max(from, new StorePosition(FirstSegmentFrom(segments, start), 0));
        ReadBatch(stateDirectory, from, EndOf(segments), int.MaxValue, (in StoredRecord record) =>
        {
            if (query.Since is { } s && record.Time < s)
                return true;
            if (unfoundId is not null && !After(record, unfoundId, unfoundTime))
                return true;
            return !query.Selects(record) || visit(record);
        }, problems);
        return new QueryResult(problems, query.AfterId is not null && unfoundId is null);

        static DateTimeOffset? Later(DateTimeOffset? a, DateTimeOffset? b) => a is { } x && b is { } y ? (x > y ? x : y) : a ?? b;

        // After an id the store no longer holds: made after the millisecond its id carries, or within it
        // with a greater id (the order ids give, random low bits, is all there is then).
        static bool After(in StoredRecord record, string id, DateTimeOffset? idTime)
        {
            if (idTime is { } t && record.Time.ToUnixTimeMilliseconds() != t.ToUnixTimeMilliseconds())
                return record.Time > t;
            try
            {
                return string.CompareOrdinal(record.Facts().Id, id) > 0;
            }
            catch (ReportFormatException)
            {
                return false;
            }
        }
    }

    /// <summary>
    /// Visits every whole record after <paramref name="after"/> up to the end of the store on disk:
    /// what an output whose <see cref="DeliveryCursor"/> stands there has not delivered.
    /// </summary>
    public static IReadOnlyList<string> ReadAfter(string stateDirectory, StorePosition after, StoredRecordVisitor visit)
    {
        var problems = new List<string>();
        if (EndOnDisk(stateDirectory) is { } end)
            ReadBatch(stateDirectory, after, end, int.MaxValue, visit, problems);
        return problems;
    }

    /// <summary>
    /// The end of the newest segment on disk, or null for an empty store: where the history ends when
    /// the store could not be opened for writing (<see cref="ReportStore.End"/> is null then).
    /// </summary>
    public static StorePosition? EndOnDisk(string stateDirectory)
    {
        var segments = ReportStore.SegmentFiles(Directory(stateDirectory)).ToList();
        return segments.Count == 0 ? null : EndOf(segments[^1].Number, segments[^1].Path);
    }

    /// <summary>Where a segment ends on disk now; null when it cannot be asked (removed meanwhile).</summary>
    private static StorePosition? EndOf(long number, string path)
    {
        try
        {
            return new StorePosition(number, new FileInfo(path).Length);
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The id of the newest stored report, or null for an empty store (the newest segment that holds one is read).</summary>
    public static string? NewestId(string stateDirectory, List<string> problems)
    {
        var segments = ReportStore.SegmentFiles(Directory(stateDirectory)).ToList();
        for (var i = segments.Count - 1; i >= 0; i--)
        {
            string? newest = null;
            var number = segments[i].Number;
            // Up to the segment's own end: a torn last record there is a write in progress, not damage.
            ReadBatch(stateDirectory, new StorePosition(number, 0), new StorePosition(number, long.MaxValue), int.MaxValue, (in StoredRecord record) =>
            {
                try
                {
                    newest = record.Facts().Id;
                }
                catch (ReportFormatException)
                {
                }
                return true;
            }, problems);
            if (newest is not null)
                return newest;
        }
        return null;
    }

    /// <summary>
    /// Visits at most <paramref name="maxRecords"/> whole records after <paramref name="after"/> and not
    /// past <paramref name="upTo"/> (a <see cref="ReportStore.End"/>: every record before it is whole),
    /// oldest first, reading only from <paramref name="after"/> on: what an output that follows the store
    /// (Publishing/Otlp) sends next. Returns where the reading stopped, for the next call; damage is
    /// skipped to the next record and named in <paramref name="problems"/>, as are segments retention
    /// dropped before they were read.
    /// </summary>
    public static StorePosition ReadBatch(string stateDirectory, StorePosition after, StorePosition upTo, int maxRecords, StoredRecordVisitor visit, List<string> problems)
    {
        var at = after;
        var count = 0;
        var seen = false;
        var stopped = false;
        byte[] buffer = [];
        Span<byte> header = stackalloc byte[StoreRecord.HeaderSize];
        foreach (var (number, path) in ReportStore.SegmentFiles(Directory(stateDirectory)))
        {
            if (number < at.Segment)
                continue;
            if (number > upTo.Segment || count >= maxRecords || stopped)
                break;
            // Retention dropped what lies between (the reading fell 100,000 reports or 90 days behind).
            if (number > at.Segment + 1)
                problems.Add($"segment(s) {at.Segment + 1}..{number - 1} were removed by retention before they were read: their reports are missing here");
            else if (number == at.Segment + 1 && !seen && at.Offset > 0)
                problems.Add($"segment {at.Segment} was removed by retention before it was read to its end: reports after byte {at.Offset} may be missing here");
            seen = true;
            var from = number == at.Segment ? at.Offset : 0;
            Microsoft.Win32.SafeHandles.SafeFileHandle handle;
            try
            {
                handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                problems.Add($"{path}: unreadable: {e.Message}");
                at = new StorePosition(number + 1, 0);
                continue;
            }
            using (handle)
            {
                var end = number == upTo.Segment ? Math.Min(upTo.Offset, RandomAccess.GetLength(handle)) : RandomAccess.GetLength(handle);
                var pos = from;
                while (count < maxRecords && !stopped && pos + StoreRecord.HeaderSize <= end)
                {
                    if (RandomAccess.Read(handle, header, pos) < header.Length)
                        break;
                    var length = StoreRecord.HeaderSize + (long)BinaryPrimitives.ReadUInt32LittleEndian(header[4..]);
                    var magic = BinaryPrimitives.ReadUInt32LittleEndian(header) == StoreRecord.Magic && length <= StoreRecord.HeaderSize + StoreRecord.MaxPayload;
                    // The newest segment's last record, not whole yet: a write in progress (or a torn tail the
                    // next open cuts), not damage.
                    if (magic && pos + length > end && number == upTo.Segment)
                        break;
                    var why = magic ? $"length {length - StoreRecord.HeaderSize} runs past the end" : "no record magic";
                    if (magic && pos + length <= end)
                    {
                        if (buffer.Length < length)
                            buffer = new byte[Math.Max(length, 4096)];
                        var record = buffer.AsSpan(0, (int)length);
                        string? problem = "short read";
                        if (RandomAccess.Read(handle, record, pos) == length
                            && StoreRecord.TryRead(record, out var json, out var time, out _, out problem))
                        {
                            pos += length;
                            count++;
                            stopped = !visit(new StoredRecord(json, time, new StorePosition(number, pos)));
                            continue;
                        }
                        why = problem ?? why;
                    }
                    // Damage (rare): find the next whole record in what is left of the segment.
                    var rest = new byte[end - pos];
                    var read = RandomAccess.Read(handle, rest, pos);
                    var next = StoreRecord.FindMagic(rest.AsSpan(0, read), 1);
                    problems.Add($"{path}: damaged record at byte {pos} ({why}); {(next < 0 ? end - pos : next)} bytes skipped");
                    pos = next < 0 ? end : pos + next;
                }
                // A torn record at the end of an older segment: the next open of the store cuts it.
                if (!stopped && count < maxRecords && number < upTo.Segment && pos < end)
                    problems.Add($"{path}: {end - pos} bytes of a torn record at the end");
                at = new StorePosition(number, pos);
            }
        }
        return at;
    }

    private static string Directory(string stateDirectory) => Path.Combine(stateDirectory, ReportStore.DirectoryName);

    private readonly record struct SegmentStart(long Number, string Path, DateTimeOffset? FirstTime);

    /// <summary>Each segment with the time of its first record (one pread of its header; null when it is empty or damaged there).</summary>
    private static List<SegmentStart> Index(string stateDirectory)
    {
        var index = new List<SegmentStart>();
        Span<byte> header = stackalloc byte[StoreRecord.HeaderSize];
        foreach (var (number, path) in ReportStore.SegmentFiles(Directory(stateDirectory)))
        {
            DateTimeOffset? first = null;
            try
            {
                using var file = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                if (RandomAccess.Read(file, header, 0) == header.Length && BinaryPrimitives.ReadUInt32LittleEndian(header) == StoreRecord.Magic)
                    first = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(BinaryPrimitives.ReadInt64LittleEndian(header[12..]), 0, 253402300799999));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
            index.Add(new SegmentStart(number, path, first));
        }
        return index;
    }

    private static StorePosition EndOf(List<SegmentStart> segments) =>
        EndOf(segments[^1].Number, segments[^1].Path) ?? new StorePosition(segments[^1].Number, long.MaxValue);

    /// <summary>
    /// The first segment that can hold a report of <paramref name="time"/> or later: the last one that
    /// starts before it (by more than <see cref="Slack"/>: the segments before it end before that time).
    /// The first segment when the starts go back in time by more than that (the clock was set back):
    /// order says nothing then.
    /// </summary>
    private static long FirstSegmentFrom(List<SegmentStart> segments, DateTimeOffset time)
    {
        if (Ordered(segments))
            for (var i = segments.Count - 1; i > 0; i--)
                if (segments[i].FirstTime is { } start && start < time - Slack)
                    return segments[i].Number;
        return segments[0].Number;
    }

    private static bool Ordered(List<SegmentStart> segments)
    {
        DateTimeOffset? previous = null;
        foreach (var s in segments)
        {
            if (s.FirstTime is not { } start)
                continue;
            if (previous is { } p && start < p - Slack)
                return false;
            previous = start;
        }
        return true;
    }

    /// <summary>
    /// Where the report with <paramref name="id"/> ends in the store (and, when <paramref name="wantReport"/>,
    /// the report), reading only the segments of <paramref name="segments"/> its time allows.
    /// </summary>
    private static StorePosition? Locate(string stateDirectory, List<SegmentStart> segments, string id, List<string> problems, bool wantReport, out CorruptionReport? report)
    {
        report = null;
        if (segments.Count == 0)
            return null;
        var needle = System.Text.Encoding.ASCII.GetBytes($"\"id\":\"{id}\"");
        var candidates = segments;
        if (IdTime(id) is { } time && Ordered(segments))
        {
            // The segments whose span (with Slack) holds the time, the one it falls in read first.
            DateTimeOffset? NextStart(int i) => i + 1 < segments.Count ? segments[i + 1].FirstTime : null;
            candidates = segments
                .Select((s, i) => (Segment: s, Next: NextStart(i), Last: i == segments.Count - 1))
                .Where(c => (c.Segment.FirstTime is not { } start || start <= time + Slack) && (c.Last || c.Next is not { } next || next >= time - Slack))
                .OrderByDescending(c => (c.Segment.FirstTime is not { } start || start <= time) && (c.Last || c.Next is not { } next || next > time))
                .Select(c => c.Segment)
                .ToList();
        }
        var end = EndOf(segments);
        StorePosition? found = null;
        CorruptionReport? match = null;
        foreach (var segment in candidates)
        {
            Search(segment);
            if (found is not null)
                break;
        }
        // An id of a time outside what the store spans (a clock set far off, an id made elsewhere) may
        // still be in it: only then is every other segment read.
        if (found is null && candidates != segments && IdTime(id) is { } idTime
            && (segments[0].FirstTime is { } oldest && idTime < oldest - Slack || idTime > DateTimeOffset.UtcNow + Slack))
        {
            foreach (var segment in segments.Except(candidates))
            {
                Search(segment);
                if (found is not null)
                    break;
            }
        }
        report = match;
        return found;

        void Search(SegmentStart segment)
        {
            var upTo = segment.Number == end.Segment ? end : new StorePosition(segment.Number, long.MaxValue);
            ReadBatch(stateDirectory, new StorePosition(segment.Number, 0), upTo, int.MaxValue, (in StoredRecord record) =>
            {
                // The id's bytes first (cheap), then the report itself says whether it is the one.
                if (record.Json.IndexOf(needle) < 0)
                    return true;
                try
                {
                    if (record.Facts().Id != id)
                        return true;
                    match = wantReport ? record.Report() : null;
                    found = record.End;
                    return false;
                }
                catch (ReportFormatException e)
                {
                    problems.Add($"segment {segment.Number}: a record naming {id} is not a report: {e.Message}");
                    return true;
                }
            }, problems);
        }
    }

    /// <summary>The time a UUIDv7 report id carries (its first 48 bits, Unix milliseconds); null for another kind of id.</summary>
    internal static DateTimeOffset? IdTime(string id)
    {
        if (id.Length != 36 || id[14] != '7'
            || !long.TryParse(string.Concat(id.AsSpan(0, 8), id.AsSpan(9, 4)), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var ms))
            return null;
        return DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(ms, 0, 253402300799999));
    }

    private static StorePosition Max(StorePosition a, StorePosition b) => a >= b ? a : b;
}

/// <summary>The store in <paramref name="stateDirectory"/> as the facts of its reports (<see cref="StoredReports"/> reads it).</summary>
public sealed class ReportHistory(string stateDirectory) : IReportHistory
{
    public bool FactsAfter(string? afterId, Action<ReportFacts> visit, List<string> problems)
    {
        var read = StoredReports.Query(stateDirectory, new ReportQuery { AfterId = afterId }, (in StoredRecord record) =>
        {
            ReportFacts facts;
            try
            {
                facts = record.Facts();
            }
            catch (ReportFormatException e)
            {
                problems.Add($"a stored report cannot be read back: {e.Message}");
                return true;
            }
            visit(facts);
            return true;
        });
        problems.AddRange(read.Problems);
        return afterId is null || read.AfterIdFound;
    }

    public string? NewestId(List<string> problems) => StoredReports.NewestId(stateDirectory, problems);
}
