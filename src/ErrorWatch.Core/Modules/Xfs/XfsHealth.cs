using System.Diagnostics;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Health;
using ErrorWatch.Interop;
using ErrorWatch.Reports;
using ErrorWatch.Watching;
using Serilog;

namespace ErrorWatch.Modules.Xfs;

/// <summary>
/// XFS's own health record (kernel-abi.md §7): in-memory sick bits of the filesystem, each AG and
/// each inode, and forced shutdown. XFS announces nothing through fanotify before Linux 7.0, so
/// this is the only live source there. Each check reads FSGEOMETRY and AG_GEOMETRY (ioctls, no
/// inode scans) and BULKSTAT for inodes already named (by a report, or by the kernel log, through
/// GETFSMAP or a bounded AG scan); bits not reported before become <c>xfs-health</c> reports. On 7.0+
/// XFS_IOC_HEALTH_MONITOR replaces polling when this process can hold the one monitor per filesystem.
/// </summary>
internal sealed unsafe class XfsHealth : IHealthSource
{
    private const int KnownInodeLimit = 4096;
    private const int PendingBlockLimit = 256;
    /// <summary>At most one kernel-log-triggered scan of an AG this often, however many lines name it.</summary>
    private static readonly TimeSpan ScanSpacing = TimeSpan.FromSeconds(10);

    private readonly SuperblockWatch _watch;
    private readonly HealthBaseline _baseline;
    private readonly HealthOptions _options;
    private readonly ILogger _log;
    private readonly string _key;
    private readonly HashSet<ulong> _known = new();
    private readonly Queue<ulong> _pendingBlocks = new();
    private readonly Dictionary<uint, long> _lastScan = new();
    private readonly Lock _publishedLock = new();
    private readonly HashSet<ulong> _announcedInodes = new();
    private readonly byte[] _monitorBuffer = new byte[64 * 64];
    private int _monitorFd = -1;
    private string _monitorState;
    private string? _lastTriggerLine;

    public XfsHealth(SuperblockWatch watch, HealthBaseline baseline, string instance, HealthOptions options, ILogger log)
    {
        _watch = watch;
        _baseline = baseline;
        _options = options;
        _log = log;
        _key = baseline.XfsKey(watch.Superblock.Uuid, watch.Superblock.Device);
        // XFS health ends with the mount: bits reported for another mount instance are not "already reported".
        _baseline.Xfs(_key, b =>
        {
            if (b.Instance != instance)
            {
                b.Instance = instance;
                b.FilesystemSick = 0;
                b.GroupSick.Clear();
                b.InodeSick.Clear();
                b.Shutdown = false;
            }
            foreach (var ino in b.InodeSick.Keys.Take(KnownInodeLimit))
                _known.Add(ino);
            return 0;
        });
        _baseline.MarkDirty();
        _monitorState = options.XfsHealthMonitor ? OpenMonitor() : "health monitor disabled by configuration; polling";
    }

    public Superblock Superblock => _watch.Superblock;
    public int PollFd => _monitorFd;
    public short PollEvents => Libc.POLLIN;
    public bool Monitored => _monitorFd >= 0;
    /// <summary>Disk addresses from kernel log lines waiting for the next check.</summary>
    internal int PendingBlocks => _pendingBlocks.Count;

    public string Describe() => Monitored
        ? "XFS_IOC_HEALTH_MONITOR"
        : $"FSGEOMETRY/AG_GEOMETRY/BULKSTAT every {_options.CheckInterval.TotalSeconds:0} s and on kernel log lines ({_monitorState})";

