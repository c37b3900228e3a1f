using System.Buffers.Binary;
using System.Diagnostics;
using ErrorWatch.Interop;
using ErrorWatch.Reports;
using Serilog;

namespace ErrorWatch.Store;

public sealed record StoreOptions
{
    /// <summary>Reports kept at most; the oldest segments go first.</summary>
    public long MaxReports { get; init; } = 100_000;
    /// <summary>Reports older than this go (whole segments at a time).</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(90);
    /// <summary>Records per segment file before a new one is started.</summary>
    public int SegmentRecords { get; init; } = 10_000;
    /// <summary>How long a written record may wait for fdatasync (a crash of the process loses nothing; this bounds a power loss).</summary>
    public TimeSpan SyncInterval { get; init; } = TimeSpan.FromMilliseconds(200);
}

/// <summary>
/// The durable record of every report, written before any output sees it. Reports are appended to
/// segment files (<c>reports/NNNNNNNNNN.log</c>) as checksummed records
/// (<see cref="StoreRecord"/>), one write(2) each, so a process killed at any moment leaves every
/// earlier record whole and at most a torn last one, which the next open detects, names and cuts
/// off. Retention drops whole old segments by count and age. One writer per directory (flock).
/// </summary>
public sealed unsafe class ReportStore : IDisposable
{
    public const string DirectoryName = "reports";
    private const string LockName = ".lock";

    private readonly string _directory;
    private readonly StoreOptions _options;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly List<Segment> _segments = new();
    private int _fd = -1;
    private int _lockFd = -1;
    private long _lastSync;
    private bool _unsynced;
    private readonly Timer _syncTimer;
    private bool _syncScheduled;

    private sealed class Segment(long number, string path)
    {
        public long Number { get; } = number;
        public string Path { get; } = path;
        public int Records { get; set; }
        public DateTimeOffset Newest { get; set; } = DateTimeOffset.MinValue;
    }

    private ReportStore(string stateDirectory, StoreOptions options, ILogger log)
    {
        _directory = System.IO.Path.Combine(stateDirectory, DirectoryName);
        _options = options;
        _log = log;
        // One-shot, armed by a write: an idle store never wakes anyone.
        _syncTimer = new Timer(_ => Sync(), null, Timeout.Infinite, Timeout.Infinite);
    }

    public string Directory => _directory;
    public long Count
    {
        get
        {
            lock (_lock)
                return _segments.Sum(s => (long)s.Records);
        }
    }

    /// <summary>What was found wrong when opening (torn tail, damaged records), for the capability report.</summary>
    public IReadOnlyList<string> Problems { get; private set; } = [];

    /// <summary>Opens the store for writing: takes the lock, checks every segment, cuts a torn tail, applies retention.</summary>
    public static ReportStore Open(string stateDirectory, StoreOptions options, ILogger log)
    {
        var store = new ReportStore(stateDirectory, options, log);
        try
        {
            store.OpenForWriting();
        }
        catch
        {
            store.Dispose();
            throw;
        }
        return store;
    }

