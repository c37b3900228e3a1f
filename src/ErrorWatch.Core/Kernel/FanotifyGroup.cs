using ErrorWatch.Filesystems;
using ErrorWatch.Interop;
using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Kernel;

/// <summary>
/// One fanotify group (fanotify_init fd). A FAN_FS_ERROR group carries one FAN_MARK_FILESYSTEM mark, so
/// the fd an event is read from names its superblock even when fsids collide (§5); only the inventory's
/// spill group, past the group limit, carries several, with fsids kept unique.
/// </summary>
internal sealed unsafe class FanotifyGroup : IDisposable
{
    private readonly FileDescriptor _fd;

    private FanotifyGroup(FileDescriptor fd) => _fd = fd;

    public int Fd => _fd.Fd;

    /// <summary>FAN_CLASS_NOTIF | FAN_REPORT_FID: the documented requirement for FAN_FS_ERROR (§1.1).</summary>
    public const uint ErrorGroupFlags = FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_CLOEXEC | FAN_NONBLOCK;

    /// <summary>FAN_REPORT_MNT must live in its own group: it cannot be combined with FID flags (6.15).</summary>
    public const uint MountGroupFlags = FAN_CLASS_NOTIF | FAN_REPORT_MNT | FAN_CLOEXEC | FAN_NONBLOCK;

    public static FanotifyGroup? Create(uint flags, out int errno)
    {
        var fd = Fanotify.Init(flags, (uint)(Libc.O_RDONLY | Libc.O_LARGEFILE));
        errno = fd < 0 ? Libc.LastErrno : 0;
        return fd < 0 ? null : new FanotifyGroup(new FileDescriptor(fd));
    }

    /// <summary>Wraps a descriptor that reads like a group: a non-blocking pipe of synthetic buffers, for
    /// tests of what the kernel cannot be made to send (events of several filesystems in one group,
    /// malformed ones).</summary>
    internal static FanotifyGroup Wrap(int fd) => new(new FileDescriptor(fd));

    /// <summary>Marks the superblock holding <paramref name="objectFd"/> (fanotify_mark with a NULL path marks dirfd itself).</summary>
    public int MarkFilesystem(int objectFd, ulong mask)
    {
        var rc = Fanotify.Mark(Fd, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, objectFd, null);
        return rc == 0 ? 0 : Libc.LastErrno;
    }

    /// <summary>Marks this process's mount namespace for FAN_MNT_ATTACH/DETACH (6.15+).</summary>
    public int MarkMountNamespace()
    {
        var path = "/proc/self/ns/mnt\0"u8;
        fixed (byte* p = path)
        {
            var rc = Fanotify.Mark(Fd, FAN_MARK_ADD | FAN_MARK_MNTNS, FAN_MNT_ATTACH | FAN_MNT_DETACH, Libc.AT_FDCWD, p);
            return rc == 0 ? 0 : Libc.LastErrno;
        }
    }

    /// <summary>Reads whole events; returns bytes read, 0 when the queue is empty (EAGAIN), or -errno.</summary>
    public int Read(Span<byte> buffer)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Libc.Read(Fd, p, buffer.Length);
                if (n >= 0)
                    return (int)n;
                var errno = Libc.LastErrno;
                if (errno == Libc.EINTR)
                    continue;
                return errno == Libc.EAGAIN ? 0 : -errno;
            }
        }
    }

    /// <summary>
    /// The superblocks this group still has marks on, from /proc/self/fdinfo ("fanotify sdev:%x ...").
    /// The kernel drops an sb mark silently when the superblock dies (last unmount), so this tells
    /// exactly whether the watched filesystem still exists, without guessing from mount tables.
    /// </summary>
    public List<DeviceNumber> MarkedSuperblocks()
    {
        var result = new List<DeviceNumber>();
        foreach (var line in File.ReadLines($"/proc/self/fdinfo/{Fd}"))
        {
            const string prefix = "fanotify sdev:";
            if (!line.StartsWith(prefix, StringComparison.Ordinal))
                continue;
            var end = line.IndexOf(' ', prefix.Length);
            var hex = end < 0 ? line.AsSpan(prefix.Length) : line.AsSpan(prefix.Length, end - prefix.Length);
            if (ulong.TryParse(hex, System.Globalization.NumberStyles.HexNumber, null, out var dev))
                result.Add(DeviceNumber.FromKernelEncoding(dev));
        }
        return result;
    }

    public void Dispose() => _fd.Dispose();
}
