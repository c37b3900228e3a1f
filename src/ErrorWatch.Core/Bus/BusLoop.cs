using System.Collections.Concurrent;
using ErrorWatch.Interop;
using ErrorWatch.Watching;
using Serilog;

namespace ErrorWatch.Bus;

/// <summary>
/// The thread that owns a bus connection: connects (and reconnects with backoff when the bus goes
/// away), dispatches sd-bus callbacks, and runs work other threads post to it. Work is run even
/// while disconnected (with a null connection), so state kept on this thread never falls behind.
/// The connection and the state its work keeps are guarded by one gate, which the loop gives up only
/// while it waits in poll(): there, <see cref="TryRunHere"/> lets another thread run work itself
/// (sd-bus allows any thread, one at a time), saving the thread wake-up a post costs.
/// </summary>
public sealed class BusLoop : IDisposable
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan LastBackoff = TimeSpan.FromSeconds(30);
    private const int DispatchBatch = 32;

    private readonly string _name;
    private readonly Func<string?> _address;
    private readonly Action<BusConnection> _onConnect;
    private readonly Action? _onDisconnect;
    private readonly ILogger _log;
    private readonly ConcurrentQueue<Action<BusConnection?>> _work = new();
    private readonly WakeSignal _wake = new();
    private readonly ManualResetEventSlim _connected = new();
    private readonly Lock _gate = new();
    private Thread? _thread;
    private volatile bool _stopping;
    private BusConnection? _connection;
    private long _connects;

    /// <param name="address">Asked at each (re)connection, so configuration and environment changes apply.</param>
    /// <param name="onConnect">On the loop thread after connecting: export objects, own names, subscribe. Throwing counts as a failed connection.</param>
    public BusLoop(string name, Func<string?> address, Action<BusConnection> onConnect, Action? onDisconnect, ILogger log)
    {
        _name = name;
        _address = address;
        _onConnect = onConnect;
        _onDisconnect = onDisconnect;
        _log = log;
    }

    public bool IsConnected => _connected.IsSet;
    /// <summary>Successful connections so far (a reconnection adds one).</summary>
    public long Connections => Interlocked.Read(ref _connects);
    public string? LastProblem { get; private set; }
    /// <summary>The loop thread's kernel thread id once it runs (0 before): for strace -p and /proc/PID/task when diagnosing what callers make it do.</summary>
    public int ThreadId { get; private set; }

    public void Start()
    {
        _thread = new Thread(Loop) { Name = _name, IsBackground = true };
        _thread.Start();
    }

    public bool WaitConnected(TimeSpan timeout) => _connected.Wait(timeout);

    /// <summary>Runs <paramref name="work"/> on the loop thread (connection null while disconnected).</summary>
    public void Post(Action<BusConnection?> work)
    {
        _work.Enqueue(work);
        _wake.Signal();
    }

    /// <summary>
    /// Runs <paramref name="work"/> on the calling thread, now, when the loop is connected and waiting
    /// in poll() with nothing posted before it (so order is kept); otherwise returns false at once and
    /// the caller posts. Never waits: the gate is only tried. What the work queued but the socket did
    /// not take yet is left to the loop, which is woken to wait for POLLOUT.
    /// </summary>
    public bool TryRunHere(Action<BusConnection> work)
    {
        if (!_work.IsEmpty || !_gate.TryEnter())
            return false;
        try
        {
            if (!_work.IsEmpty || _connection is not { IsOpen: true } bus)
                return false;
            try
            {
                work(bus);
            }
            catch (Exception e)
            {
                _log.Error(e, "{Loop}: work run from another thread failed", _name);
            }
            if (bus.WantsToWrite)
                _wake.Signal();
            return true;
        }
        finally
        {
            _gate.Exit();
        }
    }

    public int Pending => _work.Count;

    /// <summary>The live connection, for callbacks running on the loop thread (null while disconnected).</summary>
    public BusConnection? Current => _connection;

    public void Stop(TimeSpan timeout)
    {
        _stopping = true;
        _wake.Signal();
        if (_thread is { } t && !t.Join(timeout))
            _log.Warning("{Loop} did not stop within {Timeout}", _name, timeout);
    }

    private unsafe void Loop()
    {
        ThreadId = Libc.GetTid();
        var backoff = FirstBackoff;
        var failures = 0;
        while (!_stopping)
        {
            var address = _address();
            try
            {
                if (address is null)
                    throw new BusException("no bus address known", Libc.ENOENT);
                lock (_gate)
                {
                    _connection = BusConnection.Connect(address, _name);
                    _onConnect(_connection);
                    _connection.Flush();
                }
            }
            catch (Exception e) when (e is BusException or InvalidOperationException or ArgumentException)
            {
                LastProblem = e.Message;
                // The first failure is news; repeating it every backoff would flood the log.
                if (failures++ == 0)
                    _log.Warning("{Loop}: {Problem}; retrying with backoff (up to {Max})", _name, e.Message, LastBackoff);
                else
                    _log.Debug("{Loop}: {Problem} (attempt {Attempt})", _name, e.Message, failures);
                Disconnect();
                Sleep(backoff);
                backoff = TimeSpan.FromTicks(Math.Min(LastBackoff.Ticks, backoff.Ticks * 2));
                continue;
            }
            Interlocked.Increment(ref _connects);
            if (failures > 0 || _connects > 1)
                _log.Information("{Loop}: connected to {Address} as {Unique}", _name, address, _connection.UniqueName);
            failures = 0;
            backoff = FirstBackoff;
            LastProblem = null;
            _connected.Set();

            Serve(_connection!);
            if (_stopping)
                break;
            _log.Warning("{Loop}: the bus connection to {Address} was lost; reconnecting", _name, address);
            Disconnect();
        }
        // Whatever was posted before stop still runs (signals flushed if connected).
        lock (_gate)
            RunWork();
        Disconnect();
    }

    private unsafe void Serve(BusConnection bus)
    {
        var fds = stackalloc Libc.PollFd[2];
        while (!_stopping)
        {
            int timeout;
            lock (_gate)
            {
                RunWork();
                // A bounded batch: under a flood of incoming calls, what was posted (signals, replies read
                // off this thread) runs between batches instead of after the whole flood.
                if (!bus.Process(DispatchBatch, out var more) || !bus.IsOpen)
                    return;
                if (more)
                    continue;
                fds[1] = bus.PollFd(out timeout);
            }
            fds[0] = _wake.PollFd;
            // The gate is open here: TryRunHere may send meanwhile, and wakes this poll when it left output queued.
            var r = Libc.Poll(fds, 2, timeout);
            if (r < 0 && Libc.LastErrno != Libc.EINTR)
                return;
            if ((fds[0].REvents & Libc.POLLIN) != 0)
                _wake.Drain();
        }
        lock (_gate)
        {
            RunWork();
            bus.Process();
        }
    }

    /// <summary>
    /// Run on the loop thread each time it has run posted work and none is left: what work
    /// deferred so that a burst does it once (PropertiesChanged after a storm's reports).
    /// </summary>
    public Action<BusConnection?>? Drained { get; set; }

    private void RunWork()
    {
        var ran = false;
        while (_work.TryDequeue(out var work))
        {
            ran = true;
            try
            {
                work(_connection);
            }
            catch (Exception e)
            {
                _log.Error(e, "{Loop}: posted work failed", _name);
            }
        }
        if (ran && Drained is { } drained)
        {
            try
            {
                drained(_connection);
            }
            catch (Exception e)
            {
                _log.Error(e, "{Loop}: work after the queue drained failed", _name);
            }
        }
    }

    /// <summary>Waits out a backoff, still running posted work and waking at once on stop.</summary>
    private unsafe void Sleep(TimeSpan span)
    {
        var until = DateTime.UtcNow + span;
        var fd = stackalloc Libc.PollFd[1];
        while (!_stopping && DateTime.UtcNow < until)
        {
            lock (_gate)
                RunWork();
            fd[0] = _wake.PollFd;
            Libc.Poll(fd, 1, (int)Math.Max(1, (until - DateTime.UtcNow).TotalMilliseconds));
            if ((fd[0].REvents & Libc.POLLIN) != 0)
                _wake.Drain();
        }
    }

    private void Disconnect()
    {
        var wasConnected = _connected.IsSet;
        _connected.Reset();
        lock (_gate)
        {
            if (_connection is null)
                return;
            try
            {
                if (wasConnected)
                    _onDisconnect?.Invoke();
            }
            finally
            {
                _connection.Dispose();
                _connection = null;
            }
        }
    }

    public void Dispose()
    {
        Stop(TimeSpan.FromSeconds(1));
        _wake.Dispose();
        _connected.Dispose();
    }
}
