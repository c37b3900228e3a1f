using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// glibc entry points used by the pipeline. Every call sets errno (SetLastError), read back with
/// <see cref="Marshal.GetLastPInvokeError"/>. Layouts are for 64-bit Linux (x86_64, arm64).
/// </summary>
internal static unsafe partial class Libc
{
    private const string Lib = "libc";

    // <fcntl.h>, <asm-generic/fcntl.h>
    public const int O_RDONLY = 0x0;
    public const int O_WRONLY = 0x1;
    public const int O_RDWR = 0x2;
    public const int O_CREAT = 0x40;
    public const int O_APPEND = 0x400;
    public const int O_NONBLOCK = 0x800;
    public const int O_DIRECTORY = 0x10000;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_CLOEXEC = 0x80000;
    public const int O_PATH = 0x200000;
    public const int O_LARGEFILE = 0x8000; // x86_64 value; implied on 64-bit, kept for fanotify_init's event_f_flags
    public const int AT_FDCWD = -100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const int AT_SYMLINK_NOFOLLOW = 0x100;

    // <asm-generic/errno-base.h>, <asm-generic/errno.h>
    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, EBADF = 9, EAGAIN = 11, ENOMEM = 12,
        EACCES = 13, EEXIST = 17, EXDEV = 18, ENODEV = 19, ENOTDIR = 20, EINVAL = 22, EMFILE = 24,
        ENOSPC = 28, EROFS = 30, EPIPE = 32, ENAMETOOLONG = 36, ENOSYS = 38, EBADMSG = 74, EOVERFLOW = 75, EOPNOTSUPP = 95,
        ESHUTDOWN = 108, ESTALE = 116, EUCLEAN = 117;

    // <unistd.h> lseek whence; SEEK_DATA is the Linux extension /dev/kmsg gives its own meaning.
    public const int SEEK_SET = 0, SEEK_END = 2, SEEK_DATA = 3;

    // <poll.h>
    public const short POLLIN = 0x1, POLLPRI = 0x2, POLLOUT = 0x4, POLLERR = 0x8, POLLHUP = 0x10, POLLNVAL = 0x20;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    // <sys/eventfd.h>
    public const int EFD_CLOEXEC = O_CLOEXEC, EFD_NONBLOCK = O_NONBLOCK;

