using System.Diagnostics;
using Serilog;

namespace ErrorWatch.Daemon;

/// <summary>
/// Sends WATCHDOG=1 every <see cref="IServiceManager.WatchdogInterval"/> (WatchdogSec=/2), but only while
/// <c>alive</c> says the pipeline still works. A hung read or decode loop therefore stops the pings
/// and systemd restarts the service after WatchdogSec=; a timer that pinged unconditionally would
/// only prove that the timer runs. Runs on its own thread so a starved thread pool cannot delay a
/// ping on a healthy pipeline.
/// </summary>
public sealed class Watchdog : Microsoft.Extensions.Hosting.IHostedLifecycleService, IDisposable
{
    private readonly IServiceManager _manager;
    private readonly Func<bool> _alive;
    private readonly ILogger? _log;
    private readonly ManualResetEventSlim _stop = new();
    private readonly Lock _lock = new();
    private Thread? _thread;
    private long _pings;
    private long _withheld;

    /// <param name="alive">Called once per interval on the watchdog thread; false or an exception withholds that ping.</param>
    /// <param name="interval">Overrides the manager's interval (tests); null uses <see cref="IServiceManager.WatchdogInterval"/>.</param>
    public Watchdog(IServiceManager manager, Func<bool> alive, ILogger? log = null, TimeSpan? interval = null)
    {
        _manager = manager;
        _alive = alive;
        _log = log;
        Interval = interval ?? manager.WatchdogInterval;
        if (Interval is { } i && i <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(interval), i, "The watchdog interval must be positive");
    }

    /// <summary>Time between pings, or null when the service manager armed no watchdog (then <see cref="Start"/> does nothing).</summary>
    public TimeSpan? Interval { get; }

    public bool IsRunning => _thread is { IsAlive: true };

    /// <summary>WATCHDOG=1 messages sent.</summary>
    public long Pings => Interlocked.Read(ref _pings);

    /// <summary>Intervals in which the probe said the pipeline was not alive, so no ping was sent.</summary>
    public long Withheld => Interlocked.Read(ref _withheld);

    /// <summary>Pings at once, then every <see cref="Interval"/>. Returns false when there is no watchdog to feed.</summary>
    public bool Start()
    {
        if (Interval is null)
            return false;
        lock (_lock)
        {
            if (_stop.IsSet)
                return false; // stopped for good: a stopped watchdog is not restarted
            if (_thread is not null)
                return true;
            _thread = new Thread(Run) { IsBackground = true, Name = "errorwatch watchdog" };
            _thread.Start();
        }
        _log?.Debug("Watchdog pings every {Interval} while the pipeline is alive", Interval);
        return true;
    }

    /// <summary>Stops pinging and waits for the watchdog thread (at most one probe call) to end.</summary>
    public void Stop()
    {
        Thread? thread;
        lock (_lock)
        {
            thread = _thread;
            _stop.Set();
        }
        if (thread is not null && thread != Thread.CurrentThread && !thread.Join(TimeSpan.FromSeconds(2)))
            _log?.Warning("Watchdog thread did not stop within 2 s (its liveness probe is blocked)");
    }

    // On the Generic Host: pinging from when the host has started (just before READY=1) until the stop.
    Task Microsoft.Extensions.Hosting.IHostedLifecycleService.StartedAsync(CancellationToken cancellationToken)
    {
        Start();
        return Task.CompletedTask;
    }

    Task Microsoft.Extensions.Hosting.IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        Stop();
        return Task.CompletedTask;
    }

    Task Microsoft.Extensions.Hosting.IHostedService.StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    Task Microsoft.Extensions.Hosting.IHostedLifecycleService.StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    Task Microsoft.Extensions.Hosting.IHostedLifecycleService.StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    Task Microsoft.Extensions.Hosting.IHostedLifecycleService.StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    // The event is never disposed: a slim event owns no kernel handle unless WaitHandle is asked for,
    // and Stop() must stay safe to call after Dispose().
    public void Dispose() => Stop();

    private void Run()
    {
        var interval = Interval!.Value;
        var withholding = false;
        // Deadlines, not fixed sleeps: a slow probe must not stretch the interval towards WatchdogSec=.
        var next = Stopwatch.GetTimestamp();
        while (true)
        {
            if (Probe(out var why))
            {
                _manager.WatchdogPing();
                Interlocked.Increment(ref _pings);
                if (withholding)
                    _log?.Warning("Pipeline alive again; watchdog pings resumed");
                withholding = false;
            }
            else
            {
                Interlocked.Increment(ref _withheld);
                if (!withholding)
                    _log?.Error("Pipeline not alive ({Why}); withholding watchdog pings so the service manager restarts ErrorWatch", why);
                withholding = true;
            }
            next += (long)(interval.TotalSeconds * Stopwatch.Frequency);
            var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), next);
            if (wait < TimeSpan.Zero)
            {
                // The probe took longer than an interval: probe again at once, and count from now.
                next = Stopwatch.GetTimestamp();
                wait = TimeSpan.Zero;
            }
            if (_stop.Wait(wait))
                return;
        }
    }

    private bool Probe(out string why)
    {
        try
        {
            why = "liveness probe said no";
            return _alive();
        }
        catch (Exception e)
        {
            why = "liveness probe threw " + e.GetType().Name + ": " + e.Message;
            return false;
        }
    }
}