    private string OpenMonitor()
    {
        using var root = MountRoot.OpenAny(Superblock, out var problem, out _);
        if (root is null)
            return $"health monitor not opened ({problem}); polling";
        var errno = XfsIoctl.OpenHealthMonitor(root.Fd, verbose: false, out var fd);
        switch (errno)
        {
            case 0:
                _monitorFd = fd;
                _log.Information("Using the XFS health monitor of {Superblock}", Superblock);
                return "health monitor";
            case Libc.EEXIST:
                _log.Warning("Another process (xfs_healer?) holds the XFS health monitor of {Superblock}; polling health bits instead", Superblock);
                return "another process (xfs_healer?) holds the health monitor; polling";
            case Libc.EPERM:
                return "health monitor needs CAP_SYS_ADMIN in the initial user namespace; polling";
            default:
                return $"no XFS_IOC_HEALTH_MONITOR on this kernel ({ErrnoTable.Name(errno)}, needs Linux 7.0); polling";
        }
    }

    public bool OnReady(List<HealthFinding> findings)
    {
        fixed (byte* p = _monitorBuffer)
        {
            while (true)
            {
                var n = Libc.Read(_monitorFd, p, _monitorBuffer.Length);
                if (n <= 0)
                {
                    if (n < 0 && Libc.LastErrno is not (Libc.EAGAIN or Libc.EINTR))
                    {
                        _log.Warning("The XFS health monitor of {Superblock} failed ({Errno}); polling instead", Superblock, ErrnoTable.Name(Libc.LastErrno));
                        Libc.Close(_monitorFd);
                        _monitorFd = -1;
                        _monitorState = "health monitor failed; polling";
                    }
                    else if (n == 0)
                    {
                        Libc.Close(_monitorFd);
                        _monitorFd = -1; // end of file: the filesystem was unmounted
                    }
                    return false;
                }
                DecodeMonitor(_monitorBuffer.AsSpan(0, (int)n), findings);
                if (n < _monitorBuffer.Length)
                    return false;
            }
        }
    }

    /// <summary>Turns health monitor records into findings (synthetic-tested: 6.18 has no monitor).</summary>
    internal void DecodeMonitor(ReadOnlySpan<byte> buffer, List<HealthFinding> findings)
    {
        var reader = new HealthMonitorReader(buffer);
        while (reader.TryRead(out var ev))
        {
            if (MonitorFinding(ev) is { } finding)
                findings.Add(finding);
        }
        if (reader.Error.IsError)
            _log.Error("Malformed XFS health monitor record from {Superblock}: {Problem}", Superblock, reader.Error.ToString());
    }

    internal HealthFinding? MonitorFinding(HealthMonitorEvent ev)
    {
        var details = new ReportDetails()
            .Set("domain", ev.Domain.ToString().ToLowerInvariant())
            .Set("type", ev.Type.ToString().ToLowerInvariant());
        HealthFinding Make(int errno, string what, ErrorCategory? category = null, ulong? ino = null, uint? gen = null, ulong count = 0) => new()
        {
            Superblock = Superblock,
            Source = ReportSource.XfsHealthMonitor,
            Time = ev.Time,
            Errno = errno,
            What = what,
            Category = category,
            Inode = ino,
            Generation = gen,
            Count = count,
            Details = details,
            Trigger = HealthTrigger.Monitor,
        };
        switch (ev.Type)
        {
            case HealthEventType.Running:
            case HealthEventType.Unmount:
            case HealthEventType.Healthy:
                return null;
            case HealthEventType.Lost:
                details.Set("lost", ev.LostCount ?? 0);
                return Make(0, $"the XFS health monitor lost {ev.LostCount ?? 0} event(s): run xfs_scrub to learn what they said", ErrorCategory.EventsLost);
            case HealthEventType.Shutdown:
                details.Set("reasons", ev.ShutdownReasonNames.ToArray());
                MarkShutdownReported();
                return Make(Libc.ESHUTDOWN, "forced shutdown: " + string.Join(", ", ev.ShutdownReasonNames), ErrorCategory.Shutdown);
            case HealthEventType.MediaError:
                details.Set("daddr", ev.MediaDaddr ?? 0).Set("sectors", ev.MediaSectors ?? 0);
                return Make(Libc.EIO, ev.Describe(), ErrorCategory.Io, count: 1);
        }
        if (ev.Domain == HealthDomain.FileRange)
        {
            details.Set("position", ev.FilePosition ?? 0).Set("length", ev.FileLength ?? 0);
            return Make(ev.FileError is > 0 and var e ? e : Libc.EIO, ev.Describe(), null, ev.Inode, ev.Generation, 1);
        }
        if (ev.Domain is HealthDomain.DataDevice or HealthDomain.RealtimeDevice or HealthDomain.LogDevice)
            return Make(Libc.EIO, ev.Describe(), ErrorCategory.Io, count: 1);
        // sick / corrupt: structures named by the mask
        var structures = ev.Structures;
        details.Set("mask", ev.Mask ?? 0).Set("structures", structures.Select(s => s.Id).ToArray());
        var scope = ev.Domain switch
        {
            HealthDomain.Group => $"AG {ev.Group}",
            HealthDomain.RealtimeGroup => $"rtgroup {ev.Group}",
            HealthDomain.Inode => $"inode {ev.Inode}",
            _ => "filesystem",
        };
        if (ev.Domain == HealthDomain.Inode && ev.Inode is { } sickInode)
            Remember(sickInode);
        return Make(Libc.EUCLEAN, XfsHealthNames.Describe(scope, structures) + (ev.Type == HealthEventType.Corrupt ? " is corrupt" : " is sick"),
            null, ev.Domain == HealthDomain.Inode ? ev.Inode : null, ev.Domain == HealthDomain.Inode ? ev.Generation : null, 1);
    }

