using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using ErrorWatch.Filesystems;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Interop;
using ErrorWatch.Modules;
using ErrorWatch.Reports;
using ErrorWatch.Watching;
using Serilog;
using ErrorWatch.Kernel;

namespace ErrorWatch.Health;

public sealed record HealthOptions
{
    /// <summary>How often every source is checked without a notification (ext4 state, XFS sick bits). Cheap: ioctls and sysfs reads only.</summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>Read the kernel log (/dev/kmsg, else the journal's copy) for XFS/ext4 lines that call for a prompt check (never for a report's facts).</summary>
    public bool KernelLog { get; init; } = true;
    /// <summary>Use XFS_IOC_HEALTH_MONITOR (Linux 7.0+) instead of polling where the kernel has it.</summary>
    public bool XfsHealthMonitor { get; init; } = true;
    /// <summary>Most inodes one kernel-log-triggered AG scan may stat to find the owner of a bad block on XFS without rmapbt.</summary>
    public int XfsScanLimit { get; init; } = 100_000;
    /// <summary>After a fanotify report, look again this much later (ext4 flips to read-only just after announcing).</summary>
    public TimeSpan RecheckAfterReport { get; init; } = TimeSpan.FromMilliseconds(300);
    /// <summary>Delay between a kernel log line and the check it triggers (the kernel marks sick bits after logging).</summary>
    public TimeSpan KernelLogSettle { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>
    /// Delay between an errors_count notification and the check it triggers. The errors fanotify
    /// announces are read, decoded and published meanwhile, without this thread and its flush of the
    /// read loop taking the CPU from them (on a small machine, a tenth of a millisecond on the way to
    /// every output); a burst of errors is looked at once. What the check finds (errors fanotify never
    /// announced) is reported at most this much later.
    /// </summary>
    public TimeSpan CounterSettle { get; init; } = TimeSpan.FromMilliseconds(100);
    /// <summary>Ceiling on the final check at shutdown, inside the 2 s SIGTERM budget.</summary>
    public TimeSpan StopBudget { get; init; } = TimeSpan.FromMilliseconds(300);
}

/// <summary>
/// The native health stage: one thread that polls the sources' fds (ext4 errors_count for
/// POLLPRI, XFS health monitors), the kernel log (/dev/kmsg, or the journal's inotify fd: lines
/// that call for a prompt look) and a timer for periodic and scheduled checks, and posts what the
/// checks find to the hand-off. Each source is made by its filesystem's module. Checks run on this
/// thread only, so a source needs no locking except for what <see cref="Published"/> touches.
/// </summary>
public sealed unsafe class HealthLoop : IDisposable
{
    private readonly HealthOptions _options;
    private readonly FilesystemModules _modules;
    private readonly KernelLogMatcher _kernelLogLines;
    private readonly Watcher _watcher;
    private readonly EventHandOff _handOff;
    private readonly ILogger _log;
    private readonly WakeSignal _wake = new();
    private readonly Thread _thread;
    private readonly Lock _lock = new();
    // Set after every check: WaitForFirstChecks wakes on it rather than polling (start -> READY=1).
    private readonly ManualResetEventSlim _checked = new(false, spinCount: 0);
    private readonly Dictionary<Superblock, IHealthSource> _sources = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<IHealthSource, (long Due, HealthTrigger Why)> _due = new(ReferenceEqualityComparer.Instance);
    private readonly ConcurrentQueue<IHealthSource> _retired = new();
    private readonly string _bootId;
    private IKernelLogSource? _kernelLog;
    private bool _caughtUpLogged;
    // Until then a kernel log's own backlog (the journal catching up) waits: the start's first
    // checks, which READY=1 waits for, come first, and the rest of the start (outputs, READY=1) gets
    // the CPU to itself. 1 s after WaitForFirstChecks, else 5 s after Start.
    private long _backlogAfter = long.MaxValue;

    private static readonly TimeSpan BacklogDelay = TimeSpan.FromSeconds(1);
    private IHealthSource? _checking;
    private volatile bool _stopping;
    private long _checks;
    private long _findings;

