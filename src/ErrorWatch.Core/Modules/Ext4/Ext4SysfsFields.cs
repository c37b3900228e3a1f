using System.Buffers.Text;
using System.Text;
using ErrorWatch.Decoding;
using ErrorWatch.Interop;
using Microsoft.Win32.SafeHandles;

namespace ErrorWatch.Modules.Ext4;

/// <summary>
/// The error fields of one ext4 superblock as /sys/fs/ext4/&lt;dev&gt;/ shows them (kernel-abi.md §6):
/// errors_count and the first/last error groups. Every fanotify report re-reads errors_count and the
/// last-error group, on the path to the store and the bus, so those seven attribute files stay open and
/// are re-read with pread at offset 0 (kernfs regenerates an attribute's text at each read from 0):
/// ~5 µs for the seven, against ~40 µs to open, read and close them and ~150 µs through File.ReadAllText.
/// The first-error group is written once by the kernel, so it is read once and kept.
/// </summary>
public sealed class Ext4SysfsFields : IDisposable
{
    private static readonly string[] Kept =
        ["errors_count", "last_error_time", "last_error_func", "last_error_line", "last_error_ino", "last_error_block", "last_error_errcode"];

    private readonly string _dir;
    private readonly bool _keepOpen;
    private readonly SafeFileHandle?[] _open = new SafeFileHandle?[Kept.Length];
    private (ulong ErrorsCount, Ext4ErrorSite Site)? _first;

    /// <param name="keepOpen">false for a one-off read (the health loop's periodic check): nothing stays open.</param>
    public Ext4SysfsFields(string sysfsDir, bool keepOpen = true)
    {
        _dir = sysfsDir;
        _keepOpen = keepOpen;
    }

    /// <summary>
    /// errors_count and both error groups. The first-error group comes from the cache once read, unless
    /// errors_count went down (the counters were reset, so the group may be new).
    /// </summary>
    /// <exception cref="FileNotFoundException">An attribute (or the directory: unmounted) does not exist.</exception>
    /// <exception cref="IOException">An attribute could not be read.</exception>
    /// <exception cref="FormatException">An attribute's text is not what ext4 writes.</exception>
    public Ext4ErrorRecord Read()
    {
        lock (_open)
        {
            var errorsCount = Number(0);
            if (_first is not { } cached || errorsCount < cached.ErrorsCount)
                _first = FirstSite() is { } site ? (errorsCount, site) : null;
            return new Ext4ErrorRecord(errorsCount, _first?.Site, LastSite());
        }
    }

    private Ext4ErrorSite? LastSite()
    {
        var time = (long)Number(1);
        if (time == 0)
            return null;
        return new Ext4ErrorSite(DateTimeOffset.FromUnixTimeSeconds(time), Text(2), (uint)Number(3), Number(4), Number(5),
            Code("last_error_errcode", ReadKept(6, optional: true)));
    }

    private Ext4ErrorSite? FirstSite()
    {
        var time = (long)ParseNumber("first_error_time", ReadOnce("first_error_time", optional: false)!);
        if (time == 0)
            return null;
        return new Ext4ErrorSite(DateTimeOffset.FromUnixTimeSeconds(time),
            Encoding.UTF8.GetString(ReadOnce("first_error_func", optional: false)!),
            (uint)ParseNumber("first_error_line", ReadOnce("first_error_line", optional: false)!),
            ParseNumber("first_error_ino", ReadOnce("first_error_ino", optional: false)!),
            ParseNumber("first_error_block", ReadOnce("first_error_block", optional: false)!),
            Code("first_error_errcode", ReadOnce("first_error_errcode", optional: true)));
    }

    private ulong Number(int kept) => ParseNumber(Kept[kept], ReadKept(kept, optional: false)!);
    private string Text(int kept) => Encoding.UTF8.GetString(ReadKept(kept, optional: false)!);

    /// <summary>*_error_errcode came in 5.x; a kernel without it has no code (0).</summary>
    private byte Code(string name, byte[]? text) => text is null ? (byte)0 : (byte)ParseNumber(name, text);

    private ulong ParseNumber(string name, ReadOnlySpan<byte> text) =>
        Utf8Parser.TryParse(text, out ulong value, out var used) && used == text.Length
            ? value
            : throw new FormatException($"{Path.Combine(_dir, name)}: not a number: '{Encoding.UTF8.GetString(text)}'");

    /// <summary>A kept attribute; reopened once when its file went stale (the directory was removed and made again by a new mount).</summary>
    private byte[]? ReadKept(int index, bool optional)
    {
        if (!_keepOpen)
            return ReadOnce(Kept[index], optional);
        for (var attempt = 0; ; attempt++)
        {
            var handle = _open[index] ??= OpenAttribute(Kept[index], optional);
            if (handle is null)
                return null;
            var text = ReadAt(handle, out var errno);
            if (text is not null)
                return text;
            handle.Dispose();
            _open[index] = null;
            if (attempt > 0 || errno is not (Libc.ENODEV or Libc.ENOENT or Libc.EBADF))
                throw Failure(Kept[index], errno);
        }
    }

    private byte[]? ReadOnce(string name, bool optional)
    {
        using var handle = OpenAttribute(name, optional);
        if (handle is null)
            return null;
        return ReadAt(handle, out var errno) ?? throw Failure(name, errno);
    }

    private SafeFileHandle? OpenAttribute(string name, bool optional)
    {
        var fd = Libc.Open(Path.Combine(_dir, name), Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd >= 0)
            return new SafeFileHandle(fd, ownsHandle: true);
        var errno = Libc.LastErrno;
        if (errno == Libc.ENOENT && optional && Directory.Exists(_dir))
            return null;
        throw Failure(name, errno);
    }

    /// <summary>The attribute's text without its trailing newline; null and the errno when the read fails.</summary>
    private static unsafe byte[]? ReadAt(SafeFileHandle handle, out int errno)
    {
        // sysfs attributes are at most a page; ext4's are a number or a function name.
        var buffer = stackalloc byte[256];
        var n = Libc.PRead((int)handle.DangerousGetHandle(), buffer, 256, 0);
        if (n < 0)
        {
            errno = Libc.LastErrno;
            return null;
        }
        errno = 0;
        var text = new ReadOnlySpan<byte>(buffer, (int)n);
        return text.Trim(" \n\t\0"u8).ToArray();
    }

    private Exception Failure(string name, int errno)
    {
        var path = Path.Combine(_dir, name);
        var message = $"{path}: {ErrnoTable.Name(errno)}";
        return errno == Libc.ENOENT ? new FileNotFoundException(message, path) : new IOException(message);
    }

    public void Dispose()
    {
        lock (_open)
        {
            for (var i = 0; i < _open.Length; i++)
            {
                _open[i]?.Dispose();
                _open[i] = null;
            }
        }
    }
}
