using System.Diagnostics;
using ErrorWatch.Bus;
using Serilog;

namespace ErrorWatch.Recovery;

/// <summary>
/// Starts systemd units for Unit= hooks, as <c>systemctl start</c> does: through the system bus,
/// org.freedesktop.systemd1.Manager.StartUnit(name, "replace") returns a job, and the
/// JobRemoved(id, job, unit, result) signal says how it ended (done, failed, canceled, timeout,
/// dependency, skipped). The signal is subscribed to before any call, on a connection of its own
/// (its own <see cref="BusLoop"/> thread), so no job can end unseen. systemd runs the unit with its
/// own sandboxing, limits and logging; ErrorWatch records the job's result. A job still running at
/// the hook's timeout is left to systemd (its own timeouts apply) and recorded as timed out.
/// </summary>
public sealed class UnitStarter : IDisposable
{
    public const string Service = "org.freedesktop.systemd1";
    public const string ManagerPath = "/org/freedesktop/systemd1";
    public const string ManagerInterface = "org.freedesktop.systemd1.Manager";

    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(25);
    private static readonly TimeSpan ConnectWait = TimeSpan.FromSeconds(5);

    private readonly string _bus;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    // Touched on the loop thread only.
    private readonly Dictionary<string, Waiter> _jobs = new(StringComparer.Ordinal);
    private BusLoop? _loop;
    private BusSignalHandler? _handler;

    /// <param name="bus">"system" (honours DBUS_SYSTEM_BUS_ADDRESS) or a bus address.</param>
    public UnitStarter(string bus, ILogger log)
    {
        _bus = bus;
        _log = log;
    }

    private sealed class Waiter
    {
        public ManualResetEventSlim Done { get; } = new();
        public string? Job { get; set; }
        public string? Result { get; set; }
        public string? Error { get; set; }
    }

    /// <summary>Starts <paramref name="unit"/> and waits for its job to end, at most <paramref name="timeout"/>. Blocks the calling (run) thread.</summary>
    public HookOutcome Start(string unit, TimeSpan timeout, CancellationToken stop)
    {
        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        HookOutcome Outcome(string result, string detail, Waiter? w = null, bool interrupted = false) => new()
        {
            Result = result, Detail = detail, Started = started, Duration = clock.Elapsed, Unit = unit,
            Job = w?.Job, JobResult = w?.Result, Interrupted = interrupted,
        };

        if (!Interop.SdBus.TryLoad(out var missing))
            return Outcome(HookOutcome.Failure, $"cannot start {unit}: {missing}");
        var loop = Loop();
        if (!loop.WaitConnected(timeout < ConnectWait ? timeout : ConnectWait))
            return Outcome(HookOutcome.Failure, $"cannot start {unit}: the system bus is not reachable ({loop.LastProblem ?? "not connected yet"})");

        var waiter = new Waiter();
        loop.Post(bus =>
        {
            if (bus is null)
            {
                Fail(waiter, "the system bus connection was lost");
                return;
            }
            try
            {
                var call = bus.NewMethodCall(Service, ManagerPath, ManagerInterface, "StartUnit");
                call.Append(unit);
                call.Append("replace");
                var reply = bus.Call(call, CallTimeout);
                try
                {
                    waiter.Job = reply.ReadObjectPath();
                }
                finally
                {
                    BusConnection.Release(reply);
                }
                // Replies come before the signals queued after them: JobRemoved cannot have been missed.
                _jobs[waiter.Job] = waiter;
            }
            catch (BusException e)
            {
                Fail(waiter, e.ErrorName is { } name ? $"{name}: {e.ErrorMessage}" : e.Message);
            }
        });

        var signalled = WaitHandle.WaitTimeout;
        try
        {
            var remaining = timeout - clock.Elapsed;
            signalled = WaitHandle.WaitAny([waiter.Done.WaitHandle, stop.WaitHandle], remaining > TimeSpan.Zero ? remaining : TimeSpan.Zero);
        }
        finally
        {
            if (signalled != 0)
                loop.Post(_ =>
                {
                    if (waiter.Job is { } job)
                        _jobs.Remove(job);
                });
        }
        if (signalled == 1)
            return Outcome(HookOutcome.Failure, $"stopped with ErrorWatch while {unit} ran (systemd goes on with it); it is started again at the next start", waiter, interrupted: true);
        if (signalled != 0)
            return Outcome(HookOutcome.TimedOut, waiter.Job is null
                ? $"systemd did not answer StartUnit({unit}) in time"
                : $"{unit}: job {waiter.Job} still running at the {SystemdValues.FormatTimeSpan(timeout)} timeout; systemd keeps it (systemctl status {unit})", waiter);
        if (waiter.Error is { } error)
            return Outcome(HookOutcome.Failure, $"cannot start {unit}: {error}", waiter);
        return Outcome(waiter.Result == "done" ? HookOutcome.Success : HookOutcome.Failure, $"{unit}: job {waiter.Result}", waiter);
    }

    private static void Fail(Waiter waiter, string error)
    {
        waiter.Error = error;
        waiter.Done.Set();
    }

    private BusLoop Loop()
    {
        lock (_lock)
        {
            if (_loop is not null)
                return _loop;
            _handler = new BusSignalHandler(OnJobRemoved, e => _log.Warning("JobRemoved could not be read: {Reason}", e.Message));
            _loop = new BusLoop("hook units", () => BusConnection.Resolve(_bus), OnConnect, OnDisconnect, _log);
            _loop.Start();
            return _loop;
        }
    }

    private void OnConnect(BusConnection bus)
    {
        _handler!.Match(bus, Service, ManagerPath, ManagerInterface, "JobRemoved");
        try
        {
            // systemd sends job signals to subscribers (and to a job's requester); subscribing makes sure.
            BusConnection.Release(bus.Call(bus.NewMethodCall(Service, ManagerPath, ManagerInterface, "Subscribe"), CallTimeout));
        }
        catch (BusException e)
        {
            _log.Debug("systemd Subscribe(): {Reason}", e.Message);
        }
    }

    /// <summary>Jobs in flight on a lost connection cannot be followed any more.</summary>
    private void OnDisconnect()
    {
        foreach (var waiter in _jobs.Values)
            Fail(waiter, $"the system bus connection was lost while job {waiter.Job} ran");
        _jobs.Clear();
    }

    private void OnJobRemoved(BusMessage signal)
    {
        signal.ReadUInt32();
        var job = signal.ReadObjectPath();
        signal.ReadString();
        var result = signal.ReadString();
        if (_jobs.Remove(job, out var waiter))
        {
            waiter.Result = result;
            waiter.Done.Set();
        }
    }

    public void Dispose()
    {
        BusLoop? loop;
        lock (_lock)
            loop = _loop;
        if (loop is not null)
        {
            loop.Stop(TimeSpan.FromMilliseconds(300));
            loop.Dispose();
        }
        _handler?.Dispose();
    }
}
