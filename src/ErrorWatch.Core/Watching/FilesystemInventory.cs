using System.Runtime.InteropServices;
using ErrorWatch.Filesystems;
using ErrorWatch.Interop;
using ErrorWatch.Kernel;
using Serilog;

namespace ErrorWatch.Watching;

/// <summary>
/// A filesystem's UUID read through its own interface (XFS's geometry, ext4's on-disk superblock) on
/// kernels without FS_IOC_GETFSUUID: the filesystem modules' (Modules/FilesystemModules.ReadUuid),
/// given by the daemon so that watching needs no module.
/// </summary>
public delegate Guid? UuidReader(ulong magic, int rootFd, string devicePath);

/// <summary>Which filesystems to watch.</summary>
public sealed record WatchOptions
{
    /// <summary>ext2/ext3 are driven by the ext4 code on current kernels and report the same way.</summary>
    public static readonly string[] DefaultTypes = ["ext4", "ext3", "ext2", "xfs"];

    public IReadOnlyList<string> FsTypes { get; init; } = DefaultTypes;
    /// <summary>When non-empty, only filesystems matching one of these (mount point, device, major:minor, UUID or label).</summary>
    public IReadOnlyList<string> Include { get; init; } = [];
    public IReadOnlyList<string> Exclude { get; init; } = [];

    public bool Matches(Superblock sb, string pattern) =>
        pattern == sb.DevicePath || pattern == sb.Device.ToString() || pattern == sb.Label
        || (sb.Uuid is { } uuid && Guid.TryParse(pattern, out var p) && p == uuid)
        || sb.Mounts.Any(m => m.MountPoint.Text == pattern);

    /// <summary>
    /// The refusal that mount points and major:minor alone decide, before the filesystem is opened
    /// to be identified: opening a mount root pins the mount, and an admin's umount of a filesystem
    /// ErrorWatch was told to leave alone must never fail with EBUSY because of it. UUIDs, labels
    /// and device paths (which may be symlinks) need the identification; null defers to <see cref="Refuses"/>.
    /// </summary>
    public string? RefusesBeforeIdentify(DeviceNumber device, IReadOnlyList<MountEntry> mounts)
    {
        bool Decidable(string p) => (p.StartsWith('/') && !p.StartsWith("/dev/", StringComparison.Ordinal)) || DeviceNumber.TryParse(p, out _);
        bool Match(string p) => p == device.ToString() || mounts.Any(m => m.MountPoint.Text == p);
        if (Include.Count > 0 && Include.All(Decidable) && !Include.Any(Match))
            return "not selected by --filesystem";
        var excluded = Exclude.FirstOrDefault(p => Decidable(p) && Match(p));
        return excluded is null ? null : $"excluded by configuration ({excluded})";
    }

    public string? Refuses(Superblock sb)
    {
        if (Include.Count > 0 && !Include.Any(p => Matches(sb, p)))
            return "not selected by --filesystem";
        var excluded = Exclude.FirstOrDefault(p => Matches(sb, p));
        return excluded is null ? null : $"excluded by configuration ({excluded})";
    }
}

/// <summary>A filesystem ErrorWatch does not watch, and why.</summary>
public sealed record SkippedFilesystem(DeviceNumber Device, string FsType, string MountPoint, string Reason, int Errno = 0)
{
    /// <summary>Refused by --filesystem/--exclude (not a failure).</summary>
    public bool ByConfiguration { get; init; }
}

