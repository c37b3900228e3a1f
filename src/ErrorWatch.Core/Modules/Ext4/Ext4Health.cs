using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Interop;
using ErrorWatch.Reports;
using ErrorWatch.Watching;
using Serilog;

namespace ErrorWatch.Modules.Ext4;

/// <summary>
/// ext4's own error record (kernel-abi.md §6), reconciled with fanotify so that every error the
/// kernel counted is reported exactly once:
/// <list type="bullet">
/// <item>errors_count is polled for POLLPRI (the kernel sysfs-notifies it from the error work);</item>
/// <item>growth of errors_count minus what fanotify announced meanwhile becomes an <c>ext4-sysfs</c>
/// report (group/bitmap errors that never reach fanotify before 7.0, events lost to overflow);</item>
/// <item>the first check compares the counter with the baseline in the state directory: errors from
/// before ErrorWatch watched become one <c>ext4-superblock</c> history report;</item>
/// <item>emergency_ro / shutdown (from /proc/fs/ext4/&lt;dev&gt;/options) is an <c>ext4-state</c> report,
/// because after the first error such a filesystem announces nothing more (6.6+).</item>
/// </list>
/// </summary>
internal sealed unsafe class Ext4Health : IHealthSource
{
    private static readonly TimeSpan FlushPatience = TimeSpan.FromMilliseconds(500);

    private readonly SuperblockWatch _watch;
    private readonly Watcher _watcher;
    private readonly HealthBaseline _baseline;
    private readonly ILogger _log;
    private readonly string _sysfsDir;
    private readonly string _optionsFile;
    // Resolved at the first check, once every filesystem watched at start is known (twins with one
    // UUID each keep their own entry), or at the first report published before it.
    private string? _key;
    private string Key => _key ??= _baseline.Ext4Key(Superblock.Uuid, Superblock.Device);
    private readonly string _instance;
    private int _countFd = -1;

    /// <summary>The errors_count value every report so far accounts for.</summary>
    private ulong _accounted;
    /// <summary>Of the errors fanotify announced (read by the read loop), how many matched counter growth.</summary>
    private long _fanotifyMatched;
    /// <summary>Errors of fanotify reports published for this watch; changed only under the baseline's lock.</summary>
    private ulong _fanotifyPublished;
    private bool _firstCheckDone;
    /// <summary>The baseline knew this filesystem before this run (so history means "while stopped").</summary>
    private bool _seenBefore;
    private string? _state;
    private string? _problem;

