using ErrorWatch.Filesystems;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Reports;
using ErrorWatch.Watching;

namespace ErrorWatch.Health;

/// <summary>
/// One filesystem's native error state (ext4 counters, XFS health), made by its filesystem module
/// and checked by the <see cref="HealthLoop"/> thread only. A check compares what the kernel knows with what was
/// already reported and turns the difference into <see cref="HealthFinding"/>s.
/// </summary>
public interface IHealthSource : IDisposable
{
    Superblock Superblock { get; }

    /// <summary>An fd to poll (ext4 errors_count for POLLPRI, an XFS health monitor for POLLIN), or -1.</summary>
    int PollFd { get; }
    short PollEvents { get; }

    /// <summary>What the source reads from (for logs and the capability report).</summary>
    string Describe();

    /// <summary>The poll fd is ready: consume it; true when a check should follow now.</summary>
    bool OnReady(List<HealthFinding> findings);

    void Check(HealthTrigger trigger, List<HealthFinding> findings);

    /// <summary>
    /// A kernel log line named this filesystem's device: remember what it points at for the next
    /// check; a <see cref="KernelLogKind.Mounted"/> line ends what earlier lines said.
    /// </summary>
    void Hint(in KernelLogSignal signal);

    /// <summary>A report about this filesystem went out (any source): keep the baseline in step.</summary>
    void Published(CorruptionReport report);

    /// <summary>
    /// True while ErrorWatch holds the filesystem's own live monitor (the XFS health monitor, 7.0+):
    /// its fanotify reports pair with the monitor's records.
    /// </summary>
    bool Monitored => false;

    /// <summary>Checked once more when ErrorWatch stops, so that errors counted in its last moments are not left to the next start.</summary>
    bool CheckAtStop => false;
}
