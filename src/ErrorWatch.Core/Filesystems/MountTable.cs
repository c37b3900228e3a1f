using System.Runtime.InteropServices;
using ErrorWatch.Interop;
using static ErrorWatch.Interop.Mount;

namespace ErrorWatch.Filesystems;

/// <summary>Where mount information comes from: statmount/listmount on 6.8+, mountinfo before.</summary>
public enum MountSource
{
    Statmount,
    Mountinfo,
}

/// <summary>Lists the mounts of this process's mount namespace.</summary>
public static unsafe class MountTable
{
    /// <summary>Probes listmount(2); ENOSYS (or a seccomp filter's EPERM) means use mountinfo.</summary>
    public static MountSource Detect()
    {
        try
        {
            return TryListMountIds(out _, out _) ? MountSource.Statmount : MountSource.Mountinfo;
        }
        catch (EntryPointNotFoundException)
        {
            return MountSource.Mountinfo;
        }
    }

    public static List<MountEntry> Read(MountSource source, Action<string>? onProblem = null)
    {
        if (source == MountSource.Statmount)
        {
            if (TryReadStatmount(out var mounts, onProblem))
                return mounts;
            onProblem?.Invoke("statmount/listmount failed; falling back to /proc/self/mountinfo");
        }
        return MountinfoParser.Parse(File.ReadAllBytes("/proc/self/mountinfo"), onProblem);
    }

    private static bool TryListMountIds(out List<ulong> ids, out int errno)
    {
        ids = new List<ulong>();
        errno = 0;
        const int batch = 256;
        var buffer = stackalloc ulong[batch];
        ulong last = 0;
        var req = stackalloc byte[MntIdReqSizeVer0];
        while (true)
        {
            new Span<byte>(req, MntIdReqSizeVer0).Clear();
            MemoryMarshal.Write(new Span<byte>(req, 4), MntIdReqSizeVer0);
            MemoryMarshal.Write(new Span<byte>(req + 8, 8), LSMT_ROOT);
            MemoryMarshal.Write(new Span<byte>(req + 16, 8), last);
            var n = Libc.Syscall(SYS_listmount, (nint)req, (nint)buffer, batch, 0);
            if (n < 0)
            {
                errno = Libc.LastErrno;
                if (errno == Libc.EINTR)
                    continue;
                return false;
            }
            for (var i = 0; i < n; i++)
                ids.Add(buffer[i]);
            if (n < batch)
                return true;
            last = buffer[n - 1];
        }
    }

    private static bool TryReadStatmount(out List<MountEntry> mounts, Action<string>? onProblem)
    {
        mounts = new List<MountEntry>();
        if (!TryListMountIds(out var ids, out _))
            return false;
        var buffer = new byte[4096];
        const ulong basic = STATMOUNT_SB_BASIC | STATMOUNT_MNT_BASIC | STATMOUNT_MNT_ROOT | STATMOUNT_MNT_POINT | STATMOUNT_FS_TYPE;
        foreach (var id in ids)
        {
            var mask = basic | STATMOUNT_MNT_OPTS | STATMOUNT_SB_SOURCE;
            while (true)
            {
                var rc = StatmountOne(id, mask, buffer, out var errno);
                if (rc == 0)
                {
                    mounts.Add(ToEntry(buffer));
                    break;
                }
                if (errno == Libc.EOVERFLOW && buffer.Length < 1 << 20)
                {
                    buffer = new byte[buffer.Length * 2];
                    continue;
                }
                if (errno == Libc.EINVAL && mask != basic)
                {
                    mask = basic; // kernels before 6.13 reject unknown request bits
                    continue;
                }
                if (errno != Libc.ENOENT) // ENOENT: unmounted since listmount; not a problem
                    onProblem?.Invoke($"statmount of mount {id} failed: {ErrnoTable.Name(errno)}");
                break;
            }
        }
        return true;
    }

    private static int StatmountOne(ulong id, ulong mask, byte[] buffer, out int errno)
    {
        var req = stackalloc byte[MntIdReqSizeVer0];
        new Span<byte>(req, MntIdReqSizeVer0).Clear();
        MemoryMarshal.Write(new Span<byte>(req, 4), MntIdReqSizeVer0);
        MemoryMarshal.Write(new Span<byte>(req + 8, 8), id);
        MemoryMarshal.Write(new Span<byte>(req + 16, 8), mask);
        fixed (byte* buf = buffer)
        {
            var rc = Libc.Syscall(SYS_statmount, (nint)req, (nint)buf, buffer.Length, 0);
            errno = rc < 0 ? Libc.LastErrno : 0;
            return (int)rc;
        }
    }

    private static ReadOnlySpan<byte> Str(ReadOnlySpan<byte> sm, ReadOnlySpan<byte> strings, ulong mask, int fieldOffset, ulong bit)
    {
        if ((mask & bit) == 0)
            return default;
        var offset = MemoryMarshal.Read<uint>(sm.Slice(fieldOffset));
        if (offset >= strings.Length)
            return default;
        var s = strings.Slice((int)offset);
        var end = s.IndexOf((byte)0);
        return end < 0 ? s : s[..end];
    }

    /// <summary>Decodes struct statmount; strings are NUL-terminated at str[offset] after the 512-byte fixed part.</summary>
    internal static MountEntry ToEntry(ReadOnlySpan<byte> sm)
    {
        var mask = MemoryMarshal.Read<ulong>(sm.Slice(SmMask));
        var size = (int)Math.Min(MemoryMarshal.Read<uint>(sm.Slice(SmSize)), (uint)sm.Length);
        var strings = size > SmFixedSize ? sm.Slice(SmFixedSize, size - SmFixedSize) : ReadOnlySpan<byte>.Empty;

        var attr = MemoryMarshal.Read<ulong>(sm.Slice(SmMntAttr));
        var superOptions = System.Text.Encoding.UTF8.GetString(Str(sm, strings, mask, SmMntOpts, STATMOUNT_MNT_OPTS));
        return new MountEntry
        {
            Id = MemoryMarshal.Read<ulong>(sm.Slice(SmMntId)),
            ParentId = MemoryMarshal.Read<ulong>(sm.Slice(SmMntParentId)),
            Device = new DeviceNumber(MemoryMarshal.Read<uint>(sm.Slice(SmSbDevMajor)), MemoryMarshal.Read<uint>(sm.Slice(SmSbDevMinor))),
            Magic = MemoryMarshal.Read<ulong>(sm.Slice(SmSbMagic)),
            FsType = System.Text.Encoding.UTF8.GetString(Str(sm, strings, mask, SmFsType, STATMOUNT_FS_TYPE)),
            Source = System.Text.Encoding.UTF8.GetString(Str(sm, strings, mask, SmSbSource, STATMOUNT_SB_SOURCE)),
            MountPoint = new FsPath(Str(sm, strings, mask, SmMntPoint, STATMOUNT_MNT_POINT)),
            Root = new FsPath(Str(sm, strings, mask, SmMntRoot, STATMOUNT_MNT_ROOT)),
            Options = (attr & MOUNT_ATTR_RDONLY) != 0 ? "ro" : "rw",
            SuperOptions = superOptions,
            ReadOnly = (attr & MOUNT_ATTR_RDONLY) != 0,
            SuperblockReadOnly = (MemoryMarshal.Read<uint>(sm.Slice(SmSbFlags)) & SB_RDONLY) != 0,
            UniqueId = true,
        };
    }
}
