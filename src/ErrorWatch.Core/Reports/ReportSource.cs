namespace ErrorWatch.Reports;

/// <summary>Where a report's facts came from (the report's <c>source</c> field).</summary>
public static class ReportSource
{
    /// <summary>A FAN_FS_ERROR event.</summary>
    public const string Fanotify = "fanotify";
    /// <summary>errors_count grew by more than fanotify announced (group/bitmap errors, lost events).</summary>
    public const string Ext4Sysfs = "ext4-sysfs";
    /// <summary>Errors recorded in the superblock before ErrorWatch watched the filesystem.</summary>
    public const string Ext4Superblock = "ext4-superblock";
    /// <summary>The filesystem went read-only or shut down (ext4 stops announcing errors after that).</summary>
    public const string Ext4State = "ext4-state";
    /// <summary>XFS sick bits (FSGEOMETRY, AG_GEOMETRY, BULKSTAT) or a forced shutdown.</summary>
    public const string XfsHealth = "xfs-health";
    /// <summary>An XFS_IOC_HEALTH_MONITOR event (Linux 7.0+).</summary>
    public const string XfsHealthMonitor = "xfs-health-monitor";

    /// <summary>Every source, for what accepts one by name (a hook rule's Sources=).</summary>
    public static readonly IReadOnlyList<string> All = [Fanotify, Ext4Sysfs, Ext4Superblock, Ext4State, XfsHealth, XfsHealthMonitor];
}
