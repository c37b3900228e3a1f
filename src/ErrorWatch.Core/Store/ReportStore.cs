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
    /// <summary>
    /// While the store cannot write (full, read-only, failing disk), reports are held in memory up to
    /// this many bytes of records; past it they are folded per filesystem into one report each.
    /// </summary>
    public long MaxHeldBytes { get; init; } = 16L << 20;
    /// <summary>How often a store that cannot write tries again (every append tries too).</summary>
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromSeconds(5);
}

/// <summary>Another ErrorWatch holds the store's lock: the one case where the daemon must not start.</summary>
public sealed class StoreLockedException(string message) : IOException(message);

/// <summary>
/// The durable record of every report, written before any output sees it. Reports are appended to
/// segment files (<c>reports/NNNNNNNNNN.log</c>) as checksummed records
/// (<see cref="StoreRecord"/>), one write(2) each, so a process killed at any moment leaves every
/// earlier record whole and at most a torn last one, which the next open detects, names and cuts
/// off. Retention drops whole old segments by count and age. One writer per directory (flock).
/// A store that cannot write (ENOSPC, EROFS, EIO: often the very filesystem being reported on) never
/// stops the daemon nor loses a report: records are held in memory (<see cref="StoreOptions.MaxHeldBytes"/>,
/// then folded per filesystem so their counts survive) and written, in order, as soon as a retry succeeds.
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
    private long _syncs;
    // Reports the store could not write yet, oldest first, and what no longer fitted, per filesystem.
    private readonly Queue<(byte[] Record, DateTimeOffset Time)> _held = new();
    private long _heldBytes;
    private readonly Dictionary<Filesystems.DeviceNumber, StoreOverflow> _overflow = new();
    private string? _failure;
    private long _failedSince;
    private readonly Timer _retryTimer;

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
        // Armed only while the store cannot write.
        _retryTimer = new Timer(_ => Retry(), null, Timeout.Infinite, Timeout.Infinite);
    }

    public string Directory => _directory;
    /// <summary>fdatasyncs begun on the timer so far: one per burst of appends, at most one per SyncInterval.</summary>
    public long Syncs => Interlocked.Read(ref _syncs);
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

    /// <summary>
    /// Reports held while the store could not write have just been written (on the retry timer or by an
    /// append, under the store's lock: a handler only wakes someone). Outputs that follow the store hear
    /// of them here, since no new report may come to tell them.
    /// </summary>
    public event Action? HeldWritten;

    /// <summary>Why the store cannot write now (reports are being held), or null when it writes.</summary>
    public string? Failure
    {
        get { lock (_lock) return _failure; }
    }

    /// <summary>Reports waiting in memory for the store to write again (folded ones count once each).</summary>
    public long HeldReports
    {
        get { lock (_lock) return _held.Count + _overflow.Values.Sum(o => o.Reports); }
    }

    /// <summary>
    /// Opens the store for writing: takes the lock, checks every segment, cuts a torn tail, applies
    /// retention. Only another writer (<see cref="StoreLockedException"/>) makes this throw; any other
    /// failure leaves a store that holds reports and keeps trying.
    /// </summary>
    public static ReportStore Open(string stateDirectory, StoreOptions options, ILogger log)
    {
        var store = new ReportStore(stateDirectory, options, log);
        try
        {
            store.OpenForWriting();
        }
        catch (StoreLockedException)
        {
            store.Dispose();
            throw;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            lock (store._lock)
                store.Fail(e.Message);
        }
        return store;
    }

    private void OpenForWriting()
    {
        AtomicFile.CreateDirectory(_directory);
        if (_lockFd < 0)
        {
            var lockFd = Libc.Open(System.IO.Path.Combine(_directory, LockName), Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, 0x180);
            if (lockFd < 0)
                throw new IOException($"cannot open the report store lock in {_directory}: {ErrnoTable.Name(Libc.LastErrno)}");
            if (Libc.Flock(lockFd, Libc.LOCK_EX | Libc.LOCK_NB) != 0)
            {
                var errno = Libc.LastErrno;
                Libc.Close(lockFd);
                throw new StoreLockedException($"another ErrorWatch is writing the report store {_directory} ({ErrnoTable.Name(errno)})");
            }
            _lockFd = lockFd;
        }

        _segments.Clear(); // a retry after a failed open starts over
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
    /// nothing); fdatasync follows within <see cref="StoreOptions.SyncInterval"/>. Never throws: a
    /// record the store cannot write is held until it can (see the class summary).
    /// </summary>
    /// <returns>Where the record ends in the store; null when it is held (not written yet).</returns>
    public StorePosition? Append(CorruptionReport report)
    {
        var record = StoreRecord.Encode(ReportJson.Utf8Of(report).Span, report.Time);
        lock (_lock)
        {
            // Held reports go first, so the store keeps the order reports were made in.
            if (_failure is not null && !TryRecover())
            {
                Hold(record, report);
                return null;
            }
            try
            {
                return AppendRecord(record, report.Time);
            }
            catch (IOException e)
            {
                Fail(e.Message);
                Hold(record, report);
                return null;
            }
        }
    }

    /// <summary>The end of the last record written (where the next one will start); null while the store is not open for writing.</summary>
    public StorePosition? End
    {
        get
        {
            lock (_lock)
                return _segments.Count == 0 || _fd < 0 || Libc.LSeek(_fd, 0, Libc.SEEK_END) is not (>= 0 and var end) ? null : new StorePosition(_segments[^1].Number, end);
        }
    }

    private StorePosition AppendRecord(byte[] record, DateTimeOffset time)
    {
        var segment = _segments[^1];
        if (segment.Records >= SegmentLimit)
        {
            var next = new Segment(segment.Number + 1, SegmentPath(segment.Number + 1));
            OpenSegment(next);
            _segments.Add(segment = next);
            ApplyRetention();
        }
        var end = WriteAll(record);
        segment.Records++;
        if (time > segment.Newest)
            segment.Newest = time;
        _unsynced = true;
        if (!_syncScheduled)
        {
            // SyncInterval after the last sync began, or at once when that is past: on the timer's
            // thread either way, never on the appending (decode) thread's way to the outputs.
            _syncScheduled = true;
            var due = _options.SyncInterval - Stopwatch.GetElapsedTime(_lastSync);
            _syncTimer.Change(due > TimeSpan.Zero ? due : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
        }
        return new StorePosition(segment.Number, end);
    }

    /// <summary>Writes the record at the segment's end; returns where it ends.</summary>
    private long WriteAll(byte[] record)
    {
        // A full disk can take part of a record: cut it off again, or every later record would follow damage.
        var end = Libc.LSeek(_fd, 0, Libc.SEEK_END);
        if (StoreRecord.Append(_fd, record) is var errno and not 0)
        {
            if (end >= 0)
                Libc.FTruncate(_fd, end);
            throw new IOException($"cannot write to the report store: {ErrnoTable.Name(errno)}");
        }
        return end + record.Length;
    }

    /// <summary>The store stopped writing: say so once, and keep trying on a timer.</summary>
    private void Fail(string reason)
    {
        if (_failure is null)
        {
            _failedSince = Stopwatch.GetTimestamp();
            _log.Error("Report store {Directory} cannot write ({Reason}); holding reports in memory (up to {Max} MiB, then folded per filesystem) and retrying every {Retry} s; every output still gets them",
                _directory, reason, _options.MaxHeldBytes >> 20, _options.RetryInterval.TotalSeconds);
        }
        _failure = reason;
        _retryTimer.Change(_options.RetryInterval, Timeout.InfiniteTimeSpan);
    }

    private void Hold(byte[] record, CorruptionReport report)
    {
        if (_heldBytes + record.Length <= _options.MaxHeldBytes)
        {
            _held.Enqueue((record, report.Time));
            _heldBytes += record.Length;
            return;
        }
        if (!_overflow.TryGetValue(report.Filesystem.MajorMinor, out var overflow))
        {
            _overflow.Add(report.Filesystem.MajorMinor, overflow = new StoreOverflow());
            if (_overflow.Count == 1)
                _log.Warning("Report store backlog is full ({Bytes} bytes held): further reports are folded per filesystem into one stored report each, their counts kept", _heldBytes);
        }
        overflow.Add(report);
    }

    private void Retry()
    {
        lock (_lock)
        {
            if (_failure is not null)
                TryRecover();
        }
    }

    /// <summary>Opens the store if it never opened, then writes what was held, oldest first. True when nothing is held any more.</summary>
    private bool TryRecover()
    {
        try
        {
            if (_fd < 0)
                OpenForWriting();
            var written = 0;
            while (_held.TryPeek(out var held))
            {
                AppendRecord(held.Record, held.Time);
                _held.Dequeue();
                _heldBytes -= held.Record.Length;
                written++;
            }
            var folded = 0L;
            foreach (var (device, overflow) in _overflow.ToList())
            {
                var report = overflow.ToReport(_failure ?? "unknown");
                AppendRecord(StoreRecord.Encode(ReportJson.Utf8Of(report).Span, report.Time), report.Time);
                _overflow.Remove(device);
                folded += overflow.Reports;
            }
            _log.Information("Report store {Directory} writes again after {Seconds:F0} s ({Reason}): wrote {Written} held report(s) and {Folded} folded into per-filesystem reports",
                _directory, Stopwatch.GetElapsedTime(_failedSince).TotalSeconds, _failure, written, folded);
            _failure = null;
            _retryTimer.Change(Timeout.Infinite, Timeout.Infinite);
            if (written + folded > 0)
                HeldWritten?.Invoke();
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _failure = e.Message;
            _retryTimer.Change(_options.RetryInterval, Timeout.InfiniteTimeSpan);
            return false;
        }
    }

    /// <summary>
    /// fdatasync of what was appended so far, outside the lock: a flush can take milliseconds on a busy
    /// disk, and appends (the decode thread's) go on meanwhile. A duplicate of the segment's descriptor
    /// is synced, as the segment may rotate (and its descriptor close) while the disk works.
    /// </summary>
    public void Sync()
    {
        int fd;
        lock (_lock)
        {
            _syncScheduled = false;
            if (!_unsynced || _fd < 0)
                return;
            _unsynced = false;
            _lastSync = Stopwatch.GetTimestamp();
            Interlocked.Increment(ref _syncs);
            fd = Libc.Dup(_fd);
            if (fd < 0)
            {
                // No descriptor to spare (EMFILE): sync this one, holding the lock as rotation would close it.
                Libc.FDataSync(_fd);
                return;
            }
        }
        try
        {
            Libc.FDataSync(fd);
        }
        finally
        {
            Libc.Close(fd);
        }
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
        _retryTimer.Dispose();
        lock (_lock)
        {
            if (_failure is not null && !TryRecover())
                _log.Error("Report store {Directory} still cannot write ({Reason}): {Held} report(s) held in memory are lost from the store at exit (every output had them)",
                    _directory, _failure, _held.Count + _overflow.Values.Sum(o => o.Reports));
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
