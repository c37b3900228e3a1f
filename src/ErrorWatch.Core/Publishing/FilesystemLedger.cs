using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Modules;
using ErrorWatch.Store;
using Serilog;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing;

/// <summary>What every output shows as a filesystem's badge, worst first wins (D-Bus Health, the health metric).</summary>
public enum FilesystemHealth : uint
{
    Ok = 0,
    /// <summary>Errors reported and not yet acknowledged.</summary>
    Errors = 1,
    /// <summary>The filesystem went read-only after an error (until it is mounted again).</summary>
    ReadOnly = 2,
    /// <summary>The filesystem shut down (until it is mounted again).</summary>
    ShutDown = 3,
}

/// <summary>One filesystem's standing at a moment: counts over its stored and live reports, and its health.</summary>
public sealed record FilesystemStatus
{
    public required string Key { get; init; }
    public Superblock? Superblock { get; init; }
    public ulong ErrorCount { get; init; }
    public long Reports { get; init; }
    public DateTimeOffset? FirstErrorTime { get; init; }
    public DateTimeOffset? LastErrorTime { get; init; }
    public string LastReportId { get; init; } = "";
    public FilesystemHealth Health { get; init; }
}

/// <summary>
/// Per filesystem, what its reports add up to (history from the store at start, then every report
/// published) and how it stands now: the one source of the D-Bus Filesystem properties and the
/// health metrics. Thread-safe: the decode thread records, outputs read from their own threads.
/// </summary>
public sealed class FilesystemLedger
{
    private readonly object _lock = new();
    private readonly Acknowledgements _acknowledgements;
    private readonly ILogger _log;
    private readonly Func<Superblock, MountErrorState>? _stateNow;
    private readonly Dictionary<string, Totals> _totals = new(StringComparer.Ordinal);
    private readonly Dictionary<DeviceNumber, Watched> _watched = new();
    private long _reports;
    private string _lastReportId = "";

    /// <param name="stateNow">Whether a mount went read-only or shut down, asked as it is watched (the filesystems' modules).</param>
    public FilesystemLedger(string? stateDirectory, ILogger log, Func<Superblock, MountErrorState>? stateNow = null)
    {
        _log = log;
        _stateNow = stateNow;
        _acknowledgements = new Acknowledgements(stateDirectory, log);
        if (stateDirectory is not null)
            LoadHistory(stateDirectory);
    }

    /// <summary>
    /// Identity across restarts for history and acknowledgements: UUID and device together,
    /// because clones share a UUID and loop devices are reused.
    /// </summary>
    public static string Key(string? uuid, string majorMinor) => ReportFacts.KeyOf(uuid, majorMinor);

    public static string Key(Superblock sb) => Key(sb.Uuid?.ToString(), sb.Device.ToString());

    public long ReportCount { get { lock (_lock) return _reports; } }
    public string LastReportId { get { lock (_lock) return _lastReportId; } }

    /// <summary>A filesystem is watched: its read-only/shut-down state starts with this mount (ext4 tells its current one).</summary>
    public void Watch(Superblock sb)
    {
        // A restart must not turn a shut-down filesystem green: its module says what state it is in now.
        var state = _stateNow?.Invoke(sb) switch
        {
            MountErrorState.ShutDown => FilesystemHealth.ShutDown,
            MountErrorState.ReadOnly => FilesystemHealth.ReadOnly,
            _ => FilesystemHealth.Ok,
        };
        lock (_lock)
            _watched[sb.Device] = new Watched(sb, Key(sb)) { State = state };
    }

    public void Unwatch(Superblock sb)
    {
        lock (_lock)
            _watched.Remove(sb.Device);
    }

    /// <summary>Counts a published report; returns its filesystem's standing after it.</summary>
    public FilesystemStatus Record(CorruptionReport report)
    {
        var facts = ReportFacts.Of(report);
        lock (_lock)
        {
            Add(facts);
            if (_watched.TryGetValue(report.Filesystem.MajorMinor, out var w))
            {
                var state = facts.Event switch
                {
                    "shutdown" => FilesystemHealth.ShutDown,
                    "readonly" => FilesystemHealth.ReadOnly,
                    _ => FilesystemHealth.Ok,
                };
                if (state > w.State)
                    w.State = state;
                return StatusOf(w);
            }
            return StatusOf(facts.FilesystemKey, null, FilesystemHealth.Ok);
        }
    }

    public FilesystemStatus? Status(DeviceNumber device)
    {
        lock (_lock)
            return _watched.TryGetValue(device, out var w) ? StatusOf(w) : null;
    }

    public IReadOnlyList<FilesystemStatus> WatchedStatus()
    {
        lock (_lock)
            return [.. _watched.Values.Select(StatusOf)];
    }

    /// <summary>
    /// Marks <paramref name="facts"/>' report and every earlier one of its filesystem as seen
    /// (durably); false when the acknowledgement could not be saved.
    /// </summary>
    public bool Acknowledge(ReportFacts facts)
    {
        lock (_lock)
            return _acknowledgements.Acknowledge(facts.FilesystemKey, facts.Id);
    }

    private void LoadHistory(string stateDirectory)
    {
        var problems = StoredReports.Query(stateDirectory, new ReportQuery(), (in StoredRecord record) =>
        {
            try
            {
                Add(record.Facts());
            }
            catch (ReportFormatException e)
            {
                _log.Warning("A stored report could not be counted: {Reason}", e.Message);
            }
            return true;
        }).Problems;
        // The store's open, just before, named the same damage (ReportStore.Problems): once is enough.
        foreach (var p in problems)
            _log.Debug("Report store, read for the totals: {Problem}", p);
    }

    private void Add(ReportFacts facts)
    {
        _reports++;
        if (string.CompareOrdinal(facts.Id, _lastReportId) > 0)
            _lastReportId = facts.Id;
        if (!_totals.TryGetValue(facts.FilesystemKey, out var t))
            _totals[facts.FilesystemKey] = t = new Totals();
        t.Reports++;
        t.ErrorCount += facts.Count;
        if (t.First is null || facts.Time < t.First)
            t.First = facts.Time;
        if (t.Last is null || facts.Time >= t.Last)
            t.Last = facts.Time;
        if (string.CompareOrdinal(facts.Id, t.LastReportId) > 0)
            t.LastReportId = facts.Id;
    }

    private FilesystemStatus StatusOf(Watched w) => StatusOf(w.Key, w.Superblock, w.State);

    private FilesystemStatus StatusOf(string key, Superblock? sb, FilesystemHealth state)
    {
        var t = _totals.GetValueOrDefault(key) ?? new Totals();
        var health = state != FilesystemHealth.Ok ? state
            : t.LastReportId.Length > 0 && !Acknowledgements.Covers(_acknowledgements.Latest(key), t.LastReportId) ? FilesystemHealth.Errors
            : FilesystemHealth.Ok;
        return new FilesystemStatus
        {
            Key = key,
            Superblock = sb,
            ErrorCount = t.ErrorCount,
            Reports = t.Reports,
            FirstErrorTime = t.First,
            LastErrorTime = t.Last,
            LastReportId = t.LastReportId,
            Health = health,
        };
    }

    private sealed class Totals
    {
        public ulong ErrorCount;
        public long Reports;
        public DateTimeOffset? First, Last;
        public string LastReportId = "";
    }

    private sealed record Watched(Superblock Superblock, string Key)
    {
        public FilesystemHealth State { get; set; }
    }
}
