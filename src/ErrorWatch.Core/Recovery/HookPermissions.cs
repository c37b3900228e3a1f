using System.Runtime.InteropServices;
using ErrorWatch.Interop;

namespace ErrorWatch.Recovery;

/// <summary>
/// Whether a hook executable may run, as ZED decides for zedlets and sshd for authorized_keys: only
/// root may be able to change it. The file must be a regular file owned by root, not group- or
/// world-writable, executable by its owner; every directory from / down to it must be owned by root
/// and not writable by group or others, unless it has the sticky bit (/tmp): there only an entry's
/// owner (root, checked on the next step) can rename or remove it, so no one else can swap the hook
/// or a directory on its way. Symbolic links on the way must be owned by root; the path they lead to
/// is checked the same way. Checked when the hooks are read and again right before each run.
/// </summary>
public static unsafe class HookPermissions
{
    private const int S_IFMT = 0xF000, S_IFREG = 0x8000, S_IFDIR = 0x4000, S_IFLNK = 0xA000, S_ISVTX = 0x200;

    /// <summary>Why <paramref name="path"/> must not run, ending with the fix; null when it may.</summary>
    public static string? Refusal(string path)
    {
        if (!path.StartsWith('/'))
            return $"{path}: not an absolute path";
        // Links along the given path: each must be root's, or its owner could point it elsewhere later.
        var prefix = "";
        foreach (var part in path.Split('/', StringSplitOptions.RemoveEmptyEntries))
        {
            prefix += "/" + part;
            if (!TryStat(prefix, follow: false, out var link, out var errno))
                return $"{path}: {prefix} cannot be examined ({ErrnoTable.Name(errno)})";
            if ((link.Mode & S_IFMT) == S_IFLNK && link.Uid != 0)
                return $"{path}: the symbolic link {prefix} is owned by uid {link.Uid}, not root. Fix: replace it with a link owned by root (ln -sfn as root)";
        }

        var real = RealPath(path, out var realErrno);
        if (real is null)
            return $"{path}: cannot be resolved ({ErrnoTable.Name(realErrno)})";
        // Through a link, what is refused is named first (the target), then the name it was found by.
        var via = real == path ? "" : $", on the way to its target {real},";
        var file = real == path ? path : $"{real} (the target of {path})";
        var directory = "/";
        var parts = real.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (var i = 0; i <= parts.Length; i++)
        {
            var current = i == 0 ? "/" : directory == "/" ? "/" + parts[i - 1] : directory + "/" + parts[i - 1];
            if (!TryStat(current, follow: false, out var st, out var errno))
                return $"{path}: {current} cannot be examined ({ErrnoTable.Name(errno)})";
            var isFile = i == parts.Length;
            if (!isFile)
            {
                if ((st.Mode & S_IFMT) != S_IFDIR)
                    return $"{path}: {current} is not a directory";
                if (st.Uid != 0)
                    return $"{path}: the directory {current}{via} is owned by uid {st.Uid}, not root, so that user could replace the hook. Fix: chown root:root {current}";
                if ((st.Mode & 0x12) != 0 && (st.Mode & S_ISVTX) == 0)
                    return $"{path}: the directory {current}{via} is {Writable(st.Mode)} (mode {Octal(st.Mode)}), so others could replace the hook. Fix: chmod go-w {current}";
                directory = current;
                continue;
            }
            if ((st.Mode & S_IFMT) != S_IFREG)
                return $"{file}: not a regular file";
            if (st.Uid != 0)
                return $"{file}: owned by uid {st.Uid}, not root, so that user could change what ErrorWatch runs as root. Fix: chown root:root {current}";
            if ((st.Mode & 0x12) != 0)
                return $"{file}: {Writable(st.Mode)} (mode {Octal(st.Mode)}), so others could change what ErrorWatch runs as root. Fix: chmod go-w {current}";
            if ((st.Mode & 0x40) == 0)
                return $"{file}: not executable (mode {Octal(st.Mode)}). Fix: chmod 0755 {current}";
        }
        return null;
    }

    private static string Writable(int mode) => (mode & 0x12) == 0x12 ? "group- and world-writable" : (mode & 0x10) != 0 ? "group-writable" : "world-writable";

    private static string Octal(int mode) => "0" + Convert.ToString(mode & 0xFFF, 8).PadLeft(3, '0');

    private readonly record struct Status(int Mode, uint Uid);

    private static bool TryStat(string path, bool follow, out Status status, out int errno)
    {
        var buffer = stackalloc byte[Libc.StatxSize];
        var rc = Libc.Statx(Libc.AT_FDCWD, path, follow ? 0 : Libc.AT_SYMLINK_NOFOLLOW, Libc.STATX_TYPE | Libc.STATX_MODE | Libc.STATX_UID, buffer);
        if (rc != 0)
        {
            errno = Libc.LastErrno;
            status = default;
            return false;
        }
        errno = 0;
        status = new Status(*(ushort*)(buffer + Libc.StatxModeOffset), *(uint*)(buffer + Libc.StatxUidOffset));
        return true;
    }

    /// <summary>realpath(3): every symbolic link and . or .. resolved; null with the errno when it fails.</summary>
    public static string? RealPath(string path, out int errno)
    {
        var buffer = stackalloc byte[Spawn.PathMax];
        var result = Spawn.RealPath(path, buffer);
        if (result is null)
        {
            errno = Libc.LastErrno;
            return null;
        }
        errno = 0;
        return Marshal.PtrToStringUTF8((nint)buffer);
    }
}