    public HealthLoop(HealthOptions options, FilesystemModules modules, Watcher watcher, EventHandOff handOff, HealthBaseline baseline, ILogger log)
    {
        _options = options;
        _modules = modules;
        _kernelLogLines = new KernelLogMatcher(modules);
        _watcher = watcher;
        _handOff = handOff;
        Baseline = baseline;
        _log = log;
        _bootId = BootId.Current ?? "unknown-boot";
        _thread = new Thread(Loop) { Name = "errorwatch-health", IsBackground = true };
    }

    public HealthBaseline Baseline { get; }
    public LoopHeartbeat Heartbeat { get; } = new("health loop");
    public long Checks => Interlocked.Read(ref _checks);
    public long Findings => Interlocked.Read(ref _findings);
    /// <summary>Where kernel log lines come from: "/dev/kmsg", "journal", or null when from nowhere (<see cref="KernelLogProblem"/> says why).</summary>
    public string? KernelLogSource { get; private set; }

    /// <summary>Why /dev/kmsg is not read (disabled, or cannot be opened; and, with no source at all, why the journal is not either), or null.</summary>
    public string? KernelLogProblem { get; private set; }

    /// <summary>Something worth saying about the source in use, once its first read found it (a journal without this boot's kernel lines), or null.</summary>
    public string? KernelLogNote { get; private set; }

    /// <summary>What each watched filesystem's health is read from.</summary>
    public IReadOnlyDictionary<Superblock, string> Describe()
    {
        lock (_lock)
            return _sources.ToDictionary(kv => kv.Key, kv => kv.Value.Describe(), (IEqualityComparer<Superblock>)ReferenceEqualityComparer.Instance);
    }

    /// <summary>Starts following one filesystem's native state (before its first fanotify event can be read).</summary>
    public void Add(SuperblockWatch watch)
    {
        Baseline.Present(watch.Superblock.Uuid, watch.Superblock.Device);
        var source = Create(watch);
        if (source is null)
            return;
        lock (_lock)
            _sources[watch.Superblock] = source;
    }

    /// <summary>
    /// The read loop has the filesystem's group: the first check may run (its flush of the group
    /// must come after the group was added, or fanotify's errors would look unannounced).
    /// </summary>
    public void Begin(SuperblockWatch watch)
    {
        lock (_lock)
        {
            if (!_sources.TryGetValue(watch.Superblock, out var source))
                return;
            _due[source] = (0, HealthTrigger.FirstWatch);
        }
        _wake.Signal();
    }

    private IHealthSource? Create(SuperblockWatch watch)
    {
        var sb = watch.Superblock;
        try
        {
            return _modules.For(sb.Magic).CreateHealthSource(new HealthSourceContext(watch, _watcher, Baseline, Instance(sb), _options, _log));
        }
        catch (Exception e)
        {
            _log.Error(e, "Cannot read the native health of {Superblock}; only fanotify events will be reported for it", sb);
            return null;
        }
    }

    /// <summary>Identifies one mount's lifetime: in-memory state (XFS health, ext4 emergency_ro) ends with it.</summary>
    private string Instance(Superblock sb) =>
        $"{_bootId}/{sb.Device}/{(sb.Mounts.IsEmpty ? 0 : sb.Mounts.Min(m => m.Id))}";

    public void Remove(SuperblockWatch watch)
    {
        Baseline.Absent(watch.Superblock.Uuid, watch.Superblock.Device);
        lock (_lock)
        {
            if (!_sources.Remove(watch.Superblock, out var source))
                return;
            _due.Remove(source);
            _retired.Enqueue(source);
        }
        _wake.Signal();
    }

    /// <summary>A report went out (called by the publishing stage after the sinks).</summary>
    public void Published(Superblock sb, CorruptionReport report)
    {
        IHealthSource? source;
        lock (_lock)
            _sources.TryGetValue(sb, out source);
        if (source is null)
            return;
        source.Published(report);
        if (report.Source == ReportSource.Fanotify)
            Schedule(source, _options.RecheckAfterReport, HealthTrigger.FanotifyReport);
    }

    /// <summary>True when ErrorWatch holds this XFS filesystem's health monitor (7.0+): its fanotify reports pair with monitor records.</summary>
    public bool IsMonitored(Superblock sb)
    {
        lock (_lock)
            return _sources.TryGetValue(sb, out var source) && source.Monitored;
    }