/// <summary>
/// Keeps one <see cref="SuperblockWatch"/> per mounted ext4/XFS superblock: enumerates mounts, groups
/// them by device number, identifies and marks new superblocks, and retires those whose mark the
/// kernel dropped (the superblock died at its last unmount). Each superblock gets a fanotify group of
/// its own; past the kernel's group limit (fs.fanotify.max_user_groups, 128 by default, shared by
/// every process of the user) the rest are marked in one spill group, made before the first own
/// group so that it exists when the limit is hit, where events are told apart by fsid: a superblock
/// whose fsid is already there (a second copy of one image) cannot join it and is named as not watched.
/// </summary>
public sealed unsafe class FilesystemInventory : IDisposable
{
    private WatchOptions _options;
    private readonly UuidReader _readUuid;
    private readonly Watcher _watcher;
    private readonly ILogger _log;
    private readonly Dictionary<DeviceNumber, SuperblockWatch> _watches = new();
    private readonly Dictionary<DeviceNumber, SkippedFilesystem> _skipped = new();
    private FanotifyGroup? _spill;
    private readonly Dictionary<DeviceNumber, FilesystemId> _spillMembers = new();
    private readonly Lock _lock = new();
    // The configuration changed: the next Reconcile decides again whether each watched filesystem is selected.
    private bool _reselect;

    public FilesystemInventory(WatchOptions options, UuidReader readUuid, Watcher watcher, MountSource source, ILogger log)
    {
        _options = options;
        _readUuid = readUuid;
        _watcher = watcher;
        _log = log;
        Source = source;
    }

    public MountSource Source { get; }

    /// <summary>Which filesystems to watch; a new value (configuration reload) applies at the next <see cref="Reconcile"/>.</summary>
    public WatchOptions Options
    {
        get
        {
            lock (_lock)
                return _options;
        }
        set
        {
            lock (_lock)
            {
                _options = value;
                _skipped.Clear(); // reasons may have changed: every unwatched filesystem is looked at again
                _reselect = true; // and every watched one
            }
        }
    }

    /// <summary>errno of the first fanotify_mark(FAN_FS_ERROR) attempt: 0 accepted, EINVAL unsupported, -1 not tried yet.</summary>
    public int FsErrorMarkResult { get; private set; } = -1;

    /// <summary>A superblock is marked; raised before its group is read, so subscribers are ready for its first event.</summary>
    public event Action<SuperblockWatch>? Watched;
    /// <summary>The read loop has the group: anything asked of the Watcher about it now comes after its adding.</summary>
    public event Action<SuperblockWatch>? Reading;
    public event Action<SuperblockWatch>? Unwatched;

    public IReadOnlyList<SuperblockWatch> Watches
    {
        get
        {
            lock (_lock)
                return _watches.Values.ToList();
        }
    }

    public IReadOnlyList<SkippedFilesystem> Skipped
    {
        get
        {
            lock (_lock)
                return _skipped.Values.ToList();
        }
    }

    /// <summary>Other filesystem types present, with how many superblocks of each (not ext4/XFS, so not watched).</summary>
    public IReadOnlyDictionary<string, int> OtherTypes { get; private set; } = new Dictionary<string, int>();

    /// <summary>True when a watched superblock has no mount left but still exists (lazy unmount in progress).</summary>
    public bool HasOrphans
    {
        get
        {
            lock (_lock)
                return _watches.Values.Any(w => w.Superblock.Mounts.IsEmpty);
        }
    }

    /// <summary>Brings the watches in line with the current mount table.</summary>
    public void Reconcile()
    {
        lock (_lock)
        {
            var mounts = MountTable.Read(Source, problem => _log.Warning("{Problem}", problem));
            var bySuperblock = mounts.GroupBy(m => m.Device).ToDictionary(g => g.Key, g => g.ToList());

            // A filesystem's selection is decided when it is first watched, and again only when the
            // configuration changes: the mount point it was chosen by may go (umount -l, a bind mount
            // left) while the filesystem it named lives on, and is still the one the admin chose.
            var reselect = _reselect;
            _reselect = false;
            foreach (var (device, watch) in _watches.ToList())
            {
                var alive = watch.MarkAlive();
                if (alive)
                    watch.Superblock.UpdateMounts(bySuperblock.GetValueOrDefault(device) ?? []);
                var refusal = !_options.FsTypes.Contains(watch.Superblock.FsType) ? "type no longer selected"
                    : reselect ? _options.Refuses(watch.Superblock) : null;
                if (alive && refusal is null)
                    continue;
                _watches.Remove(device);
                _spillMembers.Remove(device);
                if (refusal is null)
                    _log.Information("Filesystem {Superblock} is gone (unmounted); reading its last events and unwatching", watch.Superblock);
                else
                    _log.Information("No longer watching {Superblock}: {Reason}", watch.Superblock, refusal);
                _ = _watcher.Retire(watch);
                Unwatched?.Invoke(watch);
            }

            var others = new Dictionary<string, int>();
            foreach (var (device, group) in bySuperblock)
            {
                var fsType = group[0].FsType;
                if (!_options.FsTypes.Contains(fsType))
                {
                    others[fsType] = others.GetValueOrDefault(fsType) + 1;
                    continue;
                }
                if (_watches.ContainsKey(device))
                    continue;
                // Refused by configuration and mounted where it was: leave it alone (no re-open on
                // every mount event). A configuration change clears these.
                if (_skipped.TryGetValue(device, out var skipped) && skipped.ByConfiguration
                    && group.Select(m => m.MountPoint.Escaped).Contains(skipped.MountPoint))
                    continue;
                TryWatch(device, fsType, group);
            }
            OtherTypes = others;
            foreach (var device in _skipped.Keys.Where(d => !bySuperblock.ContainsKey(d)).ToList())
                _skipped.Remove(device);
        }
    }