    public Ext4Health(SuperblockWatch watch, Watcher watcher, HealthBaseline baseline, string instance, ILogger log,
        string sysfsRoot = "/sys/fs/ext4", string procRoot = "/proc/fs/ext4")
    {
        _watch = watch;
        _watcher = watcher;
        _baseline = baseline;
        _log = log;
        _instance = instance;
        var sb = watch.Superblock;
        _sysfsDir = Path.Combine(sysfsRoot, sb.KernelName);
        _optionsFile = Path.Combine(procRoot, sb.KernelName, "options");
        if (string.IsNullOrEmpty(sb.KernelName))
        {
            _problem = "kernel device name unknown: /sys/fs/ext4 cannot be read";
            return;
        }
        _countFd = Libc.Open(Path.Combine(_sysfsDir, "errors_count"), Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (_countFd < 0)
            _problem = $"{_sysfsDir}/errors_count: {ErrnoTable.Name(Libc.LastErrno)}";
        else
            ArmCounter();
    }

    public Superblock Superblock => _watch.Superblock;
    public int PollFd => _countFd;
    public short PollEvents => Libc.POLLPRI | Libc.POLLERR;
    /// <summary>errors_count may move in the last moments without a notification read: one more look at a stop.</summary>
    public bool CheckAtStop => true;

    /// <summary>What an admin needs first (what ext4 does on an error here), then what ErrorWatch reads.</summary>
    public string Describe() => $"errors={Ext4Decoder.ErrorsBehavior(Superblock) ?? "unknown"}; " + (_problem ?? $"{_sysfsDir}/errors_count (POLLPRI), {_optionsFile}");

    /// <summary>sysfs notification is edge-triggered on "read since the last notify": read from offset 0 to re-arm.</summary>
    private void ArmCounter()
    {
        var buffer = stackalloc byte[32];
        Libc.LSeek(_countFd, 0, 0);
        Libc.Read(_countFd, buffer, 32);
    }

    public bool OnReady(List<HealthFinding> findings)
    {
        // kernfs reports POLLERR|POLLPRI forever once the attribute is gone (unmounted): stop
        // polling it rather than spin until the superblock is dropped.
        if (!Directory.Exists(_sysfsDir))
        {
            Retire("its /sys/fs/ext4 directory is gone (unmounted)");
            return false;
        }
        ArmCounter();
        return true;
    }

    private void Retire(string why)
    {
        if (_countFd < 0)
            return;
        Libc.Close(_countFd);
        _countFd = -1;
        _problem = why;
        _log.Debug("ext4 counter of {Superblock} no longer checked: {Reason}", Superblock, why);
    }

    public void Check(HealthTrigger trigger, List<HealthFinding> findings)
    {
        if (_countFd < 0)
            return;
        Ext4ErrorRecord record;
        try
        {
            record = Ext4Decoder.ReadErrorRecord(_sysfsDir);
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException && !Directory.Exists(_sysfsDir))
        {
            Retire("its /sys/fs/ext4 directory is gone (unmounted)");
            return;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            _log.Warning("Cannot read the ext4 error record of {Superblock} from {Dir}: {Reason}", Superblock, _sysfsDir, e.Message);
            return;
        }
        // Every error the counter just read was queued to fanotify before the counter moved: read
        // the queue empty now, after reading the counter (not before: errors made in between would
        // be in the counter with their events still queued, and look unannounced).
        if (!_watcher.Flush(_watch, FlushPatience))
            _log.Warning("Reading the fanotify queue of {Superblock} took over {Patience}; counts may be reconciled late", Superblock, FlushPatience);
        var announced = _watch.ErrorsRead;

        if (!_firstCheckDone)
            StartFromBaseline(record, findings);

        var growth = record.ErrorsCount > _accounted ? record.ErrorsCount - _accounted : 0;
        var unmatched = (ulong)Math.Max(0, announced - _fanotifyMatched);
        var matched = Math.Min(growth, unmatched);
        var unexplained = growth - matched;
        _fanotifyMatched += (long)matched;
        _accounted = Math.Max(_accounted, record.ErrorsCount);
        _baseline.Ext4(Key, b =>
        {
            b.FirstErrorTime = record.First?.Time.ToUnixTimeSeconds() ?? 0;
            b.Updated = DateTimeOffset.UtcNow;
            return 0;
        });

        if (unexplained > 0)
            findings.Add(CountFinding(record, unexplained, announced, history: !_firstCheckDone, trigger));
        _firstCheckDone = true;

        CheckState(trigger, findings);
    }

    /// <summary>
    /// The first check: what the baseline says was reported before. No baseline means a filesystem
    /// never seen: everything in the counter is history. A different first-error time means e2fsck
    /// cleared the counters since: start from zero.
    /// </summary>
    private void StartFromBaseline(Ext4ErrorRecord record, List<HealthFinding> findings)
    {
        var firstTime = record.First?.Time.ToUnixTimeSeconds() ?? 0;
        _key ??= _baseline.Ext4Key(Superblock.Uuid, Superblock.Device, firstTime);
        var known = _baseline.HasExt4(_key);
        _seenBefore = known;
        _accounted = _baseline.Ext4(Key, b =>
        {
            if (known && b.FirstErrorTime != 0 && b.FirstErrorTime != firstTime)
            {
                _log.Information("The error counters of {Superblock} were reset since the last run (e2fsck?): counting from zero", Superblock);
                b.Reported = 0;
                b.ErrorStateReported = false;
            }
            // Fanotify reports published before this first check are already in Reported, and their
            // errors are among those the read loop counted: take them out so they are matched once.
            return b.Reported >= _fanotifyPublished ? b.Reported - _fanotifyPublished : 0;
        });
        _fanotifyMatched = 0;
        _baseline.MarkDirty();

        // Old kernels (or other tools) set EXT2_ERROR_FS without counting. Only when nothing at all
        // is counted or announced: a live error sets the state a moment before the counter moves.
        if (record.ErrorsCount == 0 && record.First is null && _watch.ErrorsRead == 0
            && Ext4SuperblockImage.ReadDevice(Superblock.DevicePath, out _) is { } disk
            && (disk.State & Ext4State.Errors) != 0 && disk.ErrorCount == 0 && disk.FirstError is null
            && !_baseline.Ext4(Key, b => b.ErrorStateReported))
        {
            _baseline.Ext4(Key, b => b.ErrorStateReported = true);
            findings.Add(new HealthFinding
            {
                Superblock = Superblock,
                Source = ReportSource.Ext4Superblock,
                Time = DateTimeOffset.UtcNow,
                Errno = Libc.EUCLEAN,
                Count = 0,
                What = "the superblock is marked as having errors (EXT2_ERROR_FS) but records no count: run e2fsck",
                Details = new ReportDetails().Set("state", disk.State.ToString()),
                Trigger = HealthTrigger.FirstWatch,
            });
        }
    }

    private HealthFinding CountFinding(Ext4ErrorRecord record, ulong count, long announced, bool history, HealthTrigger trigger)
    {
        var last = record.Last;
        var errno = last is null ? Libc.EUCLEAN : Ext4ErrorCodes.ErrnoOf(last.Code) is var e && e > 0 ? e : Libc.EUCLEAN;
        var details = new ReportDetails()
            .Set("errors_count", record.ErrorsCount)
            .Set("fanotify_announced", announced);
        if (record.First is { } first)
            details.Set("first_error", first.ToDetails());
        if (last is not null)
            details.Set("last_error", last.ToDetails());
        var site = last is null ? "" : $"; last at {last.Function}:{last.Line}" + (last.Inode != 0 ? $", inode {last.Inode}" : "") + (last.Block != 0 ? $", block {last.Block}" : "");
        string what;
        if (history)
        {
            var since = _seenBefore ? "since ErrorWatch last watched it" : "before ErrorWatch watched it";
            what = $"{count} error(s) recorded in the superblock {since}{site}";
            if (record.First is { } f)
                details.Set("first_error_time", f.Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ"));
        }
        else
        {
            what = $"{count} error(s) counted by ext4 but not announced through fanotify (group/bitmap errors, or events lost){site}";
        }
        return new HealthFinding
        {
            Superblock = Superblock,
            Source = history ? ReportSource.Ext4Superblock : ReportSource.Ext4Sysfs,
            Time = DateTimeOffset.UtcNow,
            Errno = errno,
            Count = count,
            What = what,
            // The last error's inode is the best attribution ext4 keeps; with several errors it names only the last.
            Inode = last is { Inode: > 0 } && count == 1 ? last.Inode : null,
            Details = details.Set("inode_is_last_error_only", count > 1),
            Trigger = trigger,
        };
    }

    /// <summary>emergency_ro, shutdown or abort in the options ext4 shows for this superblock.</summary>
    internal static string? StateOf(string options)
    {
        var words = options.Split((char[])['\n', ','], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (words.Contains("shutdown"))
            return "shutdown";
        if (words.Contains("emergency_ro"))
            return "emergency_ro";
        return null;
    }

    private void CheckState(HealthTrigger trigger, List<HealthFinding> findings)
    {
        string options;
        try
        {
            options = File.ReadAllText(_optionsFile);
        }
        catch (IOException)
        {
            return; // unmounted meanwhile
        }
        var state = StateOf(options);
        if (state == _state)
            return;
        var previous = _state;
        _state = state;
        if (state is null)
            return; // back to normal (remounted): nothing to report

        var alreadyReported = _baseline.Ext4(Key, b =>
        {
            var seen = b.Instance == _instance && b.State == state;
            b.Instance = _instance;
            b.State = state;
            return seen;
        });
        _baseline.MarkDirty();
        if (alreadyReported && previous is null && trigger == HealthTrigger.FirstWatch)
            return; // reported by the previous run, same mount

        var aborted = options.Split((char[])['\n', ','], StringSplitOptions.TrimEntries).Contains("abort");
        var behaviour = Superblock.MountOption("errors");
        findings.Add(new HealthFinding
        {
            Superblock = Superblock,
            Source = ReportSource.Ext4State,
            Time = DateTimeOffset.UtcNow,
            Errno = state == "shutdown" ? Libc.ESHUTDOWN : Libc.EROFS,
            Category = state == "shutdown" ? ErrorCategory.Shutdown : ErrorCategory.ReadOnly,
            Count = 0,
            What = state == "shutdown"
                ? "the filesystem is shut down: every read and write fails, and ext4 announces no further errors"
                : "the filesystem became read-only after an error" + (aborted ? " (remount,abort)" : "") + ": writes fail, and ext4 announces no further errors",
            Details = new ReportDetails()
                .Set("state", state)
                .Set("previous_state", previous ?? "normal")
                .Set("aborted", aborted)
                .Set("errors_behavior", behaviour ?? "superblock default"),
            Trigger = trigger,
        });
    }

    public void Hint(in KernelLogSignal signal)
    {
    }

    /// <summary>Each published error moves the persisted baseline, so a restart reports only what is new.</summary>
    public void Published(CorruptionReport report)
    {
        if (report.Error.Count == 0 || report.Source == ReportSource.Ext4State)
            return;
        _baseline.Ext4(Key, b =>
        {
            b.Reported += report.Error.Count;
            if (report.Source == ReportSource.Fanotify)
                _fanotifyPublished += report.Error.Count;
            b.Updated = DateTimeOffset.UtcNow;
            return 0;
        }, report.Id);
        _baseline.MarkDirty();
    }

    public void Dispose()
    {
        if (_countFd >= 0)
            Libc.Close(_countFd);
        _countFd = -1;
    }
}
