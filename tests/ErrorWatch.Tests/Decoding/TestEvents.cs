using System.Diagnostics;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Kernel;
using ErrorWatch.Modules;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Modules.Xfs;
using ErrorWatch.Tests.Kernel;

namespace ErrorWatch.Tests.Decoding;

/// <summary>
/// Shared builders for the decoding, report and hand-off tests: offline superblocks (no sysfs, no
/// mounts to open), FAN_FS_ERROR events parsed from <see cref="EventBuilder"/> buffers, and an
/// <see cref="EventDecoder"/> whose path resolver is disabled.
/// </summary>
internal static class TestEvents
{
    // errno values, x86_64/arm64 numbering (kernel-abi.md §3.4), spelled out rather than taken from the code under test.
    public const int EIO = 5, ENOMEM = 12, ENOSPC = 28, EROFS = 30, EBADMSG = 74, ESHUTDOWN = 108, EUCLEAN = 117;

    /// <summary>statfs f_type of btrfs: a filesystem ErrorWatch ships no decoder for.</summary>
    public const ulong BtrfsMagic = 0x9123683E;

    public const string DisabledReason = "path resolution disabled for unit tests";

    /// <summary>Whole microseconds, so the JSON time (6 fraction digits) round-trips exactly.</summary>
    public static readonly DateTimeOffset Time = new DateTimeOffset(2026, 3, 14, 15, 9, 26, TimeSpan.Zero).AddTicks(5_358_970);

    public static readonly DeviceNumber Ext4Device = new(7, 0);
    public static readonly DeviceNumber XfsDevice = new(7, 1);

    /// <summary>An ext4 fsid (kernel-abi.md §5: derived from the UUID; any value will do offline).</summary>
    public static readonly FilesystemId Ext4Fsid = new(0x44445555, 0x66667777);

    /// <summary>XFS fsid of data device 7:1 (kernel-abi.md §5): val[0] = (minor &amp; 0xff) | (major &lt;&lt; 8), val[1] = 0.</summary>
    public static readonly FilesystemId XfsFsid = new(0x701, 0);

    public static FsPath P(string path) => FsPath.FromString(path);

    public static MountEntry Mount(DeviceNumber device, string fsType, string source, FsPath mountPoint, string superOptions = "rw") => new()
    {
        Id = 100 + device.Minor,
        ParentId = 1,
        Device = device,
        FsType = fsType,
        Source = source,
        MountPoint = mountPoint,
        Root = P("/"),
        SuperOptions = superOptions,
    };

    /// <summary>ext4 on /dev/loop0 (7:0). KernelName stays "" so the ext4 decoder never reads /sys.</summary>
    public static Superblock Ext4(FsPath? mountPoint = null, FilesystemId? fsid = null, Guid? uuid = null, string? label = null) =>
        Make(Ext4Device, "ext4", Ext4Module.SuperMagic, "/dev/loop0", fsid ?? Ext4Fsid, mountPoint, uuid, label);

    /// <summary>XFS on /dev/loop1 (7:1).</summary>
    public static Superblock Xfs(FsPath? mountPoint = null) =>
        Make(XfsDevice, "xfs", XfsModule.SuperMagic, "/dev/loop1", XfsFsid, mountPoint);

    public static Superblock Make(DeviceNumber device, string fsType, ulong magic, string devicePath, FilesystemId fsid,
        FsPath? mountPoint = null, Guid? uuid = null, string? label = null)
    {
        MountEntry[] mounts = mountPoint is null ? [] : [Mount(device, fsType, devicePath, mountPoint)];
        return new Superblock(device, fsType, mounts)
        {
            Magic = magic,
            DevicePath = devicePath,
            KernelName = "",
            Fsid = fsid,
            Uuid = uuid,
            Label = label,
        };
    }

    /// <summary>Parses a buffer holding exactly one event and copies it out as the read loop does.</summary>
    public static FsErrorEvent Parse(Superblock superblock, byte[] buffer)
    {
        var reader = new FanotifyEventReader(buffer);
        Assert.True(reader.TryRead(out var ev), reader.Error.ToString());
        var records = ev.ReadRecords();
        var result = FsErrorEvent.FromKernel(superblock, ev, records, Time, Stopwatch.GetTimestamp());
        Assert.False(reader.TryRead(out _));
        Assert.True(reader.AtEnd);
        return result;
    }

    /// <summary>A FAN_FS_ERROR event as the kernel sends it: [FID] [ERROR] (kernel-abi.md §2.5).</summary>
    public static FsErrorEvent FsError(Superblock superblock, int error, uint count = 1, int handleType = EventBuilder.FileIdInvalid,
        byte[]? handle = null, FilesystemId? fsid = null, int pid = 4242) =>
        Parse(superblock, new EventBuilder()
            .Event(pid: pid)
            .Fid(fsid ?? superblock.Fsid, handleType, handle ?? [])
            .Error(error, count)
            .Build());

    /// <summary>An already-parsed event, as the hand-off sees them (no buffer needed).</summary>
    public static FsErrorEvent Queued(Superblock superblock, int errno, uint count) => new()
    {
        Superblock = superblock,
        Time = Time,
        Errno = errno,
        RawError = errno,
        Count = count,
        HasFid = true,
        Fsid = superblock.Fsid,
    };

    public static FsErrorEvent Overflow(Superblock superblock) =>
        FsErrorEvent.Lost(superblock, Time, Stopwatch.GetTimestamp(), EventBuilder.FanQOverflow);

    public static PathResolver OfflinePaths() => new() { Enabled = false, DisabledReason = DisabledReason };

    public static EventDecoder Decoder(FilesystemModules? registry = null) =>
        new(registry ?? FilesystemModules.CreateDefault(), OfflinePaths());
}
