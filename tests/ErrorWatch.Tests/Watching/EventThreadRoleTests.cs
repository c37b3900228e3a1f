using System.Collections.Concurrent;
using System.Diagnostics;
using ErrorWatch.Daemon;
using ErrorWatch.Publishing;
using ErrorWatch.Tests.EndToEnd;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.Watching;

/// <summary>
/// The daemon's two event threads trade the read and decode roles: the one that read an error while
/// the other slept decodes and publishes it on the spot (no wake-up between read(2) and the store),
/// and the other reads the next one, then decodes it in turn.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class EventThreadRoleTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    [LoopFact]
    public void The_thread_that_read_an_error_while_the_other_slept_publishes_it_and_the_other_reads_the_next()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("roles");
        var publishedOn = new BlockingCollection<(string? Thread, ulong Count)>();
        using var harness = new DaemonHarness(new DaemonOptions { Watch = new WatchOptions { Include = [fs.MountPoint] } },
            sinks: [new CallbackSink(report => publishedOn.Add((Thread.CurrentThread.Name, report.Error.Count)))]);

        var threads = new List<string?>();
        for (var i = 0; i < 4; i++)
        {
            // The decoder is back asleep after the last report: the next error finds the roles settled.
            var clock = Stopwatch.StartNew();
            while (!harness.Daemon.HandOff.TakerSleeps && clock.Elapsed < Patience)
                Thread.Sleep(1);
            Assert.True(harness.Daemon.HandOff.TakerSleeps, "the decode thread never went to sleep");
            fs.TriggerFsErrors(1);
            Assert.True(publishedOn.TryTake(out var published, Patience), $"error {i + 1} was not published");
            Assert.Equal(1ul, published.Count);
            threads.Add(published.Thread);
        }

        Assert.Equal([EventThreadNames.First, EventThreadNames.Second, EventThreadNames.First, EventThreadNames.Second], threads);
        Assert.Equal(4, harness.Daemon.EventsRead);
    }

    [LoopFact]
    public void In_a_storm_over_two_filesystems_reports_are_published_in_the_order_their_events_were_read_and_all_counted()
    {
        // One role per thread at a time: however often the threads trade, no report overtakes one read before it.
        using var scratch = new ScratchDirectory();
        var a = scratch.Ext4("order-a");
        var b = scratch.Ext4("order-b");
        var published = new ConcurrentQueue<(DateTimeOffset Time, string Device, ulong Count, string? Thread)>();
        using var harness = new DaemonHarness(new DaemonOptions { Watch = new WatchOptions { Include = [a.MountPoint, b.MountPoint] } },
            sinks: [new CallbackSink(r => published.Enqueue((r.Time, r.Filesystem.Device, r.Error.Count, Thread.CurrentThread.Name)))]);

        Parallel.Invoke(() => a.TriggerFsErrors(1500), () => b.TriggerFsErrors(1500));
        var expected = a.ErrorsCountReaching(1500, Patience) + b.ErrorsCountReaching(1500, Patience);
        var clock = Stopwatch.StartNew();
        while (published.Sum(p => (decimal)p.Count) < expected && clock.Elapsed < TimeSpan.FromSeconds(30))
            Thread.Sleep(20);

        var reports = published.ToList();
        Assert.Equal(3000ul, expected);
        Assert.Equal(expected, reports.Aggregate(0ul, (sum, r) => sum + r.Count));
        Assert.Equal([a.LoopDevice, b.LoopDevice], reports.Select(r => r.Device).Distinct().Order());
        for (var i = 1; i < reports.Count; i++)
            Assert.True(reports[i].Time >= reports[i - 1].Time, $"report {i} ({reports[i].Time:O}, {reports[i].Thread}) was read before report {i - 1} ({reports[i - 1].Time:O}, {reports[i - 1].Thread})");
        Assert.All(reports, r => Assert.True(r.Thread is EventThreadNames.First or EventThreadNames.Second, $"published on {r.Thread}"));
    }
}
