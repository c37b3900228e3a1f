using System.Diagnostics;
using Serilog;

namespace ErrorWatch.Daemon;

/// <summary>
/// Gives memory back once the daemon goes quiet. After a burst of work (the start, an error storm)
/// the GC keeps the regions the burst needed and glibc keeps its arenas' free pages, so a daemon
/// that idles 99.99% of its life would hold a storm's peak for the rest of it. <see cref="Quiet"/>
/// after the last <see cref="Worked"/>, malloc_trim(3) returns glibc's free pages and, when the work
/// allocated more than <see cref="GiveBackAbove"/>, one aggressive collection compacts the heap and
/// decommits its free regions (docs/performance.md, footprint).
/// A one-shot timer, armed only by work: an idle daemon is never woken for this.
/// </summary>
public sealed class IdleMemory : IDisposable
{
    public static readonly TimeSpan Quiet = TimeSpan.FromSeconds(10);
    /// <summary>
    /// Bytes allocated since the last return that make an aggressive collection worth it. The start
    /// on the Generic Host allocates about 3 MiB (its DI container, options, logging) that would
    /// otherwise stay in gen0 until the first reports: collected, idle RSS is 17.7 MiB, not 21.5.
    /// </summary>
    public const long GiveBackAbove = 2L << 20;

    private readonly TimeSpan _quiet;
    private readonly long _collectAbove;
    private readonly Action? _gaveBack;
    private readonly ILogger? _log;
    private readonly Timer _timer;
    private long _lastWork;
    private long _allocatedAtReturn = GC.GetTotalAllocatedBytes(precise: false);
    // 1 while the timer is armed: Worked() then only moves _lastWork, the timer looks again when it fires.
    private int _armed;
    private int _disposed;

    /// <param name="collectAbove">Overrides <see cref="GiveBackAbove"/> (tests: the allocation count is the whole process's).</param>
    public IdleMemory(TimeSpan? quiet = null, Action? gaveBack = null, ILogger? log = null, long collectAbove = GiveBackAbove)
    {
        _quiet = quiet ?? Quiet;
        _collectAbove = collectAbove;
        _gaveBack = gaveBack;
        _log = log;
        _timer = new Timer(_ => Fire(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>How many times the daemon went quiet after work (glibc's free pages returned each time).</summary>
    public int Returns { get; private set; }
    /// <summary>How many of those also made an aggressive collection (the work allocated more than <see cref="GiveBackAbove"/>).</summary>
    public int Collections { get; private set; }

    /// <summary>Work was done (its garbage is worth collecting once things are quiet); cheap enough for every report.</summary>
    public void Worked()
    {
        Volatile.Write(ref _lastWork, Stopwatch.GetTimestamp());
        if (Volatile.Read(ref _armed) == 0 && Interlocked.Exchange(ref _armed, 1) == 0 && Volatile.Read(ref _disposed) == 0)
            _timer.Change(_quiet, Timeout.InfiniteTimeSpan);
    }

    private void Fire()
    {
        var since = Stopwatch.GetElapsedTime(Volatile.Read(ref _lastWork));
        if (since < _quiet)
        {
            // Work came in while armed: look again when that work has been quiet long enough.
            if (Volatile.Read(ref _disposed) == 0)
                _timer.Change(_quiet - since, Timeout.InfiniteTimeSpan);
            return;
        }
        Volatile.Write(ref _armed, 0);
        GiveBack();
        // Work that arrived between the check and the disarm must still get its collection.
        if (Stopwatch.GetElapsedTime(Volatile.Read(ref _lastWork)) < _quiet)
            Worked();
    }

    private void GiveBack()
    {
        // What the work since the last return allocated: a storm's hundreds of MiB, a report's tens of
        // KiB. Below the bound a collection would give back little and would map the GC's compaction
        // code for nothing. (The last collection's committed bytes would not
        // do: the garbage allocated after it is not in them.)
        var allocated = GC.GetTotalAllocatedBytes(precise: false);
        var work = allocated - _allocatedAtReturn;
        if (work > _collectAbove)
        {
            // What a storm left: for an admin asking why RSS moved, and for docs/performance.md.
            var log = _log is not null && _log.IsEnabled(Serilog.Events.LogEventLevel.Debug) ? _log : null;
            var before = log is null ? default : GC.GetGCMemoryInfo();
            GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
            Collections++;
            if (log is not null)
            {
                var after = GC.GetGCMemoryInfo();
                var generations = after.GenerationInfo;
                log.Debug("Quiet after work that allocated {Allocated:F1} MiB: GC heap {Heap:F1} MiB in {Committed:F1} MiB committed " +
                    "(collections gen0/1/2 {Gen0}/{Gen1}/{Gen2}), {HeapAfter:F1} MiB in {CommittedAfter:F1} MiB after compacting " +
                    "(gen2 {Gen2After:F2}, large objects {LargeAfter:F2}, pinned {PinnedAfter:F2} MiB)",
                    work / 1048576.0, before.HeapSizeBytes / 1048576.0, before.TotalCommittedBytes / 1048576.0,
                    GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2),
                    after.HeapSizeBytes / 1048576.0, after.TotalCommittedBytes / 1048576.0,
                    generations[2].SizeAfterBytes / 1048576.0, generations[3].SizeAfterBytes / 1048576.0, generations[4].SizeAfterBytes / 1048576.0);
            }
        }
        _allocatedAtReturn = GC.GetTotalAllocatedBytes(precise: false);
        try
        {
            Interop.Libc.MallocTrim(0);
        }
        catch (EntryPointNotFoundException)
        {
            // Not glibc (musl has no malloc_trim): nothing to trim there.
        }
        Returns++;
        _gaveBack?.Invoke();
    }

    public void Dispose()
    {
        Volatile.Write(ref _disposed, 1);
        _timer.Dispose();
    }
}