    private void MarkShutdownReported() => _baseline.Xfs(_key, b => b.Shutdown = true);

    public void Hint(in KernelLogSignal signal)
    {
        if (signal.Kind == KernelLogKind.Mounted)
        {
            // Reading the ring from its oldest record, lines before this mount line named the same
            // device name but an earlier filesystem: their blocks must not spend this one's AG scans.
            _pendingBlocks.Clear();
            _lastScan.Clear();
            _lastTriggerLine = null;
            return;
        }
        _lastTriggerLine = signal.Message;
        if (signal.Inode is { } ino)
            Remember(ino);
        if (signal.Daddr is { } daddr && _pendingBlocks.Count < PendingBlockLimit && !_pendingBlocks.Contains(daddr))
            _pendingBlocks.Enqueue(daddr);
    }

    private void Remember(ulong ino)
    {
        if (_known.Count < KnownInodeLimit)
            _known.Add(ino);
    }

    public void Check(HealthTrigger trigger, List<HealthFinding> findings)
    {
        lock (_publishedLock)
            foreach (var ino in _announcedInodes)
                Remember(ino); // inodes fanotify named (7.0+): their bits and AG are worth a look
        using var root = MountRoot.OpenAny(Superblock, out var problem, out var errno);
        if (root is null)
        {
            // xfs_file_open/xfs_dir_open answer EIO once the filesystem is shut down; O_PATH skips them.
            if (errno == Libc.EIO && IsReachableByPath())
                ReportShutdown(trigger, findings);
            else
                _log.Debug("XFS health check of {Superblock} skipped: {Problem}", Superblock, problem);
            return;
        }
        if (Monitored && trigger is HealthTrigger.Periodic)
            return; // the monitor pushes changes; no need to poll

        var geometryErrno = XfsIoctl.Geometry(root.Fd, out var geometry);
        if (geometryErrno != 0 || !geometry.HasHealth)
        {
            _log.Debug("XFS health of {Superblock} unavailable: {Problem}", Superblock,
                geometryErrno != 0 ? ErrnoTable.Name(geometryErrno) : $"geometry version {geometry.Version} < 5");
            return;
        }
        CheckFilesystem(geometry, trigger, findings);
        for (uint ag = 0; ag < geometry.AgCount; ag++)
        {
            if (XfsIoctl.AgGeometry(root.Fd, ag, out var group) != 0)
                break;
            CheckGroup(group, trigger, findings);
        }
        MapPendingBlocks(root.Fd, geometry);
        foreach (var ino in _known.ToList())
        {
            var e = XfsIoctl.BulkstatOne(root.Fd, ino, out var inode);
            if (e == Libc.ENOENT)
            {
                _known.Remove(ino); // freed: nothing left to watch
                continue;
            }
            if (e == 0)
                CheckInode(inode, trigger, findings);
        }
    }

