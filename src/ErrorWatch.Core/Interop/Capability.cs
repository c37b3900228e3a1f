using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// Linux capabilities of the calling thread: capget(2)/capset(2) with the version 3 structures of
/// &lt;linux/capability.h&gt;, and the bounding and ambient sets through prctl(2) (&lt;linux/prctl.h&gt;).
/// Every set is per thread: these calls read and change the calling thread only (capabilities(7)).
/// All set errno.
/// </summary>
internal static unsafe partial class Capability
{
    private const string Lib = "libc";

    /// <summary>_LINUX_CAPABILITY_VERSION_3: 64-bit sets as two 32-bit halves (_LINUX_CAPABILITY_U32S_3 = 2).</summary>
    public const uint Version3 = 0x20080522;
    public const int U32sVersion3 = 2;

    /// <summary>struct __user_cap_header_struct { __u32 version; int pid; } (pid 0: the calling thread).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Header
    {
        public uint Version;
        public int Pid;
    }

    /// <summary>struct __user_cap_data_struct { __u32 effective, permitted, inheritable; }: element 0 holds capabilities 0-31, element 1 32-63.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Data
    {
        public uint Effective;
        public uint Permitted;
        public uint Inheritable;
    }

    // <linux/prctl.h>
    public const int PR_CAPBSET_READ = 23, PR_CAPBSET_DROP = 24;
    public const int PR_CAP_AMBIENT = 47;
    public const int PR_CAP_AMBIENT_IS_SET = 1, PR_CAP_AMBIENT_LOWER = 3, PR_CAP_AMBIENT_CLEAR_ALL = 4;

    /// <summary>
    /// The capability numbers of &lt;linux/capability.h&gt; (CAP_CHOWN 0 ... CAP_CHECKPOINT_RESTORE 40,
    /// Linux 5.9); the index is the number. Newer ones have no name here and are written cap_N.
    /// </summary>
    public static readonly string[] Names =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
        "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE",
        "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
        "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
        "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG",
        "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
    ];

    public const int CAP_DAC_READ_SEARCH = 2, CAP_SETPCAP = 8, CAP_NET_BIND_SERVICE = 10, CAP_SYS_ADMIN = 21, CAP_SYS_NICE = 23, CAP_SYSLOG = 34;

    /// <summary>data points to <see cref="U32sVersion3"/> elements.</summary>
    [LibraryImport(Lib, EntryPoint = "capget", SetLastError = true)]
    public static partial int CapGet(Header* header, Data* data);

    [LibraryImport(Lib, EntryPoint = "capset", SetLastError = true)]
    public static partial int CapSet(Header* header, Data* data);

    // prctl(2) is variadic; glibc passes the four unsigned long arguments on in registers, so a
    // fixed binding is safe on x86_64 and arm64 (unused ones must be 0 for the options used here).
    [LibraryImport(Lib, EntryPoint = "prctl", SetLastError = true)]
    public static partial int Prctl(int option, nuint arg2, nuint arg3, nuint arg4, nuint arg5);
}
