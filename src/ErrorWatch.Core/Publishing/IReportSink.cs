using ErrorWatch.Reports;

namespace ErrorWatch.Publishing;

/// <summary>
/// An output for reports (stdout now; journald, D-Bus, OpenTelemetry and hooks join here).
/// Called on the decode thread, never on the read loop, so a slow sink cannot stall reading.
/// </summary>
public interface IReportSink
{
    string Name { get; }
    void Publish(CorruptionReport report);
}