    /// <summary>
    /// The mount point still opens O_PATH (no open method runs). Not verified with statx as
    /// <see cref="MountRoot"/> does: xfs_vn_getattr answers EIO on a shut-down filesystem too.
    /// </summary>
    private bool IsReachableByPath()
    {
        foreach (var mount in Superblock.MountsByPreference)
        {
            int fd;
            fixed (byte* p = MountRoot.NulTerminated(mount.MountPoint.Bytes))
                fd = Libc.Open(p, Libc.O_PATH | Libc.O_DIRECTORY | Libc.O_CLOEXEC, 0);
            if (fd < 0)
                continue;
            Libc.Close(fd);
            return true;
        }
        return false;
    }

    private void ReportShutdown(HealthTrigger trigger, List<HealthFinding> findings)
    {
        var already = _baseline.Xfs(_key, b =>
        {
            var seen = b.Shutdown;
            b.Shutdown = true;
            return seen;
        });
        _baseline.MarkDirty();
        if (already)
            return;
        var details = new ReportDetails().Set("detected_by", "open(2) of the mount root fails with EIO while an O_PATH open succeeds");
        if (_lastTriggerLine is { } line)
            details.Set("kernel_log_trigger", line);
        findings.Add(new HealthFinding
        {
            Superblock = Superblock,
            Source = ReportSource.XfsHealth,
            Time = DateTimeOffset.UtcNow,
            Errno = Libc.ESHUTDOWN,
            Category = ErrorCategory.Shutdown,
            What = "the filesystem is shut down (XFS forced shutdown): every access fails until it is unmounted and repaired",
            Details = details,
            Trigger = trigger,
        });
    }

    private void CheckFilesystem(in XfsGeometry geometry, HealthTrigger trigger, List<HealthFinding> findings)
    {
        var sick = geometry.Sick;
        var fresh = _baseline.Xfs(_key, b =>
        {
            var n = sick & ~b.FilesystemSick;
            b.FilesystemSick |= sick;
            return n;
        });
        if (fresh == 0)
            return;
        _baseline.MarkDirty();
        var structures = XfsHealthNames.Filesystem(fresh);
        findings.Add(Sick("filesystem", structures, geometry.Sick, geometry.Checked, trigger));
    }

    private void CheckGroup(in XfsAgGeometry group, HealthTrigger trigger, List<HealthFinding> findings)
    {
        var sick = group.Sick;
        var agno = group.AgNumber;
        var fresh = _baseline.Xfs(_key, b =>
        {
            b.GroupSick.TryGetValue(agno, out var old);
            b.GroupSick[agno] = old | sick;
            return sick & ~old;
        });
        if (fresh == 0)
            return;
        _baseline.MarkDirty();
        findings.Add(Sick($"AG {agno}", XfsHealthNames.Group(fresh), group.Sick, group.Checked, trigger));
    }

    private void CheckInode(in XfsInodeHealth inode, HealthTrigger trigger, List<HealthFinding> findings)
    {
        uint sick = inode.Sick;
        var ino = inode.Inode;
        var fresh = _baseline.Xfs(_key, b =>
        {
            b.InodeSick.TryGetValue(ino, out var old);
            if (sick != 0)
                b.InodeSick[ino] = old | sick;
            return sick & ~old;
        });
        if (fresh == 0)
            return;
        _baseline.MarkDirty();
        lock (_publishedLock)
        {
            // Linux 7.0 announced this inode through fanotify already: that report stands for it.
            if (_announcedInodes.Remove(ino))
                return;
        }
        var finding = Sick($"inode {ino}", XfsHealthNames.Inode(fresh), inode.Sick, inode.Checked, trigger);
        findings.Add(finding with { Inode = ino, Generation = inode.Generation });
    }

