using ErrorWatch.Daemon;

namespace ErrorWatch.Tests.Service;

/// <summary>
/// When the daemon gives memory back: only after work, only once the work has been quiet, and a GC
/// collection only when the GC holds enough to be worth it. What it gives back in RSS is measured by
/// benchmarks/run-footprint.sh.
/// </summary>
[Collection(IdleMemoryCollection.Name)]
public sealed class IdleMemoryTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(300);

    private static bool Eventually(Func<bool> condition, TimeSpan within)
    {
        var until = DateTime.UtcNow + within;
        while (DateTime.UtcNow < until)
        {
            if (condition())
                return true;
            Thread.Sleep(20);
        }
        return condition();
    }

    [Fact]
    public void Without_work_nothing_is_ever_given_back()
    {
        using var idle = new IdleMemory(Quiet);
        Thread.Sleep(Quiet * 4);
        Assert.Equal(0, idle.Returns);
    }

    [Fact]
    public void Work_is_followed_by_one_return_once_quiet_and_continued_work_postpones_it()
    {
        // The allocation count is the whole test process's (other tests run meanwhile): a bound no test reaches.
        using var idle = new IdleMemory(Quiet, collectAbove: 1L << 40);
        var busyUntil = DateTime.UtcNow + Quiet * 3;
        while (DateTime.UtcNow < busyUntil)
        {
            idle.Worked();
            Thread.Sleep(Quiet / 6);
        }
        Assert.Equal(0, idle.Returns); // never quiet for Quiet while working
        Assert.True(Eventually(() => idle.Returns == 1, Quiet * 10), "no return after the work went quiet");
        Thread.Sleep(Quiet * 3);
        Assert.Equal(1, idle.Returns); // once per burst, not on a period
        Assert.Equal(0, idle.Collections); // the work allocated far less than the bound: no collection
        idle.Worked();
        Assert.True(Eventually(() => idle.Returns == 2, Quiet * 10), "a second burst was not followed by a return");
    }

    [Fact]
    public void A_heap_grown_past_the_bound_is_collected_and_its_memory_decommitted()
    {
        using var idle = new IdleMemory(Quiet);
        var grown = Grow();
        Assert.True(grown > IdleMemory.GiveBackAbove, $"committed {grown} after allocating 48 MiB");

        idle.Worked();
        Assert.True(Eventually(() => idle.Returns == 1, Quiet * 10), "no return after the work went quiet");
        Assert.Equal(1, idle.Collections);
        var after = GC.GetGCMemoryInfo().TotalCommittedBytes;
        Assert.True(after < grown - (24L << 20), $"committed {grown} before, {after} after the aggressive collection (server GC: {System.Runtime.GCSettings.IsServerGC})");
    }

    /// <summary>Leaves 48 MiB of small arrays (as a storm leaves its reports) as garbage the last collection saw alive; returns the GC's committed bytes then.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static long Grow()
    {
        var garbage = new List<byte[]>();
        for (var i = 0; i < 48 * 64; i++)
            garbage.Add(new byte[16 << 10]);
        GC.Collect();
        GC.KeepAlive(garbage);
        return GC.GetGCMemoryInfo().TotalCommittedBytes;
    }
}

/// <summary>The memory test reads the process's GC totals: nothing else in the test host should allocate tens of MiB meanwhile.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class IdleMemoryCollection
{
    public const string Name = "Idle memory (process-wide GC totals)";
}
