using ErrorWatch.Publishing.Otlp.Proto;
using ErrorWatch.Reports;
using ErrorWatch.Store;
using Serilog;

namespace ErrorWatch.Publishing.Otlp;

/// <summary>
/// One OTLP log record per report, delivered from the store rather than from memory: a thread of
/// its own (<c>otlp-logs</c>) reads the records stored after its <see cref="DeliveryCursor"/>, sends
/// them in batches and moves the cursor once the collector has taken a batch. So a collector outage,
/// a refusal or a kill -9 loses no record: whatever was not taken is sent again, from the
/// store, when the collector answers again or at the next start (marked
/// <c>errorwatch.replayed=true</c> when an earlier run stored it). At least once: a batch taken just
/// before a crash, whose cursor move was lost, is sent again (at most <see cref="MaxBatch"/> records).
/// A report reaches OTLP once the store has written it (while the store cannot write, the journal,
/// D-Bus and metrics carry it; OTLP follows when the store writes it).
/// The decode thread only wakes this thread; it never waits for it.
/// </summary>
public sealed class OtlpLogDelivery : IStoreFollower, IDisposable
{
    public const string ThreadName = "otlp-logs";
    /// <summary>Records per export request: a few hundred KiB of protobuf.</summary>
    public const int MaxBatch = 256;
    /// <summary>After a wake, reports that follow within this time go in the same request.</summary>
    private static readonly TimeSpan Gather = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan FirstRetry = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LastRetry = TimeSpan.FromSeconds(30);
    /// <summary>A collector that refuses (wrong headers, endpoint, data) is asked again this rarely: fixed there, or in the configuration and a restart, it gets every record.</summary>
    private static readonly TimeSpan RefusedRetry = TimeSpan.FromSeconds(60);

    private readonly OtlpLogSender _sender;
    private readonly OtlpLogRecords _records;
    private readonly ILogger _log;
    private readonly AutoResetEvent _wake = new(false);
    private readonly CancellationTokenSource _stop = new();
    private readonly ManualResetEventSlim _stopRequested = new(false);
    private Thread? _thread;
    private string? _state;
    private DeliveryCursor? _cursor;
    private Func<StorePosition?>? _storeEnd;
    private StorePosition _replayedUpTo;
    private string? _outage;
    private volatile bool _stopping;

    internal OtlpLogDelivery(OtlpDestination destination, IEnumerable<KeyValuePair<string, string>> resource, ILogger log)
    {
        _sender = new OtlpLogSender(destination);
        _records = new OtlpLogRecords(resource);
        _log = log;
    }

    /// <summary>The output's name, and its cursor's file: <c>&lt;state&gt;/cursors/otlp-logs</c>.</summary>
    public string Name => ThreadName;

    // The report is in the store already (or held there until it can write): only the thread's wake-up.
    public void Publish(CorruptionReport report) => _wake.Set();

    public void StoreGrew() => _wake.Set();

    public void Follow(string stateDirectory, DeliveryCursor cursor, Func<StorePosition?> storeEnd, StorePosition? startEnd)
    {
        _state = stateDirectory;
        _cursor = cursor;
        _storeEnd = storeEnd;
        _replayedUpTo = startEnd ?? default;
        if (cursor.Position is { } from && startEnd is { } end && from < end)
            _log.Information("OTLP log records: {From} to {End} of the store were not delivered by the last run; sending them, marked replayed", from, end);
        _thread = new Thread(Run) { Name = ThreadName, IsBackground = true };
        _thread.Start();
    }

    private void Run()
    {
        var delay = FirstRetry;
        var at = _cursor!.Position ?? default;
        while (true)
        {
            var result = SendBatch(ref at, _stop.Token, out var sent);
            if (result is { Delivered: true })
            {
                delay = FirstRetry;
                // A short batch took all there was: let the next reports gather, so that a storm goes out
                // in full requests rather than in many small ones.
                if (sent < MaxBatch)
                    Gathering();
                continue;
            }
            if (_stopping)
                return; // sent what was pending, or the collector did not take it: the next start sends it
            if (result is not { } failed)
            {
                // Nothing after the cursor: sleep until a report comes (an idle daemon never wakes here).
                Wait(Timeout.InfiniteTimeSpan);
                Gathering();
                continue;
            }
            var wait = !failed.Retryable ? RefusedRetry : failed.RetryAfter is { } asked && asked > TimeSpan.Zero ? Min(asked, LastRetry * 4) : delay;
            delay = Min(delay * 2, LastRetry);
            Wait(wait);
        }
    }