    private void TryWatch(DeviceNumber device, string fsType, List<MountEntry> mounts)
    {
        var mountPoint = mounts[0].MountPoint.Escaped;
        if (_options.RefusesBeforeIdentify(device, mounts) is { } early)
        {
            Skip(new SkippedFilesystem(device, fsType, mountPoint, early), byConfiguration: true);
            return;
        }
        var sb = Identify(_readUuid, device, fsType, mounts, out var problem);
        if (sb is null)
        {
            Skip(new SkippedFilesystem(device, fsType, mountPoint, problem ?? "cannot be opened"));
            return;
        }
        if (_options.Refuses(sb) is { } refusal)
        {
            Skip(new SkippedFilesystem(device, fsType, mountPoint, refusal), byConfiguration: true);
            return;
        }

        // The spill group first, while groups can still be made (tried again until it is).
        _spill ??= FanotifyGroup.Create(FanotifyGroup.ErrorGroupFlags, out _);
        var group = FanotifyGroup.Create(FanotifyGroup.ErrorGroupFlags, out var errno);
        if (group is null)
        {
            if (errno == Libc.EMFILE && _spill is not null)
                WatchShared(sb, fsType, mountPoint);
            else
                Skip(new SkippedFilesystem(device, fsType, mountPoint, DescribeInitFailure(errno), errno));
            return;
        }
        errno = Mark(group, sb, out problem);
        if (FsErrorMarkResult < 0 || (FsErrorMarkResult != 0 && errno == 0))
            FsErrorMarkResult = errno;
        if (errno != 0 || problem is not null)
        {
            group.Dispose();
            Skip(new SkippedFilesystem(device, fsType, mountPoint, problem ?? DescribeMarkFailure(errno), errno));
            return;
        }

        _log.Information("Watching {Superblock} uuid={Uuid} fsid={Fsid}", sb, sb.Uuid, sb.Fsid);
        Add(new SuperblockWatch(sb, group));
    }

    /// <summary>Past the group limit: a mark in the spill group, if the superblock's fsid can name it there.</summary>
    private void WatchShared(Superblock sb, string fsType, string mountPoint)
    {
        var limit = $"fanotify group limit reached (fs.fanotify.max_user_groups = {ReadSysctl("max_user_groups")})";
        if (sb.Fsid == default)
        {
            Skip(new SkippedFilesystem(sb.Device, fsType, mountPoint, $"{limit}, and it has no fsid to tell its events apart in the shared group; raise the limit to watch it", Libc.EMFILE));
            return;
        }
        foreach (var (other, fsid) in _spillMembers)
        {
            if (fsid == sb.Fsid)
            {
                Skip(new SkippedFilesystem(sb.Device, fsType, mountPoint,
                    $"{limit}, and {other} in the shared group has the same fsid {fsid} (a copy of the same image?), so their events could not be told apart; raise the limit to watch it", Libc.EMFILE));
                return;
            }
        }
        var errno = Mark(_spill!, sb, out var problem);
        if (FsErrorMarkResult < 0 || (FsErrorMarkResult != 0 && errno == 0))
            FsErrorMarkResult = errno;
        if (errno != 0 || problem is not null)
        {
            Skip(new SkippedFilesystem(sb.Device, fsType, mountPoint, problem ?? DescribeMarkFailure(errno), errno));
            return;
        }
        _spillMembers[sb.Device] = sb.Fsid;
        _log.Warning("{Limit}: watching {Superblock} (uuid={Uuid} fsid={Fsid}) in the shared group, its events told apart by fsid; raise the limit to give it a group of its own",
            limit, sb, sb.Uuid, sb.Fsid);
        Add(new SuperblockWatch(sb, _spill!, sharesGroup: true));
    }

