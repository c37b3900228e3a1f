using System.Collections.Concurrent;
using ErrorWatch.Interop;
using Serilog;

namespace ErrorWatch.Publishing.DBus;

/// <summary>
/// The thread GetReports and GetReport read the report store on, so the bus thread never waits for the
/// disk: one read at a time, in the order asked. Idle, it waits without waking (no timer).
/// </summary>
internal sealed class ReportReader : IDisposable
{
    private readonly BlockingCollection<Action> _work = new();
    private readonly ManualResetEventSlim _running = new();
    private readonly Thread _thread;
    private readonly ILogger _log;

    public ReportReader(ILogger log)
    {
        _log = log;
        _thread = new Thread(Run) { Name = "report reader", IsBackground = true };
    }

    /// <summary>Its kernel thread id once started (0 before): for strace -p when checking what callers make it read.</summary>
    public int ThreadId { get; private set; }

    public void Start()
    {
        _thread.Start();
        _running.Wait(TimeSpan.FromSeconds(5));
    }

    public void Post(Action work) => _work.Add(work);

    private void Run()
    {
        ThreadId = Libc.GetTid();
        _running.Set();
        foreach (var work in _work.GetConsumingEnumerable())
        {
            try
            {
                work();
            }
            catch (Exception e)
            {
                _log.Error(e, "A report store read failed");
            }
        }
    }

    /// <summary>Runs what was asked already (each answers through the bus thread, still running), then stops.</summary>
    public void Dispose()
    {
        _work.CompleteAdding();
        if (_thread.IsAlive && !_thread.Join(TimeSpan.FromSeconds(2)))
            _log.Warning("The report reader did not stop within 2 s");
        _running.Dispose();
    }
}
