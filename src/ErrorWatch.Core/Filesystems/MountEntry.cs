namespace ErrorWatch.Filesystems;

/// <summary>One mount in this mount namespace, from statmount(2) or /proc/self/mountinfo.</summary>
public sealed record MountEntry
{
    /// <summary>statmount's 64-bit unique id (never reused), or mountinfo's id (reusable) on old kernels.</summary>
    public required ulong Id { get; init; }
    public required ulong ParentId { get; init; }
    public required DeviceNumber Device { get; init; }
    public required string FsType { get; init; }
    /// <summary>Superblock magic (statfs f_type); 0 when the source did not say (mountinfo).</summary>
    public ulong Magic { get; init; }
    /// <summary>mount source, usually the block device path ("/dev/sdb1").</summary>
    public required string Source { get; init; }
    public required FsPath MountPoint { get; init; }
    /// <summary>The directory of the filesystem this mount shows at its mount point ("/" unless a bind mount of a subdirectory).</summary>
    public required FsPath Root { get; init; }
    public string Options { get; init; } = "";
    public string SuperOptions { get; init; } = "";
    public bool ReadOnly { get; init; }
    public bool SuperblockReadOnly { get; init; }
    /// <summary>True when <see cref="Id"/> is statmount's unique id, comparable with statx STATX_MNT_ID_UNIQUE.</summary>
    public bool UniqueId { get; init; }

    public bool IsFilesystemRoot => Root.Bytes.Length == 1 && Root.Bytes[0] == (byte)'/';
}
