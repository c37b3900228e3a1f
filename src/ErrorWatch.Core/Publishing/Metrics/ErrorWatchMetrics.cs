using System.Diagnostics;
using System.Diagnostics.Metrics;
using ErrorWatch.Decoding;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing.Metrics;

/// <summary>
/// The Meter "ErrorWatch" (docs/metrics.md). Attributes are bounded: device, primary mount point,
/// filesystem type, errno name, source, event, severity; never an inode, a path or a report id.
/// Counters move in <see cref="Publish"/> (an output like the others); gauges are read from the
/// daemon's ledger when a reader collects, on the reader's thread.
/// </summary>
public sealed class ErrorWatchMetrics : IReportSink, IDisposable
{
    public const string MeterName = "ErrorWatch";

    private readonly Meter _meter;
    private readonly Counter<long> _errors;
    private readonly Counter<long> _reports;
    private readonly Counter<long> _hookRuns;
    private readonly Histogram<double> _hookDuration;
    private readonly Histogram<double> _latency;

    // Errno name → event word, for errnos folded into another errno's report under pressure.
    private static readonly Dictionary<string, string> EventByErrno = Enumerable.Range(1, 200)
        .Select(ErrorMeaning.Generic).Where(m => m.Name.StartsWith('E'))
        .GroupBy(m => m.Name).ToDictionary(g => g.Key, g => CorruptionReport.EventNameOf(g.First().Category), StringComparer.Ordinal);

    public ErrorWatchMetrics(Func<IReadOnlyList<FilesystemStatus>> watched, Func<long> eventsRead)
    {
        _meter = new Meter(MeterName, ProductVersion.Text);
        _errors = _meter.CreateCounter<long>("errorwatch.filesystem.errors", "{error}",
            "Filesystem errors reported by the kernel or found in the filesystem's own records, by errno (exact counts)");
        _reports = _meter.CreateCounter<long>("errorwatch.reports", "{report}", "Corruption reports published, by severity");
        _hookRuns = _meter.CreateCounter<long>("errorwatch.hooks.runs", "{run}", "Recovery hook runs, by hook and outcome");
        // Buckets in seconds (the SDK's defaults are made for milliseconds).
        _hookDuration = _meter.CreateHistogram<double>("errorwatch.hook.duration", "s", "How long recovery hooks ran", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600] });
        _latency = _meter.CreateHistogram<double>("errorwatch.report.latency", "s", "From the kernel event being read to every output done", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _meter.CreateObservableGauge("errorwatch.filesystem.health", () => watched().Select(s =>
                new Measurement<int>((int)s.Health, FilesystemTags(s))),
            null, "Per watched filesystem: 0 ok, 1 errors seen and not acknowledged, 2 read-only after an error, 3 shut down");
        _meter.CreateObservableGauge("errorwatch.filesystem.last_error", () => watched().Where(s => s.LastErrorTime is not null).Select(s =>
                new Measurement<double>(s.LastErrorTime!.Value.ToUnixTimeMilliseconds() / 1000.0, FilesystemTags(s))),
            "s", "Unix time of the filesystem's last reported error");
        _meter.CreateObservableGauge("errorwatch.watched_filesystems", () => watched().Count, "{filesystem}", "Filesystems watched now");
        _meter.CreateObservableCounter("errorwatch.events.read", eventsRead, "{event}", "FAN_FS_ERROR events read from the kernel");
    }

    public string Name => "metrics";

    public void Publish(CorruptionReport report)
    {
        var fs = report.Filesystem;
        var device = new KeyValuePair<string, object?>("system.device", fs.Device);
        var mountpoint = new KeyValuePair<string, object?>("system.filesystem.mountpoint", fs.Mountpoints.Length > 0 ? fs.Mountpoints[0].TextOrEscaped : "");
        var type = new KeyValuePair<string, object?>("system.filesystem.type", fs.Type);
        var source = new KeyValuePair<string, object?>("errorwatch.source", report.Source);
        // A folded report's other errnos get the event their errno usually means.
        foreach (var (name, count) in report.Error.ByErrno)
            AddErrors(name, name == report.Error.Name ? report.EventName : EventByErrno.GetValueOrDefault(name, "other"), count);
        _reports.Add(1, device, mountpoint, type, new KeyValuePair<string, object?>("errorwatch.severity", report.Severity.Word()));

        void AddErrors(string errno, string eventName, ulong count) =>
            _errors.Add((long)Math.Min(count, long.MaxValue), device, mountpoint, type,
                new KeyValuePair<string, object?>("error.type", errno), source, new KeyValuePair<string, object?>("errorwatch.event", eventName));
    }

    /// <summary>Seconds from the kernel event being read to every output done with its report.</summary>
    public void ReportDone(double seconds) => _latency.Record(seconds);

    /// <summary>One recovery hook run or skip (Recovery/HookSink.Ran): outcome success, failure, timeout or skipped.</summary>
    public void HookRan(string hook, string outcome, TimeSpan duration)
    {
        var tag = new KeyValuePair<string, object?>("errorwatch.hook", hook);
        _hookRuns.Add(1, tag, new KeyValuePair<string, object?>("errorwatch.outcome", outcome));
        // A skipped run never ran: it has no duration to count.
        if (outcome != "skipped")
            _hookDuration.Record(duration.TotalSeconds, tag);
    }

    private static KeyValuePair<string, object?>[] FilesystemTags(FilesystemStatus s)
    {
        var sb = s.Superblock!;
        var primary = sb.MountsByPreference.FirstOrDefault();
        return
        [
            new("system.device", sb.DevicePath),
            new("system.filesystem.mountpoint", primary is null ? "" : primary.MountPoint.TextOrEscaped),
            new("system.filesystem.type", sb.FsType),
        ];
    }


    public void Dispose() => _meter.Dispose();
}
