using ErrorWatch.Interop;
using ErrorWatch.Kernel;
using Serilog;

namespace ErrorWatch.Watching;

public enum MountTracking
{
    /// <summary>FAN_MNT_ATTACH/FAN_MNT_DETACH on a FAN_MARK_MNTNS mark (Linux 6.15+).</summary>
    FanotifyMountNamespace,
    /// <summary>poll(POLLPRI) on /proc/self/mountinfo, which the kernel signals on every mount change.</summary>
    MountinfoPoll,
}

/// <summary>
/// Follows mounts and unmounts and asks the inventory to reconcile: within milliseconds of a
/// mount event, plus a periodic safety rescan, plus a quick recheck while a watched superblock
/// has no mount left (a lazy unmount whose superblock still lives).
/// </summary>
public sealed unsafe class MountTracker : IDisposable
{
    private readonly FilesystemInventory _inventory;
    private readonly ILogger _log;
    private readonly WakeSignal _wake = new();
    private readonly FanotifyGroup? _mountGroup;
    private readonly FileDescriptor? _mountinfo;
    private readonly Thread _thread;
    private readonly TimeSpan _rescanInterval;
    private volatile bool _stopping;
    private volatile bool _rescanRequested;

    public MountTracker(FilesystemInventory inventory, ILogger log, TimeSpan? rescanInterval = null, bool allowFanotify = true)
    {
        _inventory = inventory;
        _log = log;
        _rescanInterval = rescanInterval ?? TimeSpan.FromSeconds(30);

        if (allowFanotify)
        {
            _mountGroup = FanotifyGroup.Create(FanotifyGroup.MountGroupFlags, out var initErrno);
            var markErrno = _mountGroup?.MarkMountNamespace() ?? initErrno;
            if (markErrno != 0)
            {
                _mountGroup?.Dispose();
                _mountGroup = null;
                FanotifyProblem = $"FAN_MNT_ATTACH/DETACH unavailable ({ErrnoTable.Name(markErrno)}; needs Linux 6.15+)";
            }
        }
        if (_mountGroup is null)
        {
            var fd = Libc.Open("/proc/self/mountinfo", Libc.O_RDONLY | Libc.O_CLOEXEC);
            if (fd < 0)
                throw new InvalidOperationException($"cannot open /proc/self/mountinfo: {ErrnoTable.Name(Libc.LastErrno)}");
            _mountinfo = new FileDescriptor(fd);
        }
        Mode = _mountGroup is null ? MountTracking.MountinfoPoll : MountTracking.FanotifyMountNamespace;
        _thread = new Thread(Loop) { Name = "errorwatch-mounts", IsBackground = true };
    }

    public MountTracking Mode { get; }

    /// <summary>Why mount events could not be used, when <see cref="Mode"/> is the fallback.</summary>
    public string? FanotifyProblem { get; }

    public long Rescans => Interlocked.Read(ref _rescans);
    private long _rescans;

    public void Start() => _thread.Start();

    /// <summary>Asks for a rescan now (D-Bus RescanFilesystems, SIGHUP).</summary>
    public void RequestRescan()
    {
        _rescanRequested = true;
        Wake();
    }

    public bool Stop(TimeSpan timeout)
    {
        _stopping = true;
        Wake();
        return !_thread.IsAlive || _thread.Join(timeout);
    }

    private void Wake() => _wake.Signal();

    private void Loop()
    {
        var fds = stackalloc Libc.PollFd[2];
        var buffer = new byte[16 * 1024];
        if (_mountinfo is not null)
            DrainMountinfo(buffer); // arms POLLPRI: the kernel signals changes after the file was read
        while (!_stopping)
        {
            fds[0] = _wake.PollFd;
            fds[1] = _mountGroup is not null
                ? new Libc.PollFd { Fd = _mountGroup.Fd, Events = Libc.POLLIN }
                : new Libc.PollFd { Fd = _mountinfo!.Fd, Events = Libc.POLLPRI | Libc.POLLERR };
            var timeout = _inventory.HasOrphans ? 1000 : (int)_rescanInterval.TotalMilliseconds;
            var ready = Libc.Poll(fds, 2, timeout);
            if (_stopping)
                break;
            if (ready < 0 && Libc.LastErrno == Libc.EINTR)
                continue;
            if (ready < 0)
            {
                _log.Error("poll for mount changes failed: {Errno}; falling back to periodic rescans", ErrnoTable.Name(Libc.LastErrno));
                Thread.Sleep(1000);
            }
            if (ready > 0 && fds[0].REvents != 0)
                _wake.Drain();
            if (ready > 0 && fds[1].REvents != 0)
            {
                if (_mountGroup is not null)
                    DrainMountEvents(buffer);
                else
                    DrainMountinfo(buffer);
            }
            else if (ready > 0 && !_rescanRequested)
            {
                continue; // only the wake fd: a stop or an explicit rescan request
            }
            _rescanRequested = false;
            try
            {
                _inventory.Reconcile();
                Interlocked.Increment(ref _rescans);
            }
            catch (Exception e)
            {
                _log.Error(e, "Rescanning mounts failed; will retry on the next change");
            }
        }
    }

    private void DrainMountEvents(byte[] buffer)
    {
        while (true)
        {
            var n = _mountGroup!.Read(buffer);
            if (n <= 0)
                return;
            var reader = new FanotifyEventReader(buffer.AsSpan(0, n));
            while (reader.TryRead(out var ev))
            {
                var records = ev.ReadRecords();
                _log.Debug("Mount event 0x{Mask:x} for mount {MountId}", ev.Mask, records.MountId);
            }
            if (reader.Error.IsError)
                _log.Warning("Malformed mount event buffer: {Problem}; rescanning anyway", reader.Error.ToString());
        }
    }

    private void DrainMountinfo(byte[] buffer)
    {
        Libc.LSeek(_mountinfo!.Fd, 0, 0);
        fixed (byte* p = buffer)
            while (Libc.Read(_mountinfo.Fd, p, buffer.Length) > 0)
            {
            }
    }

    public void Dispose()
    {
        Stop(TimeSpan.FromSeconds(2));
        _mountGroup?.Dispose();
        _mountinfo?.Dispose();
        _wake.Dispose();
    }
}
