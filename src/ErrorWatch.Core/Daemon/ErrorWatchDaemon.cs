using System.Diagnostics;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Modules;
using ErrorWatch.Publishing;
using ErrorWatch.Reports;
using ErrorWatch.Store;
using ErrorWatch.Watching;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace ErrorWatch.Daemon;

public sealed record DaemonOptions
{
    public WatchOptions Watch { get; init; } = new();
    /// <summary>Events queued between the read loop and the decoders before per-filesystem folding starts.</summary>
    public int HandOffCapacity { get; init; } = 4096;
    public bool ResolvePaths { get; init; } = true;
    public double PathResolutionsPerSecond { get; init; } = 10;
    /// <summary>Use FAN_MNT_ATTACH/DETACH when the kernel has them (off forces the mountinfo fallback).</summary>
    public bool FanotifyMountEvents { get; init; } = true;
    public MountSource? MountSource { get; init; }
    public TimeSpan RescanInterval { get; init; } = TimeSpan.FromSeconds(30);
    /// <summary>How long shutdown may spend publishing what was already read (SIGTERM must exit within 2 s).</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(1.2);
    public HealthOptions Health { get; init; } = new();
    public Store.StoreOptions Store { get; init; } = new();
    /// <summary>Where the report store and the health baseline live ($STATE_DIRECTORY or /var/lib/errorwatch by default); null keeps nothing (tests of other stages).</summary>
    public string? StateDirectory { get; init; } = HealthBaseline.DefaultDirectory();
    /// <summary>[Watch] PriorityBoost: N nice levels below the daemon's own and the shortest slice for the read and decode threads (<see cref="EventThreadPriority"/>); 0 leaves them alone.</summary>
    public int PriorityBoost { get; init; }
}

/// <summary>
/// The pipeline put together: inventory and marks → read loop → hand-off → decoders → report sinks.
/// <see cref="Start"/> marks every filesystem and starts the threads; <see cref="RunAsync"/>
/// decodes and publishes until cancelled, then shuts down within <see cref="DaemonOptions.DrainTimeout"/>.
/// </summary>
public sealed class ErrorWatchDaemon : IHostedLifecycleService, IDisposable
{
    private readonly DaemonOptions _options;
    private readonly IReadOnlyList<IReportSink> _sinks;
    private readonly ILogger _log;
    private readonly EventHandOff _handOff;
    private readonly Watcher _watcher;
    private readonly MountTracker _tracker;
    private readonly EventDecoder _decoder;
    private readonly HealthLoop _health;
    private readonly Store.ReportStore? _store;
    private readonly MonitorCorrelation _correlation = new(TimeSpan.FromSeconds(1));
    private readonly List<CorruptionReport> _ready = new();
    private readonly IdleMemory _idle;
    private long _reports;

    public ErrorWatchDaemon(DaemonOptions options, FilesystemModules modules, IReadOnlyList<IReportSink> sinks, ILogger log)
    {
        _options = options;
        _sinks = sinks;
        _log = log;
        _idle = new IdleMemory(log: log);
        _handOff = new EventHandOff(options.HandOffCapacity);
        _watcher = new Watcher(_handOff, log, options.PriorityBoost);
        Inventory = new FilesystemInventory(options.Watch, modules.ReadUuid, _watcher, options.MountSource ?? MountTable.Detect(), log);
        _tracker = new MountTracker(Inventory, log, options.RescanInterval, options.FanotifyMountEvents);
        // Before anything can be detected: another ErrorWatch holding the store stops the start. A
        // store that cannot write (the state filesystem full or read-only, maybe the one in trouble)
        // does not: it holds reports and retries, and detection must go on.
        _store = options.StateDirectory is { } state ? ErrorWatch.Store.ReportStore.Open(state, options.Store, log) : null;
        var baseline = new HealthBaseline(options.StateDirectory, log);
        baseline.Load();
        if (_store is not null && options.StateDirectory is { } stateDirectory)
            baseline.CatchUp(new ReportHistory(stateDirectory));
        _health = new HealthLoop(options.Health, modules, _watcher, _handOff, baseline, log);
        Ledger = new FilesystemLedger(options.StateDirectory, log, modules.StateNow);
        // The ledger first: an output told about a filesystem finds it there.
        Inventory.Watched += w => Ledger.Watch(w.Superblock);
        Inventory.Unwatched += w => Ledger.Unwatch(w.Superblock);
        Inventory.Watched += _health.Add;
        Inventory.Reading += _health.Begin;
        Inventory.Unwatched += _health.Remove;
        _decoder = new EventDecoder(modules, new PathResolver(options.PathResolutionsPerSecond) { Enabled = options.ResolvePaths }, log, readerPid: Environment.ProcessId);
    }

