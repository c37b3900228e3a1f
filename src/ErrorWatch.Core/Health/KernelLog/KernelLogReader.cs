using ErrorWatch.Interop;

namespace ErrorWatch.Health.KernelLog;

/// <summary>
/// Reads /dev/kmsg without blocking: one record per read(2) (kernel/printk/printk.c devkmsg_read).
/// Poll <see cref="Fd"/> for POLLIN, then call <see cref="ReadAvailable"/>. Opening never throws: a
/// missing device or privilege leaves the reader closed with <see cref="Problem"/> saying why.
/// </summary>
/// <remarks>
/// Each open file has its own read position (a record sequence number), so this reader neither
/// disturbs nor is disturbed by journald or dmesg. When the ring buffer overwrites records before
/// they are read, read(2) fails once with EPIPE and the position jumps to the oldest record left;
/// the sequence-number gap tells how many were lost (<see cref="Lost"/>). poll(2) also reports
/// POLLERR|POLLPRI in that state, which only means the next read gives EPIPE.
/// A record that does not end in a newline (a /dev/kmsg write without one, a KERN_CONT line still
/// being built) stays open in the ring buffer and becomes readable only when the next record is
/// logged; the kernel's own error lines all end in one.
/// </remarks>
public sealed class KernelLogReader : IKernelLogSource
{
    /// <summary>Where reading starts (devkmsg_llseek; the offset must be 0).</summary>
    public enum StartAt
    {
        /// <summary>SEEK_END: only records logged from now on.</summary>
        End,

        /// <summary>SEEK_SET: the oldest record still in the ring buffer (also where a fresh open starts).</summary>
        Beginning,

        /// <summary>SEEK_DATA: the first record after the last SYSLOG_ACTION_CLEAR ("dmesg -c"); the oldest record if never cleared.</summary>
        AfterLastClear,
    }

    public const string DefaultPath = "/dev/kmsg";

    /// <summary>CONSOLE_EXT_LOG_MAX: a smaller buffer makes read(2) fail with EINVAL for long records (and skip them).</summary>
    public const int BufferSize = 8192;

    // EINVAL/EPIPE each move the position on, so a run this long means something other than lost records.
    private const int MaxConsecutiveErrors = 64;

    private readonly byte[] _buffer = new byte[BufferSize];
    private FileDescriptor? _fd;
    private ulong? _lastSequence;
    private bool _lossOfUnknownSize;

    public KernelLogReader(StartAt start = StartAt.End, string path = DefaultPath)
    {
        Path = path;
        var fd = Libc.Open(path, Libc.O_RDONLY | Libc.O_NONBLOCK | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            Problem = DescribeOpenFailure(path, Libc.LastErrno);
            return;
        }
        _fd = new FileDescriptor(fd);
        if (NotKmsg(fd) is { } what)
        {
            Problem = $"{path} is {what}, not the kernel log device (char 1:11): masked (systemd's ProtectKernelLogs=yes puts an empty file there in a container)";
            _fd.Dispose();
            _fd = null;
            return;
        }
        var whence = start switch
        {
            StartAt.Beginning => Libc.SEEK_SET,
            StartAt.AfterLastClear => Libc.SEEK_DATA,
            _ => Libc.SEEK_END,
        };
        if (Libc.LSeek(fd, 0, whence) < 0)
        {
            Problem = $"cannot seek {path} to {start}: {Errno(Libc.LastErrno)}";
            _fd.Dispose();
            _fd = null;
        }
    }

    public string Path { get; }

    public string Name => DefaultPath;

    public bool IsOpen => _fd is not null;

    /// <summary>The descriptor to poll for POLLIN, or -1 when closed.</summary>
    public int Fd => _fd?.Fd ?? -1;

    public short Events => Libc.POLLIN;

    /// <summary>Never: the device stays readable while records are waiting.</summary>
    public bool Pending => false;

    public int TimeoutMs => -1;

    public bool Stopped => _fd is null;

    /// <summary>Why the reader is closed or stopped reading; null while all is well.</summary>
    public string? Problem { get; private set; }

    /// <summary>Records known to be lost: overwritten before they were read (EPIPE) or too long for the buffer (EINVAL).</summary>
    public long Lost { get; private set; }

    /// <summary>How many times read(2) reported EPIPE.</summary>
    public long Overruns { get; private set; }

    /// <summary>Records whose header did not parse; they are skipped, not passed on.</summary>
    public long Malformed { get; private set; }

    /// <summary>Why the last malformed record was rejected.</summary>
    public string? LastMalformed { get; private set; }