    private void OpenForWriting()
    {
        System.IO.Directory.CreateDirectory(_directory);
        _lockFd = Libc.Open(System.IO.Path.Combine(_directory, LockName), Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, 0x180);
        if (_lockFd < 0)
            throw new IOException($"cannot open the report store lock in {_directory}: {ErrnoTable.Name(Libc.LastErrno)}");
        if (Libc.Flock(_lockFd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
            throw new IOException($"another ErrorWatch is writing the report store {_directory} ({ErrnoTable.Name(Libc.LastErrno)})");

        var problems = new List<string>();
        foreach (var (number, path) in SegmentFiles(_directory))
        {
            var segment = new Segment(number, path);
            var scan = StoreRecord.Scan(path, (_, time, _) =>
            {
                segment.Records++;
                if (time > segment.Newest)
                    segment.Newest = time;
            });
            problems.AddRange(scan.Problems.Select(p => $"{path}: {p}"));
            if (scan.ValidLength < scan.FileLength)
            {
                // A torn last record: the process died inside one write(2). Cut it so appends follow a whole record.
                problems.Add($"{path}: torn record at byte {scan.ValidLength} of {scan.FileLength} cut off (the process stopped while writing it)");
                using var f = new FileStream(path, FileMode.Open, FileAccess.Write);
                f.SetLength(scan.ValidLength);
            }
            _segments.Add(segment);
        }
        foreach (var problem in problems)
            _log.Warning("Report store: {Problem}", problem);
        Problems = problems;
        if (_segments.Count == 0)
            _segments.Add(new Segment(1, SegmentPath(1)));
        OpenSegment(_segments[^1]);
        ApplyRetention();
    }

    private string SegmentPath(long number) => System.IO.Path.Combine(_directory, $"{number:D10}.log");

    internal static IEnumerable<(long Number, string Path)> SegmentFiles(string directory)
    {
        if (!System.IO.Directory.Exists(directory))
            return [];
        return System.IO.Directory.EnumerateFiles(directory, "*.log")
            .Select(p => (Ok: long.TryParse(System.IO.Path.GetFileNameWithoutExtension(p), out var n), n, p))
            .Where(x => x.Ok)
            .OrderBy(x => x.n)
            .Select(x => (x.n, x.p))
            .ToList();
    }

    private void OpenSegment(Segment segment)
    {
        if (_fd >= 0)
        {
            Libc.FDataSync(_fd);
            Libc.Close(_fd);
        }
        _fd = Libc.Open(segment.Path, Libc.O_WRONLY | Libc.O_CREAT | Libc.O_APPEND | Libc.O_CLOEXEC, 0x180);
        if (_fd < 0)
            throw new IOException($"cannot open {segment.Path}: {ErrnoTable.Name(Libc.LastErrno)}");
    }

    /// <summary>
    /// Appends one report. Returns when the record is in the kernel (a killed process loses
    /// nothing); fdatasync follows within <see cref="StoreOptions.SyncInterval"/>.
    /// </summary>
    public void Append(CorruptionReport report)
    {
        var record = StoreRecord.Encode(ReportJson.Utf8Of(report).Span, report.Time);
        lock (_lock)
        {
            var segment = _segments[^1];
            if (segment.Records >= SegmentLimit)
            {
                segment = new Segment(segment.Number + 1, SegmentPath(segment.Number + 1));
                _segments.Add(segment);
                OpenSegment(segment);
                ApplyRetention();
            }
            WriteAll(record);
            segment.Records++;
            if (report.Time > segment.Newest)
                segment.Newest = report.Time;
            _unsynced = true;
            if (Stopwatch.GetElapsedTime(_lastSync) >= _options.SyncInterval)
                SyncLocked();
            else if (!_syncScheduled)
            {
                _syncScheduled = true;
                _syncTimer.Change(_options.SyncInterval, Timeout.InfiniteTimeSpan);
            }
        }
    }

    private void WriteAll(byte[] record)
    {
        if (StoreRecord.Append(_fd, record) is var errno and not 0)
            throw new IOException($"cannot write to the report store: {ErrnoTable.Name(errno)}");
    }

    /// <summary>fdatasync now if anything is unsynced (the daemon calls it on a timer and at shutdown).</summary>
    public void Sync()
    {
        lock (_lock)
            SyncLocked();
    }

    private void SyncLocked()
    {
        _syncScheduled = false;
        if (!_unsynced || _fd < 0)
            return;
        Libc.FDataSync(_fd);
        _unsynced = false;
        _lastSync = Stopwatch.GetTimestamp();
    }

    /// <summary>A tenth of MaxReports at most, so dropping whole segments keeps at least 80% of the allowed reports.</summary>
    private int SegmentLimit => (int)Math.Clamp(_options.MaxReports / 10, 1, _options.SegmentRecords);

    /// <summary>
    /// Drops whole segments, oldest first, so that the store never holds more than MaxReports
    /// (counting the segment about to fill) nor segments older than MaxAge; never the one being written.
    /// </summary>
    private void ApplyRetention()
    {
        var total = _segments.Sum(s => (long)s.Records);
        var cutoff = DateTimeOffset.UtcNow - _options.MaxAge;
        var room = SegmentLimit - _segments[^1].Records;
        while (_segments.Count > 1)
        {
            var oldest = _segments[0];
            var tooMany = total + room > _options.MaxReports;
            var tooOld = oldest.Newest != DateTimeOffset.MinValue && oldest.Newest < cutoff;
            if (!tooMany && !tooOld)
                break;
            try
            {
                File.Delete(oldest.Path);
            }
            catch (IOException e)
            {
                _log.Warning("Report store: cannot remove old segment {Path}: {Reason}", oldest.Path, e.Message);
                break;
            }
            total -= oldest.Records;
            _segments.RemoveAt(0);
            _log.Information("Report store: removed {Path} ({Records} reports) by retention ({Why})", oldest.Path, oldest.Records, tooOld ? "age" : "count");
        }
    }

    public void Dispose()
    {
        _syncTimer.Dispose();
        lock (_lock)
        {
            if (_fd >= 0)
            {
                Libc.FDataSync(_fd);
                Libc.Close(_fd);
                _fd = -1;
            }
            if (_lockFd >= 0)
            {
                Libc.Close(_lockFd);
                _lockFd = -1;
            }
        }
    }
}

/// <summary>Reads a store without taking its lock (the daemon may be appending meanwhile).</summary>
public static class ReportStoreReader
{
    /// <summary>
    /// Visits every whole record, oldest first. A torn record at the very end of the newest segment
    /// is a write in progress (or a kill the next daemon start will cut), not damage.
    /// </summary>
    public static IReadOnlyList<string> Read(string stateDirectory, StoreRecord.RecordVisitor visit)
    {
        var directory = Path.Combine(stateDirectory, ReportStore.DirectoryName);
        var problems = new List<string>();
        var segments = ReportStore.SegmentFiles(directory).ToList();
        for (var i = 0; i < segments.Count; i++)
        {
            var scan = StoreRecord.Scan(segments[i].Path, visit);
            problems.AddRange(scan.Problems.Select(p => $"{segments[i].Path}: {p}"));
            if (scan.ValidLength < scan.FileLength && i < segments.Count - 1)
                problems.Add($"{segments[i].Path}: {scan.FileLength - scan.ValidLength} bytes of a torn record at the end");
        }
        return problems;
    }
}
