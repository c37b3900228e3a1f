using System.Diagnostics;

namespace ErrorWatch.Watching;

/// <summary>
/// One loop's sign of life for a watchdog (Daemon/Watchdog) probe: alive while it is blocked waiting for
/// input (an idle system sends nothing, for hours) or has made progress within the stall limit.
/// A loop calls <see cref="Waiting"/> just before it blocks for input and <see cref="Progress"/> when
/// it wakes and after each unit of work; lock-free, so it costs nothing on the hot path.
/// </summary>
public sealed class LoopHeartbeat
{
    private long _last = Stopwatch.GetTimestamp();
    private int _waiting;

    public LoopHeartbeat(string name) => Name = name;

    public string Name { get; }

    /// <summary>The loop did work (or woke up to do it).</summary>
    public void Progress()
    {
        Volatile.Write(ref _last, Stopwatch.GetTimestamp());
        Volatile.Write(ref _waiting, 0);
    }

    /// <summary>The loop is about to block for input; it counts as alive until its next <see cref="Progress"/>.</summary>
    public void Waiting()
    {
        Volatile.Write(ref _last, Stopwatch.GetTimestamp());
        Volatile.Write(ref _waiting, 1);
    }

    public bool IsWaiting => Volatile.Read(ref _waiting) == 1;

    public TimeSpan SinceProgress => Stopwatch.GetElapsedTime(Volatile.Read(ref _last));

    public bool IsAlive(TimeSpan stallLimit) => IsWaiting || SinceProgress < stallLimit;

    /// <summary>A probe for watchdog (Daemon/Watchdog): true while every loop is alive.</summary>
    public static Func<bool> AllAlive(TimeSpan stallLimit, params LoopHeartbeat[] loops) =>
        () => Array.TrueForAll(loops, l => l.IsAlive(stallLimit));
}