    /// <summary>Asks for a check of <paramref name="sb"/> (used by tests and the kernel log).</summary>
    public void RequestCheck(Superblock sb, TimeSpan delay, HealthTrigger why)
    {
        IHealthSource? source;
        lock (_lock)
            _sources.TryGetValue(sb, out source);
        if (source is not null)
            Schedule(source, delay, why);
    }

    private void Schedule(IHealthSource source, TimeSpan delay, HealthTrigger why)
    {
        var due = Stopwatch.GetTimestamp() + (long)(delay.TotalSeconds * Stopwatch.Frequency);
        lock (_lock)
        {
            if (!_sources.ContainsValue(source))
                return;
            if (_due.TryGetValue(source, out var existing) && existing.Due <= due)
                return;
            _due[source] = (due, why);
        }
        _wake.Signal();
    }

    public void Start()
    {
        if (_options.KernelLog)
        {
            _kernelLog = KernelLogSources.Open(out var problem);
            KernelLogSource = _kernelLog?.Name;
            KernelLogProblem = problem;
            if (_kernelLog is null)
                _log.Warning("Not reading the kernel log: {Problem}; problems are found by notifications and the periodic check only", KernelLogProblem);
            _backlogAfter = Stopwatch.GetTimestamp() + Ticks(TimeSpan.FromSeconds(5));
        }
        else
        {
            KernelLogProblem = "disabled by configuration";
        }
        _thread.Start();
    }

    /// <summary>
    /// Waits (bounded) until every filesystem watched so far has had its first check, so that
    /// "history" means "before ErrorWatch started" and not "before the health thread got to it".
    /// </summary>
    public bool WaitForFirstChecks(TimeSpan timeout)
    {
        try
        {
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                // Reset before looking: a check finishing after the look sets it again.
                _checked.Reset();
                lock (_lock)
                    if (!_due.Values.Any(d => d.Why == HealthTrigger.FirstWatch) && _checking is null)
                        return true;
                var left = timeout - deadline.Elapsed;
                if (left <= TimeSpan.Zero || !_checked.Wait(left))
                    lock (_lock)
                        return !_due.Values.Any(d => d.Why == HealthTrigger.FirstWatch) && _checking is null;
            }
        }
        finally
        {
            Interlocked.Exchange(ref _backlogAfter, Stopwatch.GetTimestamp() + Ticks(BacklogDelay));
            _wake.Signal(); // to wait for the new time
        }
    }

    /// <summary>Runs a last check of every source (bounded), saves the baseline and stops.</summary>
    public void Stop(TimeSpan timeout)
    {
        _stopping = true;
        _wake.Signal();
        if (_thread.IsAlive)
            _thread.Join(timeout);
        Baseline.Save();
    }