    // open(2) is variadic in C only for the mode argument; glibc's implementation reads it from
    // the register either way on x86_64/arm64, so a fixed 3-argument binding is safe.
    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode = 0);

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true)]
    public static partial int Open(byte* path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    /// <summary>
    /// dup(2) with close-on-exec set atomically (fcntl F_DUPFD_CLOEXEC, &lt;fcntl.h&gt;): hooks are spawned
    /// from another thread at any time and must not inherit the copy. fcntl is variadic in C; its one
    /// int argument travels in a register as a fixed one would (x86_64, arm64 Linux).
    /// </summary>
    public static int Dup(int fd) => Fcntl(fd, F_DUPFD_CLOEXEC, 0);

    private const int F_DUPFD_CLOEXEC = 1030;

    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    private static partial int Fcntl(int fd, int cmd, int arg);

    // <unistd.h>: pipe2(2) with O_NONBLOCK | O_CLOEXEC
    [LibraryImport(Lib, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buf, nint count);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buf, nint count);

    [LibraryImport(Lib, EntryPoint = "pread", SetLastError = true)]
    public static partial nint PRead(int fd, byte* buf, nint count, long offset);

    [LibraryImport(Lib, EntryPoint = "pwrite", SetLastError = true)]
    public static partial nint PWrite(int fd, byte* buf, nint count, long offset);

    [LibraryImport(Lib, EntryPoint = "fsync", SetLastError = true)]
    public static partial int FSync(int fd);

    [LibraryImport(Lib, EntryPoint = "fdatasync", SetLastError = true)]
    public static partial int FDataSync(int fd);

    // <sys/file.h>: one writer per report store
    public const int LOCK_EX = 2, LOCK_NB = 4;

    [LibraryImport(Lib, EntryPoint = "flock", SetLastError = true)]
    public static partial int Flock(int fd, int operation);

    [LibraryImport(Lib, EntryPoint = "lseek", SetLastError = true)]
    public static partial long LSeek(int fd, long offset, int whence);

    // <unistd.h>: cuts a record a full disk took only part of
    [LibraryImport(Lib, EntryPoint = "ftruncate", SetLastError = true)]
    public static partial int FTruncate(int fd, long length);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint nfds, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "eventfd", SetLastError = true)]
    public static partial int EventFd(uint initval, int flags);

    [LibraryImport(Lib, EntryPoint = "getpid")]
    public static partial int GetPid();

    [LibraryImport(Lib, EntryPoint = "geteuid")]
    public static partial uint GetEuid();

    public const int SIGHUP = 1;
    public static readonly nint SIG_DFL = 0, SIG_IGN = 1;

    /// <summary>
    /// <c>sigaction(2)</c> in &lt;signal.h&gt;, used only to read a disposition: <paramref name="oldact"/>
    /// must point at room for glibc's struct sigaction (152 bytes on x86_64 and arm64), whose first
    /// member is the handler.
    /// </summary>
    [LibraryImport(Lib, EntryPoint = "sigaction", SetLastError = true)]
    public static partial int SigAction(int signal, void* act, void* oldact);

    /// <summary><c>signal(2)</c>: sets a disposition (SIG_DFL, SIG_IGN), returns the previous one.</summary>
    [LibraryImport(Lib, EntryPoint = "signal")]
    public static partial nint Signal(int signal, nint handler);

    /// <summary>True when <paramref name="signal"/> is ignored (SIG_IGN), as nohup leaves SIGHUP.</summary>
    public static bool IsIgnored(int signal)
    {
        var action = stackalloc byte[512];
        return SigAction(signal, null, action) == 0 && *(nint*)action == SIG_IGN;
    }

    /// <summary><c>umask(2)</c> in &lt;sys/stat.h&gt;: sets the process's file mode creation mask, returns the previous one.</summary>
    [LibraryImport(Lib, EntryPoint = "umask")]
    public static partial uint Umask(uint mask);

    /// <summary>The calling thread's kernel id (glibc 2.30+, <c>gettid(2)</c> in &lt;unistd.h&gt;): what /proc/PID/task and strace -p name.</summary>
    [LibraryImport(Lib, EntryPoint = "gettid")]
    public static partial int GetTid();

    // <stdlib.h>: the environment as native code (libsystemd) reads it. Environment.GetEnvironmentVariable
    // reads .NET's managed copy, which SetEnvironmentVariable changes without telling getenv(3).
    [LibraryImport(Lib, EntryPoint = "getenv", StringMarshalling = StringMarshalling.Utf8)]
    public static partial byte* GetEnv(string name);

    // ioctl(2) is variadic; the third argument is always one pointer here, passed in a register.
    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* arg);

    // <sys/statfs.h>: struct statfs is 120 bytes on 64-bit; f_type at 0, f_fsid (int[2]) at 56.
    public const int StatfsSize = 120;
    public const int StatfsTypeOffset = 0;
    public const int StatfsFsidOffset = 56;
    public const int StatfsFlagsOffset = 80; // f_flags: ST_RDONLY 0x1 ...

    [LibraryImport(Lib, EntryPoint = "fstatfs", SetLastError = true)]
    public static partial int FStatfs(int fd, byte* buf);

    // <linux/stat.h>: struct statx (256 bytes).
    public const uint STATX_TYPE = 0x1, STATX_MODE = 0x2, STATX_UID = 0x8, STATX_GID = 0x10, STATX_INO = 0x100, STATX_MNT_ID = 0x1000, STATX_MNT_ID_UNIQUE = 0x4000;
    public const int StatxSize = 256;
    public const int StatxUidOffset = 20;       // u32
    public const int StatxGidOffset = 24;       // u32
    public const int StatxModeOffset = 28;      // u16
    public const int StatxInoOffset = 32;       // u64
    public const int StatxRdevMajorOffset = 128; // u32: what a device node stands for
    public const int StatxRdevMinorOffset = 132; // u32
    public const int StatxDevMajorOffset = 136; // u32
    public const int StatxDevMinorOffset = 140; // u32
    public const int StatxMntIdOffset = 144;    // u64
    public const int StatxMaskOffset = 0;       // u32

    [LibraryImport(Lib, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Statx(int dirfd, string path, int flags, uint mask, byte* buf);

    // <fcntl.h> struct file_handle { unsigned int handle_bytes; int handle_type; unsigned char f_handle[]; }
    public const int MAX_HANDLE_SZ = 128;

    [LibraryImport(Lib, EntryPoint = "open_by_handle_at", SetLastError = true)]
    public static partial int OpenByHandleAt(int mountFd, byte* fileHandle, int flags);

    [LibraryImport(Lib, EntryPoint = "readlink", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial nint ReadLink(string path, byte* buf, nint size);

    // syscall(2) is variadic; glibc's implementation only shuffles registers, so fixed integer
    // arguments are safe on x86_64 and arm64. Used for statmount/listmount (no glibc wrapper in 2.36).
    [LibraryImport(Lib, EntryPoint = "syscall", SetLastError = true)]
    public static partial nint Syscall(nint number, nint a1, nint a2, nint a3, nint a4);

    // <unistd.h>: replaces the process image; returns only on failure. argv and envp are
    // NULL-terminated arrays of NUL-terminated byte strings.
    [LibraryImport(Lib, EntryPoint = "execve", SetLastError = true)]
    public static partial int Execve(byte* path, byte** argv, byte** envp);

    // <malloc.h> (glibc): int malloc_trim(size_t pad): returns the free memory at the top of the
    // main heap and, since glibc 2.8, free whole pages inside every arena to the kernel
    // (MADV_DONTNEED); 1 when some was released. Sets no errno.
    [LibraryImport(Lib, EntryPoint = "malloc_trim")]
    public static partial int MallocTrim(nuint pad);

    public static int LastErrno => Marshal.GetLastPInvokeError();
}