    /// <summary>The sequence number of the last record passed on.</summary>
    public ulong? LastSequence => _lastSequence;

    /// <summary>
    /// Passes every record available now to <paramref name="onRecord"/>, stopping at EAGAIN or after
    /// <paramref name="maxRecords"/> (so a log flood cannot starve the caller's loop). The record is a
    /// view of this reader's buffer, valid only during the call. Returns how many records were passed on.
    /// </summary>
    public unsafe int ReadAvailable(Action<KmsgRecord> onRecord, int maxRecords = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(onRecord);
        if (_fd is null)
            return 0;

        var delivered = 0;
        var consecutiveErrors = 0;
        fixed (byte* buffer = _buffer)
        {
            while (delivered < maxRecords)
            {
                var n = Libc.Read(_fd.Fd, buffer, BufferSize);
                if (n < 0)
                {
                    var errno = Libc.LastErrno;
                    if (errno == Libc.EAGAIN)
                        break;
                    if (errno == Libc.EINTR)
                        continue;
                    if (++consecutiveErrors > MaxConsecutiveErrors)
                    {
                        Problem = $"read {Path}: {consecutiveErrors} errors in a row, the last {Errno(errno)}";
                        break;
                    }
                    if (errno == Libc.EPIPE)
                    {
                        Overruns++;
                        _lossOfUnknownSize = true;
                        continue;
                    }
                    if (errno == Libc.EINVAL)
                    {
                        _lossOfUnknownSize = true; // the kernel moved past the record it could not fit
                        continue;
                    }
                    Problem = $"read {Path}: {Errno(errno)}";
                    break;
                }
                if (n == 0)
                    break; // not a kmsg device (a regular file at its end)
                consecutiveErrors = 0;

                if (!KmsgRecord.TryParse(new ReadOnlySpan<byte>(buffer, (int)n), out var record, out var problem))
                {
                    Malformed++;
                    LastMalformed = problem;
                    continue;
                }
                CountLoss(record.Sequence);
                onRecord(record);
                delivered++;
            }
        }
        return delivered;
    }

    private void CountLoss(ulong sequence)
    {
        if (_lastSequence is { } last && sequence > last + 1)
            Lost += (long)Math.Min(sequence - last - 1, long.MaxValue);
        else if (_lossOfUnknownSize)
            Lost++; // nothing read before the loss, so its size is unknown: at least one
        _lossOfUnknownSize = false;
        _lastSequence = sequence;
    }

    public void Dispose()
    {
        _fd?.Dispose();
        _fd = null;
    }

    /// <summary>
    /// Null for the kmsg device (drivers/char/mem.c: char 1:11), else what the node is. A masked
    /// /dev/kmsg may well open: an empty regular file of mode 0 reads as nothing forever, and
    /// CAP_DAC_READ_SEARCH lets root open it.
    /// </summary>
    private static unsafe string? NotKmsg(int fd)
    {
        var buffer = stackalloc byte[Libc.StatxSize];
        if (Libc.Statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_TYPE, buffer) != 0)
            return $"of unknown type (statx: {Errno(Libc.LastErrno)})";
        var type = *(ushort*)(buffer + Libc.StatxModeOffset) & 0xF000;
        var major = *(uint*)(buffer + Libc.StatxRdevMajorOffset);
        var minor = *(uint*)(buffer + Libc.StatxRdevMinorOffset);
        return type switch
        {
            0x2000 when major == 1 && minor == 11 => null,
            0x2000 => $"char {major}:{minor}",
            0x8000 => "a regular file",
            _ => $"of file type 0x{type:x}",
        };
    }

    private static string DescribeOpenFailure(string path, int errno) => errno switch
    {
        Libc.ENXIO => $"cannot open {path}: {Errno(errno)}; it is masked (systemd's ProtectKernelLogs=yes puts an inaccessible device there)",
        Libc.ENOENT => $"{path} does not exist ({Errno(errno)}); containers often have no /dev/kmsg, so the kernel log cannot be watched",
        Libc.EPERM => $"cannot open {path}: {Errno(errno)}; reading the kernel log needs CAP_SYSLOG while kernel.dmesg_restrict=1, and a device policy that allows it",
        Libc.EACCES => $"cannot open {path}: {Errno(errno)}; the device node's permissions forbid reading it",
        _ => $"cannot open {path}: {Errno(errno)}",
    };

    private static string Errno(int errno)
    {
        ErrnoTable.TryGet(errno, out var name, out var text);
        return $"{name} ({text})";
    }
}
