using ErrorWatch.Reports;
using Serilog;
using ErrorWatch.Kernel;

namespace ErrorWatch.Recovery;

/// <summary>Runs one hook run to its end, on the calling thread.</summary>
public interface IHookRunner
{
    /// <param name="processStarted">Called with the pid once a process exists (recorded, so a crash does not leave it running unseen).</param>
    /// <param name="stop">ErrorWatch is stopping: end the run quickly and say so (<see cref="HookOutcome.Interrupted"/>).</param>
    HookOutcome Run(Hook hook, HookRun run, Action<int> processStarted, CancellationToken stop);
}

/// <summary>
/// Decides when hooks run. Per hook and filesystem (a "lane") at most one run at a time: reports
/// that match while a run is running or waiting are folded into the one waiting run (counts summed),
/// never run in parallel and never dropped. At most <see cref="MaxConcurrent"/> runs at once over
/// all lanes; waiting runs start in the order they became due. The repeat policy decides when the
/// next run of a lane may start (<see cref="RepeatPolicy"/>, on the injected clock). Every run is in
/// the ledger before it can start and is marked done after; at <see cref="Start"/>, runs an earlier
/// ErrorWatch left unfinished are queued again (and what remains of their processes ended).
/// <see cref="Offer"/> is all the decode thread calls: matching, folding and one ledger write(2);
/// runs start on this class's own thread and run on threads of their own.
/// </summary>
public sealed class HookDispatcher : IDisposable
{
    private readonly HookCatalog _catalog;
    private readonly IHookRunner _runner;
    private readonly HookLedger? _ledger;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly Dictionary<(string Hook, string Filesystem), Lane> _lanes = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Thread> _workers = new();
    private Thread? _thread;
    private volatile bool _stopping;
    private long _sequence;
    private int _running;

    public HookDispatcher(HookCatalog catalog, IHookRunner runner, HookLedger? ledger, int maxConcurrent, TimeProvider time, ILogger log)
    {
        _catalog = catalog;
        _runner = runner;
        _ledger = ledger;
        _maxConcurrent = Math.Max(1, maxConcurrent);
        _time = time;
        _log = log;
    }

    private sealed class Lane(string hook, string filesystem)
    {
        public string Hook { get; } = hook;
        public string Filesystem { get; } = filesystem;
        public HookRun? Running { get; set; }
        /// <summary>Waiting runs, oldest first: one, except right after a restart replayed more.</summary>
        public List<HookRun> Waiting { get; } = new();
        /// <summary>Runs started (this one included) and the last start: what the repeat policy sees.</summary>
        public long Runs { get; set; }
        public DateTimeOffset? LastStart { get; set; }
        /// <summary>The same for runs that are done: what the ledger keeps.</summary>
        public long DoneRuns { get; set; }
        public DateTimeOffset? DoneLastStart { get; set; }
        public LastRun? Last { get; set; }
    }

    /// <summary>Runs at once over all lanes; a new value (reload) applies to the next start.</summary>
    public int MaxConcurrent
    {
        get => _maxConcurrent;
        set => _maxConcurrent = Math.Max(1, value);
    }

    private volatile int _maxConcurrent;

    /// <summary>Every run that ended, interrupted ones included (journal, metrics).</summary>
    public event Action<Hook?, HookRun, HookOutcome>? Finished;

    /// <summary>A report a hook matched but its repeat policy will never run again for (once): counted, not logged one by one.</summary>
    public event Action<Hook, HookFacts>? Skipped;

    public int Running
    {
        get
        {
            lock (_lock)
                return _running;
        }
    }

    /// <summary>The most runs that were ever running at once (tests check the limit with it).</summary>
    public int PeakRunning { get; private set; }

    /// <summary>Runs waiting to start (for a slot, their lane, or their repeat policy).</summary>
    public int Waiting
    {
        get
        {
            lock (_lock)
                return _lanes.Values.Sum(l => l.Waiting.Count);
        }
    }

