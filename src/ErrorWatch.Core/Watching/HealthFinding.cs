using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Reports;
using ErrorWatch.Health;

namespace ErrorWatch.Watching;

/// <summary>What woke a health check.</summary>
public enum HealthTrigger
{
    /// <summary>The filesystem was just watched (startup or a new mount).</summary>
    FirstWatch,
    /// <summary>The kernel sysfs-notified errors_count.</summary>
    CounterNotified,
    /// <summary>A fanotify report for this filesystem was published.</summary>
    FanotifyReport,
    /// <summary>A kernel log line named this filesystem.</summary>
    KernelLog,
    /// <summary>The periodic check.</summary>
    Periodic,
    /// <summary>The last check before ErrorWatch stops.</summary>
    Stopping,
    /// <summary>An XFS health monitor event arrived.</summary>
    Monitor,
}

/// <summary>
/// A fact a native health source found (an error count, a sick structure, a state change), to
/// become one <see cref="CorruptionReport"/>. The decoding stage adds meaning, path and the
/// filesystem's own detail, exactly as for fanotify events.
/// </summary>
public sealed record HealthFinding
{
    public required Superblock Superblock { get; init; }
    /// <summary>One of <see cref="ReportSource"/>.</summary>
    public required string Source { get; init; }
    public required DateTimeOffset Time { get; init; }
    /// <summary>Positive errno the finding stands for (117 corruption, 108 shutdown, 30 read-only...).</summary>
    public required int Errno { get; init; }
    /// <summary>Errors of the kernel's count this finding accounts for (0 for a state change or sick bits).</summary>
    public ulong Count { get; init; }
    /// <summary>Overrides the errno's category (a read-only transition is not an EROFS I/O error).</summary>
    public ErrorCategory? Category { get; init; }
    /// <summary>What was found, in words: "AG 0 inode btree is sick", "became read-only after an error".</summary>
    public required string What { get; init; }
    public ulong? Inode { get; init; }
    public uint? Generation { get; init; }
    /// <summary>Source-specific facts, placed under the source's name in the report details.</summary>
    public ReportDetails Details { get; init; } = new();
    /// <summary>Stopwatch timestamp of the observation (report latency starts here).</summary>
    public long Timestamp { get; init; } = System.Diagnostics.Stopwatch.GetTimestamp();
    public HealthTrigger Trigger { get; init; }
}