    /// <summary>
    /// Sends what lies after <paramref name="at"/> (at most <see cref="MaxBatch"/> records); null when
    /// there was nothing. A taken batch moves the cursor and <paramref name="at"/>; a failed one leaves
    /// both, so the same records go again.
    /// </summary>
    private ExportOutcome? SendBatch(ref StorePosition at, CancellationToken cancel, out int sent)
    {
        sent = 0;
        if (_storeEnd!() is not { } end || end <= at)
            return null;
        var records = new List<LogRecord>(MaxBatch);
        var problems = new List<string>();
        var observed = DateTimeOffset.UtcNow;
        var replayedUpTo = _replayedUpTo;
        var next = StoredReports.ReadBatch(_state!, at, end, MaxBatch, (in StoredRecord record) =>
        {
            try
            {
                records.Add(_records.Record(record.Report(), replayed: record.End <= replayedUpTo, observed));
            }
            catch (ReportFormatException e)
            {
                problems.Add($"a stored report cannot be read back ({e.Message}); it is not sent");
            }
            return true;
        }, problems);
        foreach (var problem in problems)
            _log.Warning("OTLP log records: {Problem}", problem);
        if (records.Count == 0)
        {
            // Only damage or dropped segments lay there: step over them.
            var moved = next > at;
            Advance(ref at, next);
            return moved ? new ExportOutcome(true, false, null) : null;
        }
        var outcome = _sender.Send(_records.Request(records), cancel);
        if (!outcome.Delivered)
        {
            if (_outage is null)
            {
                _outage = outcome.Problem;
                if (outcome.Retryable)
                    _log.Warning("OTLP log records: the collector at {Endpoint} did not take them ({Problem}); they wait in the store and are sent again when it does (logged again when it recovers)",
                        _sender.Endpoint, outcome.Problem);
                else
                    _log.Error("OTLP log records: the collector at {Endpoint} refused them ({Problem}); they wait in the store and are offered again every {Interval} (check [OpenTelemetry] Endpoint, Protocol and Headers)",
                        _sender.Endpoint, outcome.Problem, RefusedRetry);
            }
            return outcome;
        }
        sent = records.Count;
        if (outcome.Rejected > 0)
        {
            // Taken, and some refused for good (the collector says so): sending them again would not help.
            _log.Warning("OTLP log records: the collector took a batch but rejected {Rejected} of its {Count} record(s): {Message}", outcome.Rejected, records.Count, outcome.Problem ?? "no reason given");
        }
        if (_outage is not null)
        {
            _log.Information("OTLP log records: the collector takes them again; the records stored meanwhile follow");
            _outage = null;
        }
        Advance(ref at, next);
        return outcome;
    }

    private void Advance(ref StorePosition at, StorePosition next)
    {
        at = next;
        _cursor!.Advance(next);
    }

    private void Wait(TimeSpan timeout)
    {
        if (!_stopping)
            _wake.WaitOne(timeout);
    }

    /// <summary>
    /// <see cref="Gather"/>, or less when stopping. Not ended by a wake: in a storm a report is stored
    /// every few microseconds, and each one's wake would end the gathering at once.
    /// </summary>
    private void Gathering() => _stopRequested.Wait(Gather);

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    /// <summary>
    /// Stops the thread: a last send of what is pending, within <paramref name="budget"/>; what the
    /// collector has not taken by then is sent at the next start.
    /// </summary>
    public void Stop(TimeSpan budget)
    {
        if (_thread is null)
            return;
        // The last send is cut off at the budget: a gone collector must not hold up SIGTERM.
        _stopping = true;
        _stop.CancelAfter(budget);
        _stopRequested.Set();
        _wake.Set();
        if (!_thread.Join(budget + TimeSpan.FromMilliseconds(100)))
            _log.Warning("OTLP log records: still sending at shutdown; what was not taken is sent at the next start");
        _thread = null;
    }

    public void Dispose()
    {
        Stop(TimeSpan.Zero);
        _sender.Dispose();
        _stop.Dispose();
        _stopRequested.Dispose();
        _wake.Dispose();
    }
}