    public FilesystemInventory Inventory { get; }
    /// <summary>Per filesystem: error totals (stored and live) and health, for the outputs that show them.</summary>
    public FilesystemLedger Ledger { get; }
    public MountTracker MountTracker => _tracker;
    public HealthLoop Health => _health;
    private readonly LoopHeartbeat _decodeHeartbeat = new("decode loop");
    private readonly TaskCompletionSource _decoded = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly List<DeliveryCursor> _cursors = new();
    private CancellationToken _stop;

    /// <summary>The loops the watchdog checks: a stuck one stops the pings, and systemd restarts the service.</summary>
    public IReadOnlyList<LoopHeartbeat> Heartbeats => [_watcher.Heartbeat, _health.Heartbeat, _decodeHeartbeat];
    public int WatchedCount => Inventory.Watches.Count;
    public Store.ReportStore? Store => _store;
    public EventHandOff HandOff => _handOff;
    public long ReportsPublished => Interlocked.Read(ref _reports);
    public long EventsRead => _watcher.EventsRead;
    /// <summary>Events in the shared spill group that matched no watched filesystem (see <see cref="Watcher.UnmatchedEvents"/>).</summary>
    public long UnmatchedEvents => _watcher.UnmatchedEvents;

    /// <summary>Marks every filesystem, starts reading and mount tracking; returns what is watched.</summary>
    /// <summary>What <see cref="Start"/> found, once the host has started the pipeline.</summary>
    public Capabilities? Capabilities { get; private set; }

    private readonly CancellationTokenSource _hostStop = new();
    private Task? _running;

    // On the Generic Host: the marks before any output starts (StartingAsync), the decode thread with
    // the outputs up (StartAsync), and a stop that drains what was read (StopAsync, within DrainTimeout).
    Task IHostedLifecycleService.StartingAsync(CancellationToken cancellationToken)
    {
        Capabilities = Start();
        return Task.CompletedTask;
    }

