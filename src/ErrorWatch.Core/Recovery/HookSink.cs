using ErrorWatch.Configuration;
using ErrorWatch.Publishing;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Reports;
using Serilog;

namespace ErrorWatch.Recovery;

/// <summary>
/// Recovery hooks as an output like the others ("hooks"): each published report is offered to the
/// <see cref="HookDispatcher"/>, which only records and queues (the decode thread never waits for a
/// hook). Outcomes go to the journal (<see cref="HookJournal"/>), the ledger, and <see cref="Ran"/>
/// (the hook metrics: ErrorWatchMetrics.HookRan).
/// </summary>
public sealed class HookSink : IReportSink, Microsoft.Extensions.Hosting.IHostedLifecycleService, IDisposable
{
    private HooksSettings _settings;
    private readonly string? _stateDirectory;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly HookJournal _journal;
    private readonly string _unitBus;
    private readonly Lock _lock = new();
    private HookLedger? _ledger;
    private HookLauncher? _launcher;
    private HookDispatcher? _dispatcher;
    private bool _stopped;

    /// <param name="stateDirectory">Where the ledger lives (null: runs are not durable; tests of other stages).</param>
    /// <param name="unitBus">The bus of systemd for Unit= hooks ("system", or an address in tests).</param>
    public HookSink(HooksSettings settings, string? stateDirectory, IJournal journal, ILogger log, TimeProvider? time = null,
        string unitBus = "system", JournalFallback? fallback = null)
    {
        _settings = settings;
        _stateDirectory = stateDirectory;
        _log = log;
        _time = time ?? TimeProvider.System;
        _journal = new HookJournal(journal, fallback);
        _unitBus = unitBus;
        Catalog = new HookCatalog(settings, log);
    }

    public string Name => "hooks";

    public HookCatalog Catalog { get; }

    /// <summary>The dispatcher once started (tests look at its counters).</summary>
    public HookDispatcher? Dispatcher => _dispatcher;

    /// <summary>(hook, outcome, duration) per run and per skip: success, failure, timeout, skipped.</summary>
    public event Action<string, string, TimeSpan>? Ran;

    /// <summary>Every run that ended, with its outcome (tests).</summary>
    public event Action<Hook?, HookRun, HookOutcome>? Finished;

    /// <summary>Opens the ledger, ends what an earlier ErrorWatch left running, queues its unfinished runs, starts dispatching. Before READY.</summary>
    public void Start()
    {
        lock (_lock)
        {
            if (_dispatcher is not null)
                return;
            if (_stateDirectory is not null)
            {
                try
                {
                    _ledger = HookLedger.Open(_stateDirectory, _log);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _log.Error("Hook ledger in {State} cannot be opened ({Reason}): hook runs are not durable", _stateDirectory, e.Message);
                }
            }
            var reports = _ledger?.RunDirectory ?? Path.Combine(Path.GetTempPath(), $"errorwatch-hooks-{Environment.ProcessId}");
            _launcher = new HookLauncher(reports, _journal, _log, _unitBus);
            var dispatcher = new HookDispatcher(Catalog, _launcher, _ledger, _settings.MaxConcurrent, _time, _log);
            dispatcher.Finished += OnFinished;
            dispatcher.Skipped += (hook, _) => Ran?.Invoke(hook.Name, HookOutcome.Skipped, TimeSpan.Zero);
            dispatcher.Start();
            _dispatcher = dispatcher;
            var hooks = Catalog.Hooks;
            if (hooks.Count > 0 || Catalog.Refused.Count > 0)
                _log.Information("Recovery hooks: {Count} ready ({Names}), {Refused} refused; at most {Max} at once",
                    hooks.Count, string.Join(", ", hooks.Select(h => h.Name)), Catalog.Refused.Count, _settings.MaxConcurrent);
        }
    }

    /// <summary>SIGHUP: the hooks directory is read again and the rules and limits replaced; running hooks go on.</summary>
    public void Reload(HooksSettings settings)
    {
        _settings = settings;
        Catalog.Update(settings);
        if (_dispatcher is { } dispatcher)
            dispatcher.MaxConcurrent = settings.MaxConcurrent;
        _log.Information("Recovery hooks reloaded: {Count} ready, {Refused} refused", Catalog.Hooks.Count, Catalog.Refused.Count);
    }

    public void Publish(CorruptionReport report)
    {
        if (_dispatcher is null)
            Start();
        _dispatcher!.Offer(report);
    }

    private void OnFinished(Hook? hook, HookRun run, HookOutcome outcome)
    {
        var shown = hook ?? new Hook
        {
            Name = run.Hook, Kind = HookKind.Exec, Repeat = RepeatPolicy.Always, Timeout = TimeSpan.Zero, KillGrace = TimeSpan.Zero, Origin = "",
        };
        _journal.Outcome(shown, run, outcome);
        // A run cut short by the stop is not an outcome: it runs again at the next start.
        if (!outcome.Interrupted)
            Ran?.Invoke(run.Hook, outcome.Result, outcome.Duration);
        Finished?.Invoke(hook, run, outcome);
    }

    /// <summary>True once nothing runs and nothing waiting may start now.</summary>
    public bool WaitIdle(TimeSpan timeout) => _dispatcher?.WaitIdle(timeout) ?? true;

    /// <summary>At SIGTERM: start no more runs, send SIGTERM to running hooks. Does not wait.</summary>
    public void BeginStop() => _dispatcher?.BeginStop();

    // On the Generic Host: started with the outputs; told to start no new run as soon as the stop
    // begins (StoppingAsync), and stopped after the pipeline has drained (StopAsync).
    Task Microsoft.Extensions.Hosting.IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        Start();
        return Task.CompletedTask;
    }

    Task Microsoft.Extensions.Hosting.IHostedLifecycleService.StoppingAsync(CancellationToken cancellationToken)
    {
        BeginStop();
        return Task.CompletedTask;
    }

    Task Microsoft.Extensions.Hosting.IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        Stop(TimeSpan.FromMilliseconds(300));
        return Task.CompletedTask;
    }

    Task Microsoft.Extensions.Hosting.IHostedLifecycleService.StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    Task Microsoft.Extensions.Hosting.IHostedLifecycleService.StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    Task Microsoft.Extensions.Hosting.IHostedLifecycleService.StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Waits up to <paramref name="budget"/> for running hooks; unfinished runs stay due for the next start.</summary>
    public void Stop(TimeSpan budget)
    {
        lock (_lock)
        {
            if (_stopped)
                return;
            _stopped = true;
        }
        _dispatcher?.Stop(budget);
        _launcher?.Dispose();
        _ledger?.Dispose();
    }

    public void Dispose()
    {
        if (_dispatcher is not null)
            Stop(TimeSpan.FromSeconds(1));
    }
}
