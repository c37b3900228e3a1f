using System.Collections.Immutable;

namespace ErrorWatch.Filesystems;

/// <summary>
/// One mounted filesystem instance (a kernel super_block), seen through all its mounts.
/// Identity fields are read once when it is first watched; <see cref="Mounts"/> follows mount changes.
/// </summary>
public sealed class Superblock
{
    private ImmutableArray<MountEntry> _mounts;

    public Superblock(DeviceNumber device, string fsType, IEnumerable<MountEntry> mounts)
    {
        Device = device;
        FsType = fsType;
        _mounts = [.. mounts];
    }

    public DeviceNumber Device { get; }
    public string FsType { get; }
    /// <summary>statfs f_type: 0xEF53 ext4, 0x58465342 XFS; selects the decoder.</summary>
    public ulong Magic { get; init; }
    /// <summary>Block device path ("/dev/sdb1"), or the mount source when it is not a device.</summary>
    public string DevicePath { get; init; } = "";
    /// <summary>The kernel's s_id for the device ("sdb1", "dm-0", "loop3"): the /sys/fs/ext4/&lt;name&gt; directory.</summary>
    public string KernelName { get; init; } = "";
    public Kernel.FilesystemId Fsid { get; init; }
    public Guid? Uuid { get; init; }
    public string? Label { get; init; }

    public ImmutableArray<MountEntry> Mounts => _mounts;

    internal void UpdateMounts(IEnumerable<MountEntry> mounts) => _mounts = [.. mounts];

    /// <summary>Mounts in the order to show them: mounts of the filesystem root first, shortest mount point first.</summary>
    public IEnumerable<MountEntry> MountsByPreference =>
        _mounts.OrderByDescending(m => m.IsFilesystemRoot).ThenBy(m => m.MountPoint.Bytes.Length);

    /// <summary>The mount to show first.</summary>
    public MountEntry? PrimaryMount => MountsByPreference.FirstOrDefault();

    public bool ReadOnly => _mounts.Length > 0 && _mounts.All(m => m.SuperblockReadOnly || m.ReadOnly);

    /// <summary>A value of an ext4/XFS mount option such as "errors" (null when absent).</summary>
    public string? MountOption(string name)
    {
        foreach (var m in _mounts)
            foreach (var part in m.SuperOptions.Split(','))
                if (part.StartsWith(name + "=", StringComparison.Ordinal))
                    return part[(name.Length + 1)..];
        return null;
    }

    public override string ToString() =>
        $"{FsType} {DevicePath} ({Device}{(PrimaryMount is { } m ? ", " + m.MountPoint.Escaped : "")})";
}
