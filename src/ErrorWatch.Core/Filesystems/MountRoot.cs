using System.Runtime.InteropServices;
using ErrorWatch.Interop;

namespace ErrorWatch.Filesystems;

/// <summary>
/// Opens the root of a mount for a moment (to mark it, identify it or decode a handle against it).
/// Never kept open: an fd, even O_PATH, makes umount(8) fail with "target is busy".
/// The fd is verified to be that very mount (statx mount id, unique on 6.8+; st_dev before 5.8) so a
/// directory mounted over the mount point, or a renamed one, cannot redirect us.
/// </summary>
internal static unsafe class MountRoot
{
    public static FileDescriptor? Open(MountEntry mount, bool pathOnly, out string? problem) => Open(mount, pathOnly, out problem, out _);

    /// <summary>As <see cref="Open(MountEntry, bool, out string?)"/>, with open(2)'s errno (XFS answers EIO when shut down).</summary>
    public static FileDescriptor? Open(MountEntry mount, bool pathOnly, out string? problem, out int errno)
    {
        errno = 0;
        var flags = Libc.O_DIRECTORY | Libc.O_CLOEXEC | (pathOnly ? Libc.O_PATH : Libc.O_RDONLY | Libc.O_NONBLOCK);
        int fd;
        fixed (byte* p = NulTerminated(mount.MountPoint.Bytes))
            fd = Libc.Open(p, flags, 0);
        if (fd < 0)
        {
            errno = Libc.LastErrno;
            problem = $"cannot open mount point {mount.MountPoint.Escaped}: {ErrnoTable.Name(errno)}";
            return null;
        }
        var handle = new FileDescriptor(fd);
        if (!Verify(fd, mount, out problem))
        {
            handle.Dispose();
            return null;
        }
        return handle;
    }

    /// <summary>
    /// A directory fd (not O_PATH) on the root of the first mount of <paramref name="sb"/> that opens,
    /// preferred mounts first; null with the last failure when none does.
    /// </summary>
    public static FileDescriptor? OpenAny(Superblock sb, out string? problem, out int errno)
    {
        problem = "no mount of it is left";
        errno = 0;
        foreach (var mount in sb.MountsByPreference)
        {
            var fd = Open(mount, pathOnly: false, out problem, out errno);
            if (fd is not null)
                return fd;
        }
        return null;
    }

    private static bool Verify(int fd, MountEntry mount, out string? problem)
    {
        var stx = stackalloc byte[Libc.StatxSize];
        var mask = Libc.STATX_INO | (mount.UniqueId ? Libc.STATX_MNT_ID_UNIQUE : Libc.STATX_MNT_ID);
        if (Libc.Statx(fd, "", Libc.AT_EMPTY_PATH, mask, stx) != 0)
        {
            problem = $"statx of {mount.MountPoint.Escaped} failed: {ErrnoTable.Name(Libc.LastErrno)}";
            return false;
        }
        var span = new ReadOnlySpan<byte>(stx, Libc.StatxSize);
        var gotMask = MemoryMarshal.Read<uint>(span.Slice(Libc.StatxMaskOffset));
        if ((gotMask & (Libc.STATX_MNT_ID | Libc.STATX_MNT_ID_UNIQUE)) != 0)
        {
            // The mount id decides: it is this very mount or not. Its st_dev need not be the mount's
            // device: btrfs gives each subvolume's inodes an anonymous device number of their own.
            var mountId = MemoryMarshal.Read<ulong>(span.Slice(Libc.StatxMntIdOffset));
            problem = mountId == mount.Id ? null : $"{mount.MountPoint.Escaped} is now mount {mountId}, not {mount.Id} (mounted over or unmounted)";
            return problem is null;
        }
        var device = new DeviceNumber(MemoryMarshal.Read<uint>(span.Slice(Libc.StatxDevMajorOffset)),
            MemoryMarshal.Read<uint>(span.Slice(Libc.StatxDevMinorOffset)));
        if (device != mount.Device)
        {
            problem = $"{mount.MountPoint.Escaped} is now device {device}, not {mount.Device} (mounted over or unmounted; or a btrfs subvolume, whose device number is its own, on a kernel without statx mount ids)";
            return false;
        }
        problem = null;
        return true;
    }

    internal static byte[] NulTerminated(ReadOnlySpan<byte> path)
    {
        var buffer = new byte[path.Length + 1];
        path.CopyTo(buffer);
        return buffer;
    }
}