    private HealthFinding Sick(string scope, IReadOnlyList<XfsStructure> structures, uint sick, uint @checked, HealthTrigger trigger)
    {
        var details = new ReportDetails()
            .Set("scope", scope)
            .Set("sick", structures.Select(s => s.Id).ToArray())
            .Set("sick_mask", sick)
            .Set("checked_mask", @checked);
        if (trigger == HealthTrigger.KernelLog && _lastTriggerLine is { } line)
            details.Set("kernel_log_trigger", line);
        return new HealthFinding
        {
            Superblock = Superblock,
            Source = ReportSource.XfsHealth,
            Time = DateTimeOffset.UtcNow,
            // The XFS health layer keeps no EFSBADCRC: every sick bit means EFSCORRUPTED (kernel-abi.md §3.2).
            Errno = Libc.EUCLEAN,
            Count = 1,
            What = XfsHealthNames.Describe(scope, structures) + " is sick",
            Details = details,
            Trigger = trigger,
        };
    }

    /// <summary>
    /// Blocks named by the kernel log (a bad directory block, say) → the inodes that own them:
    /// GETFSMAP when the filesystem has rmapbt, else one bounded BULKSTAT walk of the block's AG
    /// (at most every 10 seconds per AG) looking for inodes XFS has marked sick.
    /// </summary>
    private void MapPendingBlocks(int fd, in XfsGeometry geometry)
    {
        var owners = new List<FsMapping>();
        var sick = new List<XfsInodeHealth>();
        while (_pendingBlocks.TryDequeue(out var daddr))
        {
            if (geometry.HasRmapBt)
            {
                owners.Clear();
                if (XfsIoctl.GetFsMap(fd, daddr, 1, owners) == 0)
                {
                    foreach (var owner in owners.Where(o => o.IsInodeOwner))
                        Remember(owner.Owner);
                    continue;
                }
            }
            var blocksPerSector = geometry.BlockSize / 512;
            var agno = (uint)(daddr / blocksPerSector / geometry.AgBlocks);
            if (_lastScan.TryGetValue(agno, out var at) && Stopwatch.GetElapsedTime(at) < ScanSpacing)
                continue;
            _lastScan[agno] = Stopwatch.GetTimestamp();
            sick.Clear();
            var e = XfsIoctl.BulkstatGroup(fd, agno, _options.XfsScanLimit, sick, out var scanned);
            if (e != 0)
                _log.Debug("BULKSTAT of AG {Ag} on {Superblock} stopped: {Errno}", agno, Superblock, ErrnoTable.Name(e));
            if (scanned >= _options.XfsScanLimit)
                _log.Warning("AG {Ag} of {Superblock} has over {Limit} inodes: not all were checked for the block named by the kernel log (no rmapbt); run xfs_scrub", agno, Superblock, _options.XfsScanLimit);
            _log.Debug("Block 0x{Daddr:x} of {Superblock}: scanned {Scanned} inode(s) of AG {Ag}, {Sick} sick", daddr, Superblock, scanned, agno, sick.Count);
            foreach (var inode in sick)
                Remember(inode.Inode);
        }
    }

    public void Published(CorruptionReport report)
    {
        if (report.Source != ReportSource.Fanotify || report.Object.Inode is not { } ino)
            return;
        lock (_publishedLock)
        {
            if (_announcedInodes.Count < KnownInodeLimit)
                _announcedInodes.Add(ino);
        }
    }

    public void Dispose()
    {
        if (_monitorFd >= 0)
            Libc.Close(_monitorFd);
        _monitorFd = -1;
    }
}
