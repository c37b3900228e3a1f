using ErrorWatch.Filesystems;
using ErrorWatch.Decoding;
using ErrorWatch.Health;
using ErrorWatch.Health.KernelLog;

namespace ErrorWatch.Modules;

/// <summary>
/// Everything ErrorWatch knows about one kind of filesystem: what its events and errnos mean, how
/// one of its superblocks is identified, where its own error record is read, what its kernel log
/// lines say. Registered once in <see cref="FilesystemModules"/> by its statfs f_type; code outside
/// a module asks the registry and never compares a magic itself.
/// </summary>
public interface IFilesystemModule
{
    /// <summary>statfs f_type, the superblock magic it is registered by (include/uapi/linux/magic.h).</summary>
    ulong Magic { get; }

    /// <summary>The mount types (mountinfo's fstype) it serves, its own name first: "ext4", "ext3", "ext2".</summary>
    IReadOnlyList<string> TypeNames { get; }

    /// <summary>Decodes its file handles, says what an errno means on it and adds its own details to a report.</summary>
    IFilesystemDecoder Decoder { get; }

    /// <summary>A decoder for a fanotify info record type only this filesystem sends, or null.</summary>
    IInfoRecordDecoder? InfoRecord(byte recordType) => null;

    /// <summary>
    /// The UUID read through the filesystem's own interface, for kernels without FS_IOC_GETFSUUID
    /// (before 6.10); null when it has none. <paramref name="rootFd"/> is open on a mount's root.
    /// </summary>
    Guid? ReadUuid(int rootFd, string devicePath) => null;

    /// <summary>The source of its own error record for one watched superblock, or null when it keeps none.</summary>
    IHealthSource? CreateHealthSource(HealthSourceContext context) => null;

    /// <summary>Its error lines in the kernel log, or null when none call for a check.</summary>
    IKernelLogDialect? KernelLog => null;

    /// <summary>
    /// Whether this mount went read-only or shut down after an error, asked as it starts to be watched
    /// (a restart must not turn a shut-down filesystem green); <see cref="MountErrorState.Normal"/>
    /// when the filesystem does not tell.
    /// </summary>
    MountErrorState StateNow(Superblock sb) => MountErrorState.Normal;
}

/// <summary>What a mount's error behaviour has done to it so far.</summary>
public enum MountErrorState
{
    Normal,
    /// <summary>Went read-only after an error (until mounted again).</summary>
    ReadOnly,
    /// <summary>Shut down (until mounted again).</summary>
    ShutDown,
}