    private void Loop()
    {
        var fds = new List<Libc.PollFd>();
        // The set poll(2) waits on, in native memory (PollFdBuffer says why).
        using var pollSet = new PollFdBuffer();
        var owners = new List<IHealthSource?>();
        var findings = new List<HealthFinding>();
        var nextPeriodic = Stopwatch.GetTimestamp() + Ticks(_options.CheckInterval);
        var lastSave = Stopwatch.GetTimestamp();
        try
        {
            while (!_stopping)
            {
                DisposeRetired();
                var now = Stopwatch.GetTimestamp();
                // The kernel log is neither polled nor read before _backlogAfter: the start's checks,
                // and the rest of the start, come first (its lines wait where they are meanwhile).
                var backlogAfter = Interlocked.Read(ref _backlogAfter);
                BuildPollSet(fds, owners, kernelLog: now >= backlogAfter);
                var wait = Math.Min(nextPeriodic, NextDue()) - now;
                if (Baseline.IsDirty)
                    wait = Math.Min(wait, lastSave + Stopwatch.Frequency - now);
                if (_kernelLog is not null && now < backlogAfter)
                    wait = Math.Min(wait, backlogAfter - now);
                var timeoutMs = (int)Math.Clamp((wait * 1000 + Stopwatch.Frequency - 1) / Stopwatch.Frequency, 0, int.MaxValue);
                if (_kernelLog is { } kernelLog && now >= backlogAfter)
                {
                    // A backlog left by the last read's limit is read at once; a journal on a
                    // filesystem without inotify asks to be looked at by a deadline.
                    if (kernelLog.Pending)
                        timeoutMs = 0;
                    else if (kernelLog.TimeoutMs is >= 0 and var kernelLogMs)
                        timeoutMs = Math.Min(timeoutMs, kernelLogMs);
                }

                var array = pollSet.Resize(fds.Count);
                CollectionsMarshal.AsSpan(fds).CopyTo(array);
                Heartbeat.Waiting();
                var ready = pollSet.Poll(timeoutMs);
                Heartbeat.Progress();
                if (ready < 0 && Libc.LastErrno != Libc.EINTR)
                {
                    _log.Fatal("poll in the health loop failed: {Errno}", ErrnoTable.Name(Libc.LastErrno));
                    break;
                }
                if (_stopping)
                    break;
                var kernelLogReady = false;
                for (var i = 0; ready > 0 && i < array.Length; i++)
                {
                    if (array[i].REvents == 0)
                        continue;
                    if (i == 0)
                        _wake.Drain();
                    else if (owners[i] is { } source)
                        OnSourceReady(source, findings);
                    else
                        kernelLogReady = true;
                }

                now = Stopwatch.GetTimestamp();
                if (now >= nextPeriodic)
                {
                    nextPeriodic = now + Ticks(_options.CheckInterval);
                    lock (_lock)
                        foreach (var source in _sources.Values)
                            if (!_due.ContainsKey(source))
                                _due[source] = (now, HealthTrigger.Periodic);
                }
                RunDueChecks(now, findings);
                // After the due checks, a batch a turn: at the start the whole ring (or the journal's
                // backlog) is waiting, and the checks that are due, the first ones above all, must
                // not wait behind it. What the lines call for is scheduled KernelLogSettle later anyway.
                if (_kernelLog is { } log && now >= Interlocked.Read(ref _backlogAfter)
                    && (kernelLogReady || log.Pending || (ready == 0 && log.TimeoutMs == 0)))
                    ReadKernelLog();
                if (Baseline.IsDirty && Stopwatch.GetElapsedTime(lastSave) >= TimeSpan.FromSeconds(1))
                {
                    Baseline.Save();
                    lastSave = Stopwatch.GetTimestamp();
                }
            }
            FinalChecks(findings);
        }
        catch (Exception e)
        {
            _log.Fatal(e, "The health loop failed; native health sources are no longer checked");
        }
        finally
        {
            DisposeRetired();
            lock (_lock)
            {
                foreach (var source in _sources.Values)
                    source.Dispose();
                _sources.Clear();
            }
            _kernelLog?.Dispose();
        }
    }

    private static long Ticks(TimeSpan span) => (long)(span.TotalSeconds * Stopwatch.Frequency);

    private long NextDue()
    {
        lock (_lock)
            return _due.Count == 0 ? long.MaxValue : _due.Values.Min(d => d.Due);
    }

    private void BuildPollSet(List<Libc.PollFd> fds, List<IHealthSource?> owners, bool kernelLog)
    {
        fds.Clear();
        owners.Clear();
        fds.Add(_wake.PollFd);
        owners.Add(null);
        if (kernelLog && _kernelLog is { Fd: >= 0 } log)
        {
            fds.Add(new Libc.PollFd { Fd = log.Fd, Events = log.Events });
            owners.Add(null);
        }
        lock (_lock)
        {
            foreach (var source in _sources.Values)
            {
                if (source.PollFd < 0)
                    continue;
                fds.Add(new Libc.PollFd { Fd = source.PollFd, Events = source.PollEvents });
                owners.Add(source);
            }
        }
    }

    private void OnSourceReady(IHealthSource source, List<HealthFinding> findings)
    {
        try
        {
            findings.Clear();
            var checkNow = source.OnReady(findings);
            Post(findings);
            if (checkNow)
                Schedule(source, _options.CounterSettle, HealthTrigger.CounterNotified);
        }
        catch (Exception e)
        {
            _log.Error(e, "Health source of {Superblock} failed while reading its notification", source.Superblock);
        }
    }

    private const int KernelLogBatch = 256;