    Task IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        _running = RunAsync(_hostStop.Token);
        return Task.CompletedTask;
    }

    Task IHostedLifecycleService.StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    Task IHostedLifecycleService.StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    async Task IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        _hostStop.Cancel();
        if (_running is { } running)
            await running.WaitAsync(cancellationToken).ConfigureAwait(false);
    }

    Task IHostedLifecycleService.StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Capabilities Start()
    {
        _watcher.Start();
        _health.Start();
        Inventory.Reconcile();
        if (!_health.WaitForFirstChecks(TimeSpan.FromSeconds(3)))
            _log.Warning("Native health sources are slow to answer; their first reports follow");
        // Saved now, not a second later: a daemon killed right after its start must find every
        // filesystem it watched known at the next one, or their counters would come back as history.
        _health.Baseline.Save();
        _tracker.Start();
        var capabilities = Capabilities.Collect(Inventory, _tracker, _health);
        // What the start allocated (marks, inventory, outputs) is garbage once it is over.
        _idle.Worked();
        _log.Information("Watching {Count} filesystem(s); FAN_FS_ERROR marks {Marks}; mounts tracked by {Tracking}; kernel log from {KernelLog:l}",
            capabilities.Watched.Count, capabilities.FsErrorMarks, capabilities.MountTracking, capabilities.KernelLogSource ?? "nowhere");
        return capabilities;
    }

    /// <summary>
    /// Starts the decode thread, which decodes and publishes reports until <paramref name="stop"/> fires,
    /// then drains and stops; the task completes when it has. A thread of its own, woken directly by the
    /// read loop's post, rather than a loop of awaits on the thread pool (docs/performance.md). It and the
    /// read loop's thread trade roles (<see cref="Watcher.TradeWith"/>): whichever read a batch while the
    /// other slept decodes it, and the other reads on.
    /// </summary>
    public Task RunAsync(CancellationToken stop)
    {
        _stop = stop;
        _watcher.TradeWith(Decode);
        var thread = new Thread(() =>
        {
            EventThreadPriority.Raise(_options.PriorityBoost, EventThreadNames.Second, _log);
            // Before the first take: what the last run stored and did not deliver comes before anything new.
            StartDurableOutputs();
            using var own = new EventThreadWake();
            while (Decode(own) && _watcher.Read())
            {
            }
        })
        { Name = EventThreadNames.Second, IsBackground = true };
        thread.Start();
        return _decoded.Task;
    }

    /// <summary>
    /// The decode thread's turn, on either event thread: takes and publishes until handed the reading
    /// (true), or until stopped, then shuts down (false; <see cref="RunAsync"/>'s task completes).
    /// </summary>
    private bool Decode(EventThreadWake own)
    {
        try
        {
            while (true)
            {
                _decodeHeartbeat.Waiting();
                // A report waiting for its fanotify/monitor partner: wake when it is due.
                var due = _correlation.NextDue() ?? Timeout.InfiniteTimeSpan;
                var item = _handOff.Take(due, _stop, own, canRead: true, out var timedOut, out var read);
                if (read)
                    return true;
                _decodeHeartbeat.Progress();
                if (timedOut)
                {
                    _correlation.Expire(_ready);
                    PublishReady();
                    continue;
                }
                if (item is null)
                    break;
                Handle(item.Value);
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            _decoded.TrySetException(e);
            return false;
        }
        try
        {
            Shutdown();
            _decoded.TrySetResult();
        }
        catch (Exception e)
        {
            _decoded.TrySetException(e);
        }
        return false;
    }

    /// <summary>
    /// Gives each durable output (<see cref="IDurableSink"/>) what the store holds after its cursor,
    /// and starts each output that follows the store (<see cref="IStoreFollower"/>) at its cursor.
    /// </summary>
    private void StartDurableOutputs()
    {
        if (_store is null || _options.StateDirectory is not { } state)
            return;
        foreach (var follower in _sinks.OfType<IStoreFollower>())
        {
            try
            {
                // A store that could not open for writing has no End yet: its history ends where the disk's does.
                var end = _store.End ?? StoredReports.EndOnDisk(state);
                var cursor = OpenCursor(state, follower.Name, end);
                _store.HeldWritten += follower.StoreGrew;
                follower.Follow(state, cursor, () => _store.End, end);
            }
            catch (Exception e)
            {
                _log.Error(e, "Starting the {Output} from the store failed", follower.Name);
            }
        }
        foreach (var sink in _sinks.OfType<IDurableSink>())
        {
            try
            {
                var end = _store.End;
                var cursor = OpenCursor(state, sink.Name, end);
                sink.Cursor = cursor;
                if (cursor.Position is not { } from || (end is { } storeEnd && from >= storeEnd))
                    continue;
                long replayed = 0, unreadable = 0;
                var last = from;
                var problems = StoredReports.ReadAfter(state, from, (in StoredRecord record) =>
                {
                    last = record.End;
                    CorruptionReport report;
                    try
                    {
                        report = record.Report();
                    }
                    catch (ReportFormatException e)
                    {
                        if (unreadable++ == 0)
                            _log.Error("A stored report after the {Output} cursor cannot be read back ({Problem}); it is not replayed there", sink.Name, e.Message);
                        return true;
                    }
                    sink.Replay(report);
                    replayed++;
                    return true;
                });
                foreach (var problem in problems)
                    _log.Warning("Replaying the store to the {Output}: {Problem}", sink.Name, problem);
                // Nothing is appended during the replay (no decoder runs yet): the store's end is past every record read.
                sink.Replayed(end ?? last);
                if (replayed > 0)
                    _log.Warning("Replayed {Count} stored report(s) to the {Output}: the last run ended before delivering them (from store position {From})", replayed, sink.Name, from);
            }
            catch (Exception e)
            {
                // A replay that fails costs duplicates or a gap in that output, never the daemon.
                _log.Error(e, "Replaying the store to the {Output} failed", sink.Name);
            }
        }
    }

    /// <summary>
    /// An output's cursor, kept for the daemon's lifetime. A new one starts at the store's
    /// <paramref name="end"/> (the history before it was never that output's to repeat), as does one
    /// past the end (the store was emptied or replaced: no report would ever move it again).
    /// </summary>
    private DeliveryCursor OpenCursor(string state, string output, StorePosition? end)
    {
        var cursor = DeliveryCursor.Open(state, output, _log);
        _cursors.Add(cursor);
        if (cursor.Position is { } ahead && end is { } storeEnd && ahead > storeEnd)
        {
            _log.Warning("The {Output} delivery cursor ({Cursor}) is past the end of the store ({End}): the store was emptied or replaced; it starts again at the end",
                output, ahead, storeEnd);
            cursor.Restart(storeEnd);
        }
        else if (cursor.Position is null && end is { } e)
        {
            cursor.Advance(e);
        }
        return cursor;
    }

    private void Shutdown()
    {
        var deadline = Stopwatch.StartNew();
        // First: the last health checks still need the read loop (to flush fanotify before comparing counts).
        _health.Stop(_options.Health.StopBudget + TimeSpan.FromMilliseconds(200));
        var health = deadline.Elapsed;
        _tracker.Stop(TimeSpan.FromMilliseconds(300));
        var tracker = deadline.Elapsed;
        // The read loop reads every group empty, closes them and completes the hand-off.
        _watcher.Stop(TimeSpan.FromMilliseconds(500));
        _log.Debug("Stopping: health loop {Health:F0} ms, mount tracker {Tracker:F0} ms, read loop {Watcher:F0} ms",
            health.TotalMilliseconds, (tracker - health).TotalMilliseconds, (deadline.Elapsed - tracker).TotalMilliseconds);
        using var drain = new CancellationTokenSource(_options.DrainTimeout - deadline.Elapsed is { Ticks: > 0 } left ? left : TimeSpan.Zero);
        try
        {
            while (_handOff.Take(drain.Token) is { } item)
                Handle(item);
        }
        catch (OperationCanceledException)
        {
            _correlation.Drain(_ready);
            PublishReady();
            _log.Error("Shutdown deadline reached with {Count} event(s) not yet published", _handOff.Count);
        }
        _correlation.Drain(_ready);
        PublishReady();
        // What the drain published moved the baseline once more.
        _health.Baseline.Save();
        _log.Information("Stopped after {Reports} report(s) from {Events} kernel event(s) and {Findings} health finding(s)", ReportsPublished, EventsRead, _health.Findings);
    }

    private void Handle(HandOffItem item)
    {
        if (item.Event is { } ev)
            DecodeAndPublish(ev);
        else if (item.Finding is { } finding)
            DecodeAndPublish(finding);
    }

    private void DecodeAndPublish(HealthFinding finding)
    {
        CorruptionReport report;
        try
        {
            report = _decoder.Decode(finding);
        }
        catch (Exception e)
        {
            _log.Error(e, "Decoding failed for a {Source} finding on {Superblock}; publishing the bare report", finding.Source, finding.Superblock);
            report = _decoder.Minimal(finding, e);
        }
        Offer(finding.Superblock, report);
    }

    /// <summary>Publishes now, unless it is half of a fanotify/monitor pair (XFS on 7.0+).</summary>
    private void Offer(Superblock sb, CorruptionReport report)
    {
        _correlation.Offer(report, _health.IsMonitored(sb), _ready);
        _correlation.Expire(_ready);
        PublishReady(sb);
    }

    private void PublishReady(Superblock? sb = null)
    {
        foreach (var report in _ready)
        {
            Publish(report);
            var owner = sb is not null && report.Filesystem.MajorMinor == sb.Device ? sb
                : Inventory.Watches.FirstOrDefault(w => w.Superblock.Device == report.Filesystem.MajorMinor)?.Superblock;
            if (owner is not null)
                _health.Published(owner, report);
            _health.Baseline.Accounted(report.Id);
        }
        _ready.Clear();
    }

    private void DecodeAndPublish(Kernel.FsErrorEvent ev)
    {
        CorruptionReport report;
        try
        {
            report = _decoder.Decode(ev);
        }
        catch (Exception e)
        {
            // Never let one event stop the loop, nor lose its report.
            _log.Error(e, "Decoding failed for errno {Errno} x{Count} on {Superblock}; publishing the bare report", ev.Errno, ev.Count, ev.Superblock);
            report = _decoder.Minimal(ev, e);
        }
        Offer(ev.Superblock, report);
    }

    /// <summary>Called after every output is done with a report, with the seconds since its event was read.</summary>
    public Action<CorruptionReport, double>? ReportDone { get; set; }

    private void Publish(CorruptionReport report)
    {
        var started = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _reports);
        _idle.Worked();
        // The store first: once a report is out anywhere, it is also on disk (or held until the store can write).
        var stored = _store?.Append(report);
        Ledger.Record(report);
        foreach (var sink in _sinks)
        {
            try
            {
                sink.Publish(report, stored);
            }
            catch (Exception e)
            {
                // One broken output must not starve the others.
                _log.Error(e, "Output {Sink} failed to publish report {Id}", sink.Name, report.Id);
            }
        }
        ReportDone?.Invoke(report, report.DecodeSeconds + Stopwatch.GetElapsedTime(started).TotalSeconds);
    }

    public void Dispose()
    {
        _hostStop.Dispose();
        _idle.Dispose();
        foreach (var cursor in _cursors)
            cursor.Dispose();
        _store?.Dispose();
        _health.Dispose();
        _tracker.Dispose();
        _watcher.Dispose();
        _handOff.Dispose();
        Inventory.Dispose();
    }
}

public static class BusServiceAttach
{
    /// <summary>The D-Bus service follows this daemon's filesystems, ledger, hand-off and mount tracker.</summary>
    public static void Attach(this Publishing.DBus.BusService bus, ErrorWatchDaemon daemon) =>
        bus.Follow(daemon.Inventory, daemon.Ledger, daemon.HandOff, daemon.MountTracker);
}
