using ErrorWatch.Reports;
using ErrorWatch.Store;

namespace ErrorWatch.Publishing;

/// <summary>
/// An output for reports (stdout now; journald, D-Bus, OpenTelemetry and hooks join here).
/// Called on the decode thread, never on the read loop, so a slow sink cannot stall reading.
/// </summary>
public interface IReportSink
{
    string Name { get; }
    void Publish(CorruptionReport report);

    /// <summary>As <see cref="Publish(CorruptionReport)"/>, told where the store holds the report (null: held in memory, not written yet).</summary>
    void Publish(CorruptionReport report, StorePosition? stored) => Publish(report);
}

/// <summary>
/// An output that accounts for every stored report after a crash too: it moves a
/// <see cref="DeliveryCursor"/> over the store as it delivers, and at the next start it is given,
/// before anything new, what was stored after the cursor (at least once).
/// </summary>
public interface IDurableSink : IReportSink
{
    /// <summary>Set by the daemon before the first report; null when there is no state directory.</summary>
    DeliveryCursor? Cursor { get; set; }

    /// <summary>
    /// A report stored after the cursor that the output may never have had (the last run ended
    /// without delivering it), oldest first, before any new one.
    /// </summary>
    void Replay(CorruptionReport missed);

    /// <summary>The replay is over: what was stored up to <paramref name="end"/> has been given.</summary>
    void Replayed(StorePosition end);
}

/// <summary>
/// An output that reads what it delivers from the store itself, after its <see cref="DeliveryCursor"/>
/// (OTLP log records): a report reaches it only once stored, so an outage of its own or a crash
/// costs it nothing, and it never holds reports in memory. <see cref="IReportSink.Publish(CorruptionReport)"/>
/// only tells it that the store has grown.
/// </summary>
public interface IStoreFollower : IReportSink
{
    /// <summary>
    /// Called once, before the first report: deliver from <paramref name="cursor"/> on, up to
    /// <paramref name="storeEnd"/> (whole records only) as it grows. What lies before
    /// <paramref name="startEnd"/> was stored by an earlier run.
    /// </summary>
    void Follow(string stateDirectory, DeliveryCursor cursor, Func<StorePosition?> storeEnd, StorePosition? startEnd);

    /// <summary>The store has grown without a report being published (it wrote reports it had held).</summary>
    void StoreGrew();
}