    private void ReadKernelLog()
    {
        var kernelLog = _kernelLog!;
        kernelLog.ReadAvailable(maxRecords: KernelLogBatch, onRecord: record =>
        {
            // Only the kernel's own lines: anyone may write to /dev/kmsg, but never as facility 0
            // (journald keeps the facility: SYSLOG_FACILITY).
            if (!_kernelLogLines.TryMatch(record, out var signal) || !signal.IsTrusted)
                return;
            // The line's filesystem is the module whose dialect read it (ext4's reads ext2/3 lines too).
            var module = _modules.ForType(signal.FsType);
            IHealthSource? source;
            lock (_lock)
                source = _sources.Values.FirstOrDefault(s => s.Superblock.KernelName == signal.DeviceName && _modules.For(s.Superblock.Magic) == module);
            if (source is null)
                return;
            source.Hint(signal);
            if (signal.Kind == KernelLogKind.Mounted)
                return; // a boundary for the hints, nothing to look at
            _log.Debug("Kernel log line #{Sequence} ({Kind}) on {Superblock}: checking now", signal.Sequence, signal.Kind, source.Superblock);
            // XFS logs a verifier failure before it marks the structure sick, and one problem
            // comes as several lines: look a moment later, once.
            Schedule(source, _options.KernelLogSettle, HealthTrigger.KernelLog);
        });
        if (KernelLogNote is null && (kernelLog as KernelJournalReader)?.Note is { } note)
        {
            KernelLogNote = note;
            _log.Warning("Kernel log: {Note}", note);
        }
        if (kernelLog is KernelJournalReader { CaughtUpAfter: { } took } journal && !_caughtUpLogged)
        {
            _caughtUpLogged = true;
            _log.Debug("Caught up with the journal: {Backlog} kernel line(s) of this boot read in {Milliseconds} ms; now only the files journald writes are open", journal.Backlog, (long)took.TotalMilliseconds);
        }
        if (kernelLog.Stopped)
        {
            // It gave up (its fd would only ever poll readable again): say so once, and stop polling it.
            KernelLogProblem = $"{kernelLog.Name}: {kernelLog.Problem}";
            KernelLogSource = null;
            _log.Warning("No longer reading the kernel log: {Problem}; problems are found by notifications and the periodic check only", KernelLogProblem);
            kernelLog.Dispose();
            _kernelLog = null;
        }
    }

    private void RunDueChecks(long now, List<HealthFinding> findings)
    {
        while (true)
        {
            IHealthSource? source = null;
            HealthTrigger why = default;
            lock (_lock)
            {
                foreach (var (s, due) in _due)
                {
                    if (due.Due <= now)
                    {
                        source = s;
                        why = due.Why;
                        break;
                    }
                }
                if (source is null)
                    return;
                _due.Remove(source);
                _checking = source;
            }
            Check(source, why, findings);
            lock (_lock)
                _checking = null;
            _checked.Set();
        }
    }

    private void Check(IHealthSource source, HealthTrigger why, List<HealthFinding> findings)
    {
        findings.Clear();
        Interlocked.Increment(ref _checks);
        try
        {
            source.Check(why, findings);
        }
        catch (Exception e)
        {
            // A failing source costs its own check, never the loop or the other filesystems.
            _log.Error(e, "Health check of {Superblock} failed", source.Superblock);
        }
        Post(findings);
    }

    private void Post(List<HealthFinding> findings)
    {
        foreach (var finding in findings)
        {
            Interlocked.Increment(ref _findings);
            _handOff.Post(finding);
        }
        findings.Clear();
    }

    /// <summary>A last look before stopping, so errors counted in the last moments are not left to the next start.</summary>
    private void FinalChecks(List<HealthFinding> findings)
    {
        var deadline = Stopwatch.StartNew();
        List<IHealthSource> sources;
        lock (_lock)
            sources = _sources.Values.Where(s => s.CheckAtStop).ToList();
        foreach (var source in sources)
        {
            if (deadline.Elapsed > _options.StopBudget)
            {
                _log.Warning("Stop budget reached before every filesystem had its last check; the next start reports the rest");
                break;
            }
            Check(source, HealthTrigger.Stopping, findings);
        }
    }

    private void DisposeRetired()
    {
        while (_retired.TryDequeue(out var source))
            source.Dispose();
    }

    public void Dispose()
    {
        Stop(TimeSpan.FromSeconds(1));
        _wake.Dispose();
        _checked.Dispose();
    }
}