    private void Add(SuperblockWatch watch)
    {
        _watches[watch.Superblock.Device] = watch;
        _skipped.Remove(watch.Superblock.Device);
        // Subscribers (the health sources) see the watch before its first event can be read.
        Watched?.Invoke(watch);
        _watcher.Add(watch);
        Reading?.Invoke(watch);
    }

    /// <summary>Closes the spill group: after the read loop stopped (it reads the group last).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _spill?.Dispose();
            _spill = null;
        }
    }

    private void Skip(SkippedFilesystem skip, bool byConfiguration = false)
    {
        if (_skipped.TryGetValue(skip.Device, out var previous) && previous.Reason == skip.Reason)
            return;
        _skipped[skip.Device] = skip = skip with { ByConfiguration = byConfiguration };
        _log.Write(byConfiguration ? Serilog.Events.LogEventLevel.Debug : Serilog.Events.LogEventLevel.Warning,
            "Not watching {FsType} {Device} at {MountPoint}: {Reason}", skip.FsType, skip.Device, skip.MountPoint, skip.Reason);
    }

    private static int Mark(FanotifyGroup group, Superblock sb, out string? problem)
    {
        // Not O_PATH: with a NULL path fanotify_mark resolves dirfd with fdget(), which refuses O_PATH files (EBADF).
        using var fd = MountRoot.OpenAny(sb, out problem, out _);
        if (fd is null)
            return 0;
        problem = null;
        return group.MarkFilesystem(fd.Fd, Fanotify.FAN_FS_ERROR);
    }

    /// <summary>
    /// Reads what identifies the superblock: magic and fsid (statfs), UUID (the filesystem's module
    /// asked where the kernel has no FS_IOC_GETFSUUID), label, kernel device name.
    /// </summary>
    internal static Superblock? Identify(UuidReader readUuid, DeviceNumber device, string fsType, List<MountEntry> mounts, out string? problem)
    {
        problem = null;
        var ordered = mounts.OrderByDescending(m => m.IsFilesystemRoot).ToList();
        foreach (var mount in ordered)
        {
            using var fd = MountRoot.Open(mount, pathOnly: false, out problem) ?? MountRoot.Open(mount, pathOnly: true, out problem);
            if (fd is null)
                continue;

            var statfs = stackalloc byte[Libc.StatfsSize + 8];
            if (Libc.FStatfs(fd.Fd, statfs) != 0)
            {
                problem = $"statfs of {mount.MountPoint.Escaped} failed: {ErrnoTable.Name(Libc.LastErrno)}";
                continue;
            }
            var span = new ReadOnlySpan<byte>(statfs, Libc.StatfsSize);
            var magic = (ulong)MemoryMarshal.Read<long>(span.Slice(Libc.StatfsTypeOffset));
            var fsid = FilesystemId.FromBytes(span.Slice(Libc.StatfsFsidOffset, 8));
            var kernelName = KernelDeviceName(device);
            var devicePath = mount.Source.StartsWith("/dev/", StringComparison.Ordinal) ? mount.Source
                : kernelName.Length > 0 && File.Exists("/dev/" + kernelName) ? "/dev/" + kernelName : mount.Source;
            return new Superblock(device, fsType, mounts)
            {
                Magic = magic,
                Fsid = fsid,
                KernelName = kernelName,
                DevicePath = devicePath,
                Uuid = ReadUuid(fd.Fd, readUuid, magic, devicePath),
                Label = ReadLabel(fd.Fd),
            };
        }
        return null;
    }

    /// <summary>The block device's kernel name (s_id) from /sys/dev/block/M:m, e.g. "sdb1", "dm-0", "loop3".</summary>
    internal static string KernelDeviceName(DeviceNumber device)
    {
        try
        {
            var target = new FileInfo($"/sys/dev/block/{device}").LinkTarget;
            return target is null ? "" : Path.GetFileName(target);
        }
        catch (IOException)
        {
            return "";
        }
    }

    // FS_IOC_GETFSUUID = _IOR(0x15, 0, struct fsuuid2 { __u8 len; __u8 uuid[16]; }) (6.10+)
    private const nuint FS_IOC_GETFSUUID = 0x80111500;
    // FS_IOC_GETFSLABEL = _IOR(0x94, 49, char[FSLABEL_MAX = 256]) (4.18+, ext4 and XFS)
    private const nuint FS_IOC_GETFSLABEL = 0x81009431;

    private static Guid? ReadUuid(int fd, UuidReader filesystems, ulong magic, string devicePath)
    {
        var buffer = stackalloc byte[32];
        if (Libc.Ioctl(fd, FS_IOC_GETFSUUID, buffer) == 0 && buffer[0] == 16)
            return new Guid(new ReadOnlySpan<byte>(buffer + 1, 16), bigEndian: true);
        // Before 6.10: the filesystem's own interface (XFS's geometry, ext4's on-disk superblock).
        return filesystems(magic, fd, devicePath);
    }

    private static string? ReadLabel(int fd)
    {
        var buffer = stackalloc byte[256];
        if (Libc.Ioctl(fd, FS_IOC_GETFSLABEL, buffer) != 0)
            return null;
        var span = new ReadOnlySpan<byte>(buffer, 256);
        var end = span.IndexOf((byte)0);
        var label = System.Text.Encoding.UTF8.GetString(end < 0 ? span : span[..end]);
        return label.Length == 0 ? null : label;
    }

    internal static string DescribeInitFailure(int errno) => errno switch
    {
        Libc.EMFILE => $"fanotify group limit reached (fs.fanotify.max_user_groups = {ReadSysctl("max_user_groups")}); raise it to watch more filesystems",
        Libc.EPERM => "not permitted to create a fanotify group (needs CAP_SYS_ADMIN)",
        Libc.EINVAL => "this kernel's fanotify has no FAN_REPORT_FID (Linux < 5.1)",
        Libc.ENOSYS => "this kernel has no fanotify (CONFIG_FANOTIFY=n)",
        _ => $"fanotify_init failed: {ErrnoTable.Name(errno)}",
    };

    internal static string DescribeMarkFailure(int errno) => errno switch
    {
        Libc.EINVAL => "the kernel refuses FAN_FS_ERROR marks (Linux < 5.16, or a stable kernel without the backport)",
        Libc.EPERM => "not permitted to mark a filesystem (needs CAP_SYS_ADMIN in the initial user namespace) (EPERM)",
        Libc.EXDEV => "the filesystem's fsid differs from its root's (a btrfs subvolume?) (EXDEV)",
        Libc.ENODEV => "the filesystem has no fsid, so fanotify cannot identify it (ENODEV)",
        Libc.EOPNOTSUPP => "the filesystem cannot encode file handles (EOPNOTSUPP)",
        Libc.ENOSPC => $"fanotify mark limit reached (fs.fanotify.max_user_marks = {ReadSysctl("max_user_marks")}) (ENOSPC)",
        Libc.EACCES => "permission denied by an LSM or path permissions (EACCES)",
        _ => $"fanotify_mark failed: {ErrnoTable.Name(errno)}",
    };

    internal static string ReadSysctl(string name)
    {
        try
        {
            return File.ReadAllText($"/proc/sys/fs/fanotify/{name}").Trim();
        }
        catch (IOException)
        {
            return "?";
        }
    }
}
