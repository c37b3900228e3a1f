using System.Runtime.InteropServices;
using ErrorWatch.Filesystems;
using ErrorWatch.Interop;

namespace ErrorWatch.Decoding;

/// <summary>A path found for a file handle, or why none was (ESTALE, EUCLEAN, disconnected...).</summary>
public sealed record PathResolution(FsPath? Path, string? Failure, bool Deleted = false)
{
    public static PathResolution NotAttempted(string why) => new(null, why);
}

/// <summary>
/// Resolves file handles to paths with open_by_handle_at(mount_fd, handle, O_PATH) and
/// /proc/self/fd readlink (kernel-abi.md §4.4), only for handles read from our own marks.
/// The handle is opened O_PATH (no data read, no atime); the mount fd is opened only for the call so it never blocks umount.
/// Decoding a corrupt inode can raise another filesystem error, so results are cached per handle
/// and attempts are rate-limited per superblock (a token bucket).
/// </summary>
public sealed unsafe class PathResolver
{
    private readonly double _ratePerSecond;
    private readonly double _burst;
    private readonly TimeProvider _time;
    private readonly Dictionary<DeviceNumber, Bucket> _buckets = new();
    private readonly Dictionary<(DeviceNumber, string), (PathResolution Result, long At)> _cache = new();
    private readonly Lock _lock = new();
    private const int CacheLimit = 4096;
    private static readonly TimeSpan CacheLifetime = TimeSpan.FromMinutes(5);

    public PathResolver(double ratePerSecond = 10, double burst = 20, TimeProvider? time = null)
    {
        _ratePerSecond = ratePerSecond;
        _burst = burst;
        _time = time ?? TimeProvider.System;
    }

    public bool Enabled { get; init; } = true;

    /// <summary>What reports say instead of a path when resolution is disabled.</summary>
    public string DisabledReason { get; init; } = "path resolution disabled by configuration";

    public PathResolution Resolve(Superblock superblock, FileObject obj, ReadOnlySpan<byte> handle)
    {
        if (obj.IsWholeFilesystem)
            return PathResolution.NotAttempted("whole-filesystem error: no file");
        if (!Enabled)
            return PathResolution.NotAttempted(DisabledReason);

        var key = (superblock.Device, Convert.ToHexStringLower(handle) + ":" + obj.HandleType);
        lock (_lock)
        {
            var now = _time.GetTimestamp();
            if (_cache.TryGetValue(key, out var cached) && _time.GetElapsedTime(cached.At, now) < CacheLifetime)
                return cached.Result;
            if (!TakeToken(superblock.Device, now))
                return PathResolution.NotAttempted($"skipped: path resolution limit of {_ratePerSecond:0.#}/s reached for this filesystem");
        }

        var result = ResolveNow(superblock, obj, handle);
        lock (_lock)
        {
            if (_cache.Count >= CacheLimit)
                _cache.Clear();
            _cache[key] = (result, _time.GetTimestamp());
        }
        return result;
    }

    private bool TakeToken(DeviceNumber device, long now)
    {
        if (!_buckets.TryGetValue(device, out var bucket))
            bucket = new Bucket(_burst, now);
        var tokens = Math.Min(_burst, bucket.Tokens + _time.GetElapsedTime(bucket.Stamp, now).TotalSeconds * _ratePerSecond);
        var granted = tokens >= 1;
        _buckets[device] = new Bucket(granted ? tokens - 1 : tokens, now);
        return granted;
    }

    private readonly record struct Bucket(double Tokens, long Stamp);

    private static PathResolution ResolveNow(Superblock superblock, FileObject obj, ReadOnlySpan<byte> handle)
    {
        if (handle.Length > Libc.MAX_HANDLE_SZ)
            return new PathResolution(null, $"handle of {handle.Length} bytes exceeds MAX_HANDLE_SZ");
        var mounts = superblock.Mounts.OrderByDescending(m => m.IsFilesystemRoot).ToList();
        if (mounts.Count == 0)
            return new PathResolution(null, "filesystem has no mount left to resolve against");

        string? lastProblem = null;
        foreach (var mount in mounts)
        {
            // A directory fd, not O_PATH: open_by_handle_at resolves mount_fd with fdget(), which refuses O_PATH (EBADF).
            using var mountFd = MountRoot.Open(mount, pathOnly: false, out var problem);
            if (mountFd is null)
            {
                lastProblem = problem;
                continue;
            }
            return ResolveAgainst(mountFd.Fd, mount, obj, handle);
        }
        return new PathResolution(null, lastProblem ?? "no usable mount");
    }

