using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// Starting and ending recovery hooks: glibc's &lt;spawn.h&gt; (posix_spawn and its file actions
/// and attributes, glibc 2.36 on Debian 12; addchdir_np is 2.29+, addclosefrom_np 2.34+),
/// &lt;signal.h&gt; (kill, sigset_t), &lt;sys/wait.h&gt; (waitpid), &lt;unistd.h&gt; (pipe2),
/// &lt;sys/pidfd.h&gt; (pidfd_open, called as syscall 434 on every architecture since Linux 5.3)
/// and &lt;stdlib.h&gt; realpath. .NET's Process cannot pass environment values that are not
/// UTF-8, put a child in its own process group, or signal that group, which hooks need.
/// posix_spawn returns an errno value instead of setting errno; the others set errno.
/// </summary>
internal static unsafe partial class Spawn
{
    private const string Lib = "libc";

    // <spawn.h> (glibc): flags for posix_spawnattr_setflags.
    public const short POSIX_SPAWN_SETPGROUP = 0x02, POSIX_SPAWN_SETSIGDEF = 0x04, POSIX_SPAWN_SETSIGMASK = 0x08;

    /// <summary>sizeof(posix_spawnattr_t) is 336 and sizeof(posix_spawn_file_actions_t) 80 on 64-bit glibc; allocated with room to spare.</summary>
    public const int AttrSize = 512, FileActionsSize = 256;

    /// <summary>sizeof(sigset_t) in glibc: 1024 bits.</summary>
    public const int SigsetSize = 128;

    // <asm-generic/signal.h>
    public const int SIGKILL = 9, SIGTERM = 15;

    // <sys/wait.h>
    public const int WNOHANG = 1;

    /// <summary>__NR_pidfd_open, the same number on x86_64 and arm64 (the unified syscall table from 5.3).</summary>
    public const int SYS_pidfd_open = 434;

    /// <summary>PATH_MAX from &lt;linux/limits.h&gt;: realpath's buffer.</summary>
    public const int PathMax = 4096;

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_init")]
    public static partial int FileActionsInit(void* actions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_destroy")]
    public static partial int FileActionsDestroy(void* actions);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addopen", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FileActionsAddOpen(void* actions, int fd, string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_adddup2")]
    public static partial int FileActionsAddDup2(void* actions, int fd, int newFd);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addchdir_np", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int FileActionsAddChdir(void* actions, string path);

    [LibraryImport(Lib, EntryPoint = "posix_spawn_file_actions_addclosefrom_np")]
    public static partial int FileActionsAddCloseFrom(void* actions, int from);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_init")]
    public static partial int AttrInit(void* attr);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_destroy")]
    public static partial int AttrDestroy(void* attr);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setflags")]
    public static partial int AttrSetFlags(void* attr, short flags);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setpgroup")]
    public static partial int AttrSetPgroup(void* attr, int pgroup);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigmask")]
    public static partial int AttrSetSigmask(void* attr, void* sigset);

    [LibraryImport(Lib, EntryPoint = "posix_spawnattr_setsigdefault")]
    public static partial int AttrSetSigdefault(void* attr, void* sigset);

    [LibraryImport(Lib, EntryPoint = "sigemptyset")]
    public static partial int SigEmptySet(void* set);

    [LibraryImport(Lib, EntryPoint = "sigfillset")]
    public static partial int SigFillSet(void* set);

    /// <summary>argv and envp are NULL-terminated arrays of NUL-terminated byte strings: any bytes but NUL.</summary>
    [LibraryImport(Lib, EntryPoint = "posix_spawn")]
    public static partial int PosixSpawn(int* pid, byte* path, void* actions, void* attr, byte** argv, byte** envp);

    [LibraryImport(Lib, EntryPoint = "waitpid", SetLastError = true)]
    public static partial int WaitPid(int pid, int* status, int options);

    /// <summary>A negative pid signals the process group -pid.</summary>
    [LibraryImport(Lib, EntryPoint = "kill", SetLastError = true)]
    public static partial int Kill(int pid, int signal);

    [LibraryImport(Lib, EntryPoint = "pipe2", SetLastError = true)]
    public static partial int Pipe2(int* fds, int flags);

    [LibraryImport(Lib, EntryPoint = "realpath", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial byte* RealPath(string path, byte* resolved);

    /// <summary>A pollable fd that becomes readable when <paramref name="pid"/> exits (Linux 5.3+); -1 with errno otherwise.</summary>
    public static int PidfdOpen(int pid) => (int)Libc.Syscall(SYS_pidfd_open, pid, 0, 0, 0);

    // <bits/waitstatus.h>
    public static bool Exited(int status) => (status & 0x7f) == 0;
    public static int ExitCode(int status) => (status >> 8) & 0xff;
    public static bool Signaled(int status) => (status & 0x7f) is not 0 and not 0x7f;
    public static int TermSignal(int status) => status & 0x7f;

    /// <summary>The signal's name as kill -l prints it with SIG in front (x86_64/arm64 numbering), or "signal N".</summary>
    public static string SignalName(int signal) => signal switch
    {
        1 => "SIGHUP", 2 => "SIGINT", 3 => "SIGQUIT", 4 => "SIGILL", 5 => "SIGTRAP", 6 => "SIGABRT", 7 => "SIGBUS",
        8 => "SIGFPE", 9 => "SIGKILL", 10 => "SIGUSR1", 11 => "SIGSEGV", 12 => "SIGUSR2", 13 => "SIGPIPE",
        14 => "SIGALRM", 15 => "SIGTERM", 16 => "SIGSTKFLT", 17 => "SIGCHLD", 18 => "SIGCONT", 19 => "SIGSTOP",
        20 => "SIGTSTP", 21 => "SIGTTIN", 22 => "SIGTTOU", 23 => "SIGURG", 24 => "SIGXCPU", 25 => "SIGXFSZ",
        26 => "SIGVTALRM", 27 => "SIGPROF", 28 => "SIGWINCH", 29 => "SIGIO", 30 => "SIGPWR", 31 => "SIGSYS",
        _ => $"signal {signal}",
    };
}
