using ErrorWatch.Interop;
using Serilog;
using ErrorWatch.Daemon;

namespace ErrorWatch.Watching;

/// <summary>
/// The two threads between the kernel and the store, the read loop and the decode thread, run ahead
/// of the rest of the process, as auditd raises itself with priority_boost: N nice levels below the
/// process's own (started at nice 10, they run at 6; clamped at -20) and with the shortest scheduler
/// slice (EEVDF, 6.12+). Woken by an error, they take a busy CPU at once instead of waiting out other
/// tasks' slices: with both vCPUs of the test VM busy, reports were stored 0.2-0.3 ms sooner at p50
/// and about 1 ms sooner at p99 (docs/performance.md). Idle threads cost nothing; in a storm the
/// decode thread's share is bounded by the hand-off's folding. Threads and hooks they start begin at
/// nice 0 and the default slice again (SCHED_FLAG_RESET_ON_FORK).
/// </summary>
public static class EventThreadPriority
{
    /// <summary>The slice asked for, in ns: the least the kernel grants (it clamps to 0.1–100 ms).</summary>
    public const ulong SliceNs = 100_000;

    private static int _refusalLogged;

    /// <summary>
    /// Boosts the calling thread by <paramref name="boost"/> (0: leaves it as it is). Where the nice
    /// value may not be lowered, the short slice alone is kept (it needs no privilege). The first
    /// refusal is logged, naming what would allow it; the thread runs on either way.
    /// </summary>
    public static void Raise(int boost, string thread, ILogger log)
    {
        if (boost <= 0)
            return;
        // Relative to what the thread was started with: an admin who runs the daemon niced keeps it so.
        var current = Scheduling.GetAttr(0, out var now) == 0 ? now.Nice : 0;
        var attr = new Scheduling.SchedAttr
        {
            Policy = Scheduling.SCHED_OTHER,
            Flags = Scheduling.SCHED_FLAG_RESET_ON_FORK,
            Nice = Math.Max(-20, current - boost),
            Runtime = SliceNs,
        };
        if (Scheduling.SetAttr(0, ref attr) == 0)
        {
            log.Debug("The {Thread:l} thread runs at nice {Nice} with a {Slice} µs slice", thread, attr.Nice, SliceNs / 1000);
            return;
        }
        var refused = Libc.LastErrno;
        attr.Nice = current;
        var sliceKept = refused == Libc.EPERM && Scheduling.SetAttr(0, ref attr) == 0;
        if (Interlocked.Exchange(ref _refusalLogged, 1) != 0)
            return;
        if (sliceKept)
            log.Information("[Watch] PriorityBoost={Boost}: the event threads keep nice {Current} (only the short slice): lowering it needs CAP_SYS_NICE or an RLIMIT_NICE of {Limit} (systemd: LimitNICE={Nice})",
                boost, current, 20 - (current - boost), current - boost);
        else
            log.Information("[Watch] PriorityBoost={Boost}: the event threads run without a boost: sched_setattr failed with {Errno:l}{Why:l}",
                boost, ErrnoTable.Name(refused), refused == Libc.EPERM ? " (a system call filter denies it: systemd's ~@resources)" : "");
    }
}
