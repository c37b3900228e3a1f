using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// A thread's CPU scheduling: <c>sched_setattr(2)</c> and <c>sched_getattr(2)</c> with struct sched_attr
/// from &lt;linux/sched/types.h&gt; and the flags of &lt;linux/sched.h&gt; (no glibc wrapper in 2.36,
/// called through syscall(2)).
/// </summary>
internal static unsafe class Scheduling
{
    /// <summary>__NR_sched_setattr / __NR_sched_getattr: 314/315 on x86_64, 274/275 on arm64 (asm-generic table).</summary>
    public static nint SYS_sched_setattr => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 274 : 314;
    public static nint SYS_sched_getattr => RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? 275 : 315;

    // <linux/sched.h>
    public const uint SCHED_OTHER = 0;
    /// <summary>Threads and processes the thread creates start at nice 0 and the default slice.</summary>
    public const ulong SCHED_FLAG_RESET_ON_FORK = 0x01;

    /// <summary>
    /// struct sched_attr (SCHED_ATTR_SIZE_VER1, 56 bytes). For SCHED_OTHER, sched_runtime is the
    /// thread's requested slice in ns (6.12+, EEVDF: 100 µs to 100 ms; 0 = the default); earlier
    /// kernels ignore it.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct SchedAttr
    {
        public uint Size;
        public uint Policy;
        public ulong Flags;
        public int Nice;
        public uint Priority;
        public ulong Runtime;
        public ulong Deadline;
        public ulong Period;
        public uint UtilMin;
        public uint UtilMax;
    }

    /// <summary>Reads thread <paramref name="tid"/>'s attributes (0: the calling thread); 0 or -1 with errno.</summary>
    public static int GetAttr(int tid, out SchedAttr attr)
    {
        attr = default;
        fixed (SchedAttr* p = &attr)
            return (int)Libc.Syscall(SYS_sched_getattr, tid, (nint)p, sizeof(SchedAttr), 0);
    }

    /// <summary>Sets <paramref name="attr"/> on thread <paramref name="tid"/> (0: the calling thread); 0 or -1 with errno.</summary>
    public static int SetAttr(int tid, ref SchedAttr attr)
    {
        attr.Size = (uint)sizeof(SchedAttr);
        fixed (SchedAttr* p = &attr)
            return (int)Libc.Syscall(SYS_sched_setattr, tid, (nint)p, 0, 0);
    }
}
