using ErrorWatch.Decoding;
using ErrorWatch.Reports;

namespace ErrorWatch.Health;

/// <summary>
/// On Linux 7.0+ one XFS problem arrives twice: as a FAN_FS_ERROR event and as an
/// XFS_IOC_HEALTH_MONITOR record. For filesystems whose monitor ErrorWatch holds, the first of the
/// two waits up to <see cref="Window"/> for the other, and a pair becomes one report: the monitor's
/// (it names the structure, range and shutdown reasons) carrying fanotify's errno and count.
/// Synthetic-tested: 6.18 has neither.
/// </summary>
public sealed class MonitorCorrelation
{
    private readonly TimeProvider _time;
    private readonly Dictionary<(string Device, ulong Inode), (CorruptionReport Report, long Deadline)> _pending = new();

    public MonitorCorrelation(TimeSpan window, TimeProvider? time = null)
    {
        Window = window;
        _time = time ?? TimeProvider.System;
    }

    public TimeSpan Window { get; }
    public int Pending => _pending.Count;

    /// <summary>Takes a report; adds to <paramref name="ready"/> whatever can be published now.</summary>
    public void Offer(CorruptionReport report, bool monitored, List<CorruptionReport> ready)
    {
        if (!monitored || report.Category == ErrorCategory.EventsLost
            || report.Source is not (ReportSource.Fanotify or ReportSource.XfsHealthMonitor))
        {
            ready.Add(report);
            return;
        }
        var key = (report.Filesystem.Device, report.Object.Inode ?? 0);
        if (_pending.Remove(key, out var waiting))
        {
            if (waiting.Report.Source != report.Source)
            {
                ready.Add(report.Source == ReportSource.XfsHealthMonitor ? Merge(report, waiting.Report) : Merge(waiting.Report, report));
                return;
            }
            ready.Add(waiting.Report); // two of the same source: different problems
        }
        _pending[key] = (report, _time.GetTimestamp() + (long)(Window.TotalSeconds * _time.TimestampFrequency));
    }

    /// <summary>Reports whose partner did not come in time.</summary>
    public void Expire(List<CorruptionReport> ready)
    {
        var now = _time.GetTimestamp();
        foreach (var (key, waiting) in _pending.ToList())
        {
            if (waiting.Deadline > now)
                continue;
            _pending.Remove(key);
            ready.Add(waiting.Report);
        }
    }

    /// <summary>Everything still waiting (shutdown).</summary>
    public void Drain(List<CorruptionReport> ready)
    {
        ready.AddRange(_pending.Values.Select(p => p.Report));
        _pending.Clear();
    }

    /// <summary>Time until the earliest waiting report is due, or null when none waits.</summary>
    public TimeSpan? NextDue()
    {
        if (_pending.Count == 0)
            return null;
        var ticks = _pending.Values.Min(p => p.Deadline) - _time.GetTimestamp();
        return ticks <= 0 ? TimeSpan.Zero : TimeSpan.FromSeconds((double)ticks / _time.TimestampFrequency);
    }

    private static CorruptionReport Merge(CorruptionReport monitor, CorruptionReport fanotify)
    {
        var details = monitor.Details;
        details.Set("fanotify", new ReportDetails()
            .Set("errno", fanotify.Error.Errno)
            .Set("count", fanotify.Error.Count)
            .Set("kernel_events", fanotify.KernelEvents)
            .Set("report_id", fanotify.Id));
        return monitor with
        {
            Error = monitor.Error with { Count = Math.Max(monitor.Error.Count, fanotify.Error.Count) },
            Object = monitor.Object.Path is null && fanotify.Object.Path is not null ? fanotify.Object : monitor.Object,
            KernelEvents = monitor.KernelEvents + fanotify.KernelEvents,
            Details = details,
        };
    }
}