    /// <summary>Takes over what the ledger remembers and starts the dispatching thread.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_ledger is not null)
            {
                foreach (var h in _ledger.History)
                    _lanes[(h.Hook, h.Filesystem)] = new Lane(h.Hook, h.Filesystem)
                    {
                        Runs = h.Runs, LastStart = h.LastStart, DoneRuns = h.Runs, DoneLastStart = h.LastStart, Last = h.Last,
                    };
                foreach (var run in _ledger.Unfinished)
                {
                    if (_ledger.Processes.TryGetValue(run.Id, out var process))
                        EndLeftovers(run, process);
                    run.Sequence = ++_sequence;
                    LaneOf(run.Hook, run.Filesystem).Waiting.Add(run);
                }
                if (_ledger.Unfinished.Count > 0)
                    _log.Information("{Count} hook run(s) were due when ErrorWatch last stopped and are run again now (hooks run at least once)", _ledger.Unfinished.Count);
            }
        }
        _thread = new Thread(Loop) { Name = "hook dispatcher", IsBackground = true };
        _thread.Start();
    }

    /// <summary>
    /// A run's process group from before a crash or kill -9 may still be running: end it before the
    /// run starts again, so that two runs never overlap. The group id is the leader's pid; if a
    /// different process now has that pid, the group cannot be ours any more (a pid is not reused
    /// while a group of that id has members), and nothing is signalled.
    /// </summary>
    private void EndLeftovers(HookRun run, RunProcess process)
    {
        if (process.BootId != HookLedger.BootId())
            return;
        var now = HookLedger.ProcessStartTime(process.Pid);
        if (now is not null && now != process.StartTime)
            return;
        if (Interop.Spawn.Kill(-process.Pid, Interop.Spawn.SIGKILL) == 0)
            _log.Warning("Hook {Hook} run {Run} was still running from before the restart (process group {Pgid}); it was ended and runs again", run.Hook, run.Id, process.Pid);
    }

    private Lane LaneOf(string hook, string filesystem)
    {
        if (!_lanes.TryGetValue((hook, filesystem), out var lane))
            _lanes.Add((hook, filesystem), lane = new Lane(hook, filesystem));
        return lane;
    }

    /// <summary>Called for every published report (decode thread): never waits for a hook.</summary>
    public void Offer(CorruptionReport report)
    {
        var eventWord = HookEvent.Of(report);
        var hooks = _catalog.Match(report, eventWord);
        if (hooks.Count > 0)
            Offer(hooks, HookFacts.From(report, eventWord));
    }

    /// <summary>Makes <paramref name="hooks"/> due for <paramref name="facts"/>, or folds them into the lane's waiting run.</summary>
    public void Offer(IReadOnlyList<Hook> hooks, HookFacts facts)
    {
        List<Hook>? skipped = null;
        lock (_lock)
        {
            foreach (var hook in hooks)
            {
                var lane = LaneOf(hook.Name, facts.Filesystem);
                if (lane.Waiting.Count > 0)
                {
                    var waiting = lane.Waiting[^1];
                    waiting.Fold(facts);
                    _ledger?.Folded(waiting, facts);
                    continue;
                }
                if (hook.Repeat.NextAllowed(lane.Runs, lane.LastStart) is not { } notBefore)
                {
                    (skipped ??= new()).Add(hook);
                    continue;
                }
                var run = new HookRun(Guid.CreateVersion7(_time.GetUtcNow()).ToString(), hook.Name, facts, notBefore) { Sequence = ++_sequence };
                _ledger?.Due(run);
                lane.Waiting.Add(run);
            }
            CompactIfLarge();
        }
        if (skipped is not null)
            foreach (var hook in skipped)
            {
                _log.Debug("Hook {Hook} already ran for {Filesystem} (Repeat=once); report {Report} does not run it again", hook.Name, facts.Filesystem, facts.ReportId);
                Skipped?.Invoke(hook, facts);
            }
        _wake.Set();
    }

    /// <summary>Looks at the waiting runs now (after the clock moved, in tests).</summary>
    public void Wake() => _wake.Set();

    private void Loop()
    {
        while (!_stopping)
        {
            TimeSpan? wait;
            lock (_lock)
                wait = StartDue();
            // The clock is the injected one; waking is real time, so a long wait is cut into checks.
            var ms = wait is { } w ? (int)Math.Clamp(Math.Ceiling(w.TotalMilliseconds), 1, 60_000) : 60_000;
            _wake.WaitOne(ms);
        }
    }

    /// <summary>Starts what may start now; returns how long until a waiting run's policy lets it start.</summary>
    private TimeSpan? StartDue()
    {
        if (_stopping)
            return null;
        var now = _time.GetUtcNow();
        TimeSpan? next = null;
        var candidates = _lanes.Values.Where(l => l.Running is null && l.Waiting.Count > 0).OrderBy(l => l.Waiting[0].Sequence).ToList();
        foreach (var lane in candidates)
        {
            var run = lane.Waiting[0];
            if (run.NotBefore > now)
            {
                var until = run.NotBefore - now;
                next = next is { } n && n < until ? n : until;
                continue;
            }
            if (_running >= MaxConcurrent)
                break;
            lane.Waiting.RemoveAt(0);
            lane.Running = run;
            run.PreviousRuns = lane.Runs;
            lane.Runs++;
            lane.LastStart = now;
            _running++;
            PeakRunning = Math.Max(PeakRunning, _running);
            var hook = _catalog.Find(run.Hook);
            var worker = new Thread(() => Execute(hook, run, lane, now)) { Name = "hook " + run.Hook, IsBackground = true };
            _workers.RemoveAll(t => !t.IsAlive);
            _workers.Add(worker);
            worker.Start();
        }
        return next;
    }

    private void Execute(Hook? hook, HookRun run, Lane lane, DateTimeOffset started)
    {
        HookOutcome outcome;
        try
        {
            outcome = hook is null
                ? HookOutcome.Skip($"the hook {run.Hook} is no longer configured (or is refused now)", started)
                : _runner.Run(hook, run, pid =>
                {
                    run.Process = new RunProcess(pid, HookLedger.ProcessStartTime(pid) ?? "", HookLedger.BootId());
                    _ledger?.Started(run, run.Process);
                }, _stop.Token);
        }
        catch (Exception e)
        {
            _log.Error(e, "Hook {Hook} run {Run} failed in ErrorWatch itself", run.Hook, run.Id);
            outcome = new HookOutcome { Result = HookOutcome.Failure, Detail = "ErrorWatch could not run it: " + e.Message, Started = started };
        }
        lock (_lock)
        {
            if (outcome.Result == HookOutcome.Skipped)
            {
                // It never ran: the repeat policy should not count it.
                lane.Runs = lane.DoneRuns;
                lane.LastStart = lane.DoneLastStart;
            }
            else if (!outcome.Interrupted)
            {
                lane.DoneRuns++;
                lane.DoneLastStart = started;
            }
            // Interrupted by the stop: not done, so the ledger runs it again at the next start.
            if (!outcome.Interrupted)
            {
                _ledger?.Done(run, outcome);
                lane.Last = new LastRun(run.Hook, run.Filesystem, outcome.Started, outcome.Result, outcome.Detail);
            }
            CompactIfLarge(done: run);
        }
        try
        {
            Finished?.Invoke(hook, run, outcome);
        }
        catch (Exception e)
        {
            _log.Error(e, "Recording the outcome of hook {Hook} run {Run} failed", run.Hook, run.Id);
        }
        // Only now is the lane free: its next run starts after this one's outcome is out.
        lock (_lock)
        {
            lane.Running = null;
            _running--;
        }
        Signal();
    }

    /// <summary>Rewrites the ledger from what this dispatcher knows when it has grown large (a long storm folds many reports). Under the lock.</summary>
    private void CompactIfLarge(HookRun? done = null)
    {
        if (_ledger is not { WantsCompaction: true } ledger)
            return;
        ledger.Compact(
            _lanes.Values.Where(l => l.DoneRuns > 0 || l.Last is not null).Select(l => new LaneHistory(l.Hook, l.Filesystem, l.DoneRuns, l.DoneLastStart) { Last = l.Last }),
            _lanes.Values.SelectMany(l => (l.Running is { } r && r != done ? [r] : Array.Empty<HookRun>()).Concat(l.Waiting)).OrderBy(r => r.Sequence).Select(r => (r, r.Process)));
    }

    /// <summary>True once nothing runs and nothing waiting may start now (tests).</summary>
    public bool WaitIdle(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            lock (_lock)
            {
                var now = _time.GetUtcNow();
                if (_running == 0 && !_lanes.Values.Any(l => l.Waiting.Count > 0 && l.Waiting[0].NotBefore <= now))
                    return true;
            }
            Thread.Sleep(10);
        }
        return false;
    }

    /// <summary>No new runs from now on; running ones get SIGTERM (their units are left to systemd). Does not wait.</summary>
    public void BeginStop()
    {
        _stopping = true;
        _stop.Cancel();
        _wake.Set();
    }

    /// <summary>Stops and waits up to <paramref name="budget"/> for running hooks to end; what did not finish runs again at the next start.</summary>
    public void Stop(TimeSpan budget)
    {
        var deadline = DateTime.UtcNow + budget;
        BeginStop();
        _thread?.Join(Remaining(deadline));
        List<Thread> workers;
        lock (_lock)
            workers = [.. _workers];
        foreach (var worker in workers)
            if (!worker.Join(Remaining(deadline)))
                _log.Warning("Hook {Thread} still running at the stop deadline; it runs again at the next start", worker.Name);
        _ledger?.Sync();
    }

    private static TimeSpan Remaining(DateTime deadline) => deadline - DateTime.UtcNow is { Ticks: > 0 } left ? left : TimeSpan.Zero;

    private void Signal() => _wake.Set();

    /// <summary>Stops (within a second) unless stopped already. The wake event and the stop token stay valid for runs still ending.</summary>
    public void Dispose()
    {
        if (!_stopping)
            Stop(TimeSpan.FromSeconds(1));
    }
}