    private static PathResolution ResolveAgainst(int mountFd, MountEntry mount, FileObject obj, ReadOnlySpan<byte> handle)
    {
        // struct file_handle { u32 handle_bytes; int handle_type; unsigned char f_handle[]; }, aligned copy.
        var fh = stackalloc byte[8 + Libc.MAX_HANDLE_SZ];
        *(uint*)fh = (uint)handle.Length;
        *(int*)(fh + 4) = obj.HandleType;
        handle.CopyTo(new Span<byte>(fh + 8, handle.Length));

        var fd = Libc.OpenByHandleAt(mountFd, fh, Libc.O_PATH | Libc.O_CLOEXEC);
        if (fd < 0)
            return new PathResolution(null, DescribeOpenFailure(Libc.LastErrno));
        using var file = new FileDescriptor(fd);

        var stx = stackalloc byte[Libc.StatxSize];
        if (Libc.Statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_INO | 0x4 /* STATX_NLINK */, stx) != 0)
            return new PathResolution(null, $"statx of the opened inode failed: {ErrnoTable.Name(Libc.LastErrno)}");
        var span = new ReadOnlySpan<byte>(stx, Libc.StatxSize);
        var ino = MemoryMarshal.Read<ulong>(span.Slice(Libc.StatxInoOffset));
        var nlink = MemoryMarshal.Read<uint>(span.Slice(16));
        if (obj.Inode is { } expected && ino != expected)
            return new PathResolution(null, $"handle opened inode {ino}, not {expected}");

        var buffer = new byte[4096];
        nint n;
        fixed (byte* b = buffer)
            n = Libc.ReadLink($"/proc/self/fd/{fd}", b, buffer.Length);
        if (n < 0)
        {
            var errno = Libc.LastErrno;
            // d_path cannot write a name of PATH_MAX bytes or more (nested directories can be that deep
            // when made with relative paths); say so rather than a bare errno.
            return new PathResolution(null, errno == Libc.ENAMETOOLONG
                ? "path longer than PATH_MAX (4096 bytes): the kernel cannot name it (ENAMETOOLONG)"
                : $"readlink failed: {ErrnoTable.Name(errno)}", nlink == 0);
        }
        var path = buffer.AsSpan(0, (int)n);

        var deleted = nlink == 0;
        var suffix = " (deleted)"u8;
        if (deleted && path.EndsWith(suffix))
            path = path[..^suffix.Length];

        // A disconnected dentry (not in the dcache, no parent known) reads back as the mount root.
        var resolved = new FsPath(path);
        if (resolved.Equals(mount.MountPoint) && !IsMountRootInode(mountFd, ino))
            return new PathResolution(null, "disconnected dentry: inode found but its directory is not cached, path unknown", deleted);
        if (path.Length == 0 || path[0] != (byte)'/')
            return new PathResolution(null, $"inode is outside this process's view ({resolved.Escaped})", deleted);
        return new PathResolution(resolved, null, deleted);
    }

    private static bool IsMountRootInode(int mountFd, ulong ino)
    {
        var stx = stackalloc byte[Libc.StatxSize];
        if (Libc.Statx(mountFd, "", Libc.AT_EMPTY_PATH, Libc.STATX_INO, stx) != 0)
            return false;
        return MemoryMarshal.Read<ulong>(new ReadOnlySpan<byte>(stx + Libc.StatxInoOffset, 8)) == ino;
    }

    internal static string DescribeOpenFailure(int errno) => errno switch
    {
        Libc.ESTALE => "stale handle: the inode was freed or reused, or cannot be decoded (ESTALE)",
        Libc.EUCLEAN => "the inode itself is corrupt and cannot be read (EUCLEAN)",
        Libc.EBADMSG => "the inode fails its checksum and cannot be read (EFSBADCRC)",
        Libc.EIO => "I/O error reading the inode (EIO)",
        Libc.EPERM => "not permitted: path resolution needs CAP_DAC_READ_SEARCH (EPERM)",
        Libc.EINVAL => "the kernel refused the handle (EINVAL)",
        _ => $"open_by_handle_at failed: {ErrnoTable.Name(errno)}",
    };
}
