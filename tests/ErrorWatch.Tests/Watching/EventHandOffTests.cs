using ErrorWatch.Filesystems;
using ErrorWatch.Kernel;
using ErrorWatch.Watching;
using static ErrorWatch.Tests.Decoding.TestEvents;

namespace ErrorWatch.Tests.Watching;

/// <summary>
/// The bounded hand-off between the read loop and the decoders. Like the kernel's own merge
/// (kernel-abi.md §2.8) it may fold events of one superblock together, but error counts must add
/// up exactly ("consumers must sum error_count") and a queue overflow notice is never merged away.
/// </summary>
[Collection(TimingCollection.Name)]
public class EventHandOffTests
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static async Task<FsErrorEvent> TakeOne(EventHandOff handOff)
    {
        using var timeout = new CancellationTokenSource(Patience);
        var ev = await handOff.TakeEventAsync(timeout.Token);
        Assert.NotNull(ev);
        return ev;
    }

    /// <summary>Completes the hand-off and takes everything left, in order.</summary>
    private static async Task<List<FsErrorEvent>> CompleteAndDrain(EventHandOff handOff)
    {
        handOff.Complete();
        var taken = new List<FsErrorEvent>();
        using var timeout = new CancellationTokenSource(Patience);
        while (await handOff.TakeEventAsync(timeout.Token) is { } ev)
            taken.Add(ev);
        return taken;
    }

    /// <summary>Sum of error counts, in 64 bits.</summary>
    private static ulong TotalCount(IEnumerable<FsErrorEvent> events) => events.Aggregate(0ul, (sum, e) => sum + e.Count);

    private static Superblock OtherExt4() =>
        Make(new DeviceNumber(7, 2), "ext4", 0xEF53, "/dev/loop2", new FilesystemId(0x0a0a0a0a, 0x0b0b0b0b));

    [Fact]
    public async Task FullQueue_FoldsTheRestOfOneSuperblockIntoOneEvent()
    {
        var sb = Ext4();
        using var handOff = new EventHandOff(capacity: 2);
        for (uint i = 1; i <= 10; i++)
            handOff.Post(Queued(sb, i % 2 == 1 ? EUCLEAN : EIO, i));

        Assert.Equal(3, handOff.Count);
        Assert.Equal(10, handOff.Posted);
        Assert.Equal(7, handOff.FoldedEvents); // events 4..10 folded into event 3

        var first = await TakeOne(handOff);
        var second = await TakeOne(handOff);
        var folded = await TakeOne(handOff);
        Assert.Equal(0, handOff.Count);

        // The two queued events come out unchanged, in order.
        Assert.Equal((1u, EUCLEAN, 1, (Dictionary<int, ulong>?)null), (first.Count, first.Errno, first.KernelEvents, first.FoldedErrnos));
        Assert.Equal((2u, EIO, 1, (Dictionary<int, ulong>?)null), (second.Count, second.Errno, second.KernelEvents, second.FoldedErrnos));

        // Events 3..10 folded: 3+4+...+10 = 52 errors from 8 kernel events; the first errno is kept.
        Assert.Equal(52u, folded.Count);
        Assert.Equal(8, folded.KernelEvents);
        Assert.Equal(EUCLEAN, folded.Errno);
        Assert.Same(sb, folded.Superblock);
        var tally = Assert.IsType<Dictionary<int, ulong>>(folded.FoldedErrnos);
        Assert.Equal(2, tally.Count);
        Assert.Equal(3ul + 5 + 7 + 9, tally[EUCLEAN]);
        Assert.Equal(4ul + 6 + 8 + 10, tally[EIO]);

        var all = new[] { first, second, folded };
        Assert.Equal(55ul, TotalCount(all));
        Assert.Equal(10, all.Sum(e => e.KernelEvents));

        Assert.Empty(await CompleteAndDrain(handOff));
    }

    [Fact]
    public async Task FoldingOneErrno_KeepsNoTally()
    {
        var sb = Ext4();
        using var handOff = new EventHandOff(capacity: 1);
        handOff.Post(Queued(sb, EUCLEAN, 1));
        handOff.Post(Queued(sb, EUCLEAN, 2));
        handOff.Post(Queued(sb, EUCLEAN, 3));

        var taken = await CompleteAndDrain(handOff);

        Assert.Equal(2, taken.Count);
        Assert.Equal(5u, taken[1].Count);
        Assert.Equal(2, taken[1].KernelEvents);
        Assert.Null(taken[1].FoldedErrnos);
    }

    [Fact]
    public async Task BelowCapacity_NothingIsFolded()
    {
        var sb = Ext4();
        using var handOff = new EventHandOff(capacity: 8);
        for (uint i = 1; i <= 8; i++)
            handOff.Post(Queued(sb, EUCLEAN, i));

        var taken = await CompleteAndDrain(handOff);

        Assert.Equal(Enumerable.Range(1, 8).Select(i => (ulong)i), taken.Select(e => e.Count));
        Assert.All(taken, e => Assert.Equal(1, e.KernelEvents));
        Assert.Equal(0, handOff.FoldedEvents);
    }

    [Fact]
    public async Task Overflow_IsNeverFolded()
    {
        var sb = Ext4();
        using var handOff = new EventHandOff(capacity: 1);
        var error1 = Queued(sb, EUCLEAN, 1);
        var error2 = Queued(sb, EUCLEAN, 2);
        var overflow1 = Overflow(sb);
        var error3 = Queued(sb, EIO, 4);
        var overflow2 = Overflow(sb);

        handOff.Post(error1);    // queued
        handOff.Post(error2);    // queue full: pending fold for sb
        handOff.Post(overflow1); // must not fold into error2 although sb has a pending fold
        handOff.Post(error3);    // folds into error2
        handOff.Post(overflow2); // and again

        var taken = await CompleteAndDrain(handOff);

        Assert.Equal(4, taken.Count);
        Assert.Same(error1, taken[0]);
        var overflows = taken.Where(e => e.IsOverflow).ToList();
        Assert.Equal(2, overflows.Count);
        Assert.Same(overflow1, overflows[0]);
        Assert.Same(overflow2, overflows[1]);
        Assert.All(overflows, o =>
        {
            Assert.Equal(0u, o.Count);
            Assert.Equal(1, o.KernelEvents);
            Assert.Null(o.FoldedErrnos);
        });
        var folded = Assert.Single(taken, e => !e.IsOverflow && e != error1);
        Assert.Equal(6u, folded.Count);
        Assert.Equal(2, folded.KernelEvents);
    }

    [Fact]
    public async Task OverflowFirst_ThenErrors_OverflowStaysSeparate()
    {
        var sb = Ext4();
        using var handOff = new EventHandOff(capacity: 1);
        var overflow = Overflow(sb);
        handOff.Post(overflow);
        handOff.Post(Queued(sb, EUCLEAN, 5));
        handOff.Post(Queued(sb, EUCLEAN, 6));

        var taken = await CompleteAndDrain(handOff);

        Assert.Same(overflow, taken[0]);
        Assert.Equal(0u, overflow.Count);
        Assert.Equal(11ul, TotalCount(taken.Where(e => !e.IsOverflow)));
    }

    [Fact]
    public async Task TwoSuperblocks_FoldSeparately()
    {
        var a = Ext4();
        var b = OtherExt4();
        using var handOff = new EventHandOff(capacity: 1);
        handOff.Post(Queued(a, EUCLEAN, 1)); // queued
        handOff.Post(Queued(a, EUCLEAN, 2)); // folded for a
        handOff.Post(Queued(b, EIO, 10));    // folded for b
        handOff.Post(Queued(a, EBADMSG, 3)); // into a
        handOff.Post(Queued(b, EIO, 20));    // into b

        Assert.Equal(3, handOff.Count);
        var taken = await CompleteAndDrain(handOff);

        Assert.Equal(3, taken.Count);
        Assert.Equal(1u, taken[0].Count);
        var foldedA = Assert.Single(taken.Skip(1), e => e.Superblock == a);
        var foldedB = Assert.Single(taken.Skip(1), e => e.Superblock == b);
        Assert.Equal(5u, foldedA.Count);
        Assert.Equal(2, foldedA.KernelEvents);
        Assert.Equal(new Dictionary<int, ulong> { [EUCLEAN] = 2, [EBADMSG] = 3 }, foldedA.FoldedErrnos);
        Assert.Equal(30u, foldedB.Count);
        Assert.Equal(2, foldedB.KernelEvents);
        Assert.Null(foldedB.FoldedErrnos);
    }

    [Fact]
    public async Task Complete_MakesTakeReturnNullOnlyAfterDraining()
    {
        using var handOff = new EventHandOff(capacity: 1);
        handOff.Post(Queued(Ext4(), EUCLEAN, 1));
        handOff.Post(Queued(Ext4(), EUCLEAN, 2)); // a different Superblock instance: its own fold
        handOff.Complete();

        using var timeout = new CancellationTokenSource(Patience);
        Assert.NotNull(await handOff.TakeEventAsync(timeout.Token));
        Assert.NotNull(await handOff.TakeEventAsync(timeout.Token));
        Assert.Null(await handOff.TakeEventAsync(timeout.Token));
        Assert.Null(await handOff.TakeEventAsync(timeout.Token)); // and stays completed
    }

    [Fact]
    public async Task WaitingTake_IsWokenByPostAndByComplete()
    {
        using var handOff = new EventHandOff(capacity: 4);
        using var timeout = new CancellationTokenSource(Patience);

        var waiting = handOff.TakeEventAsync(timeout.Token).AsTask();
        await Task.Delay(50);
        Assert.False(waiting.IsCompleted);
        var ev = Queued(Ext4(), EUCLEAN, 1);
        handOff.Post(ev);
        Assert.Same(ev, await waiting.WaitAsync(Patience));

        var waitingForEnd = handOff.TakeEventAsync(timeout.Token).AsTask();
        await Task.Delay(50);
        Assert.False(waitingForEnd.IsCompleted);
        handOff.Complete();
        Assert.Null(await waitingForEnd.WaitAsync(Patience));
    }

    [Fact]
    public async Task Take_with_a_timeout_says_it_timed_out_and_still_takes_what_comes_in_time()
    {
        using var handOff = new EventHandOff(capacity: 4);
        var waited = System.Diagnostics.Stopwatch.StartNew();
        Assert.Null(handOff.Take(TimeSpan.FromMilliseconds(100), CancellationToken.None, out var timedOut));
        Assert.True(timedOut);
        Assert.InRange(waited.Elapsed, TimeSpan.FromMilliseconds(90), TimeSpan.FromSeconds(5));

        var ev = Queued(Ext4(), EUCLEAN, 1);
        var taking = Task.Run(() => (handOff.Take(TimeSpan.FromSeconds(10), CancellationToken.None, out var late), late));
        await Task.Delay(50);
        handOff.Post(ev);
        var (item, late) = await taking.WaitAsync(Patience);
        Assert.False(late);
        Assert.Same(ev, item!.Value.Event);

        handOff.Complete();
        Assert.Null(handOff.Take(TimeSpan.FromSeconds(10), CancellationToken.None, out timedOut));
        Assert.False(timedOut); // completed, not timed out
    }

    /// <summary>What an event thread's take returned, on a thread of its own.</summary>
    private sealed record EventThreadTake(HandOffItem? Item, bool Read, Exception? Failure);

    /// <summary>Starts an event thread's take (one that may be handed the reading) and returns once it sleeps.</summary>
    private static Task<EventThreadTake> SleepingEventThread(EventHandOff handOff, EventThreadWake own, CancellationToken cancel, TimeSpan? timeout = null)
    {
        var taking = Task.Factory.StartNew(() =>
        {
            try
            {
                var item = handOff.Take(timeout ?? Timeout.InfiniteTimeSpan, cancel, own, canRead: true, out _, out var read);
                return new EventThreadTake(item, read, null);
            }
            catch (Exception e)
            {
                return new EventThreadTake(null, false, e);
            }
        }, TaskCreationOptions.LongRunning);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!handOff.TakerSleeps && !taking.IsCompleted && clock.Elapsed < Patience)
            Thread.Sleep(1);
        Assert.True(handOff.TakerSleeps, "the event thread never went to sleep");
        return taking;
    }

    [Fact]
    public async Task The_read_loop_hands_the_reading_to_a_sleeping_event_thread_and_decodes_its_own_batch()
    {
        using var handOff = new EventHandOff(capacity: 4);
        using var asleep = new EventThreadWake();
        var sleeper = SleepingEventThread(handOff, asleep, CancellationToken.None);

        // The batch's posts leave it asleep: the reader decides once the batch is read.
        var first = Queued(Ext4(), EUCLEAN, 1);
        var second = Queued(Ext4(), EIO, 2);
        handOff.Post(first, deferWake: true);
        handOff.Post(second, deferWake: true);
        await Task.Delay(50);
        Assert.False(sleeper.IsCompleted);

        Assert.True(handOff.EndReads(handOver: true));
        var woken = await sleeper.WaitAsync(Patience);
        Assert.Equal(new EventThreadTake(null, true, null), woken);
        // It took nothing: the batch is the reader's, now the decoder, to take in order.
        Assert.Equal(2, handOff.Count);
        using var reader = new EventThreadWake();
        Assert.Same(first, handOff.Take(TimeSpan.Zero, CancellationToken.None, reader, canRead: true, out _, out var read)?.Event);
        Assert.False(read);
        Assert.Same(second, handOff.Take(TimeSpan.Zero, CancellationToken.None, reader, canRead: true, out _, out read)?.Event);
        Assert.False(read);
    }

    [Fact]
    public async Task A_taker_that_cannot_read_is_woken_to_take_the_batch_instead()
    {
        using var handOff = new EventHandOff(capacity: 4);
        using var timeout = new CancellationTokenSource(Patience);
        var taking = handOff.TakeEventAsync(timeout.Token).AsTask();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!handOff.TakerSleeps && clock.Elapsed < Patience)
            await Task.Delay(1);

        var ev = Queued(Ext4(), EUCLEAN, 1);
        handOff.Post(ev, deferWake: true);
        await Task.Delay(50);
        Assert.False(taking.IsCompleted);
        Assert.False(handOff.EndReads(handOver: true));
        Assert.Same(ev, await taking.WaitAsync(Patience));
        // Nothing more was posted since: a second end of reads wakes nobody and hands nothing over.
        Assert.False(handOff.EndReads(handOver: true));
    }

    [Fact]
    public async Task A_sleeping_event_thread_is_woken_to_decode_when_the_reader_may_not_hand_over()
    {
        using var handOff = new EventHandOff(capacity: 4);
        using var asleep = new EventThreadWake();
        var sleeper = SleepingEventThread(handOff, asleep, CancellationToken.None);
        var ev = Queued(Ext4(), EUCLEAN, 1);
        handOff.Post(ev, deferWake: true);

        Assert.False(handOff.EndReads(handOver: false));
        Assert.Equal(new EventThreadTake(new HandOffItem(ev, null), false, null), await sleeper.WaitAsync(Patience));
    }

    [Fact]
    public void A_busy_decoder_is_not_handed_the_reading_and_finds_the_batch_on_its_next_take()
    {
        using var handOff = new EventHandOff(capacity: 4);
        var ev = Queued(Ext4(), EUCLEAN, 1);
        handOff.Post(ev, deferWake: true);

        Assert.False(handOff.EndReads(handOver: true));
        using var decoder = new EventThreadWake();
        Assert.Same(ev, handOff.Take(TimeSpan.Zero, CancellationToken.None, decoder, canRead: true, out var timedOut, out var read)?.Event);
        Assert.False(timedOut || read);
    }

    [Fact]
    public async Task An_event_thread_handed_the_reading_reads_even_when_stopped_in_the_same_instant()
    {
        // The reader that handed the reading over decodes by then: the thread it woke must not stop instead.
        using var handOff = new EventHandOff(capacity: 4);
        using var stop = new CancellationTokenSource();
        using var asleep = new EventThreadWake();
        var sleeper = SleepingEventThread(handOff, asleep, stop.Token);
        handOff.Post(Queued(Ext4(), EUCLEAN, 1), deferWake: true);

        Assert.True(handOff.EndReads(handOver: true));
        stop.Cancel();
        Assert.Equal(new EventThreadTake(null, true, null), await sleeper.WaitAsync(Patience));

        // The decoder (the former reader), stopped, takes what is there and then throws rather than sleep.
        using var decoder = new EventThreadWake();
        Assert.NotNull(handOff.Take(Timeout.InfiniteTimeSpan, stop.Token, decoder, canRead: true, out _, out _));
        Assert.Throws<OperationCanceledException>(() => handOff.Take(Timeout.InfiniteTimeSpan, stop.Token, decoder, canRead: true, out _, out _));
    }

    [Fact]
    public async Task An_event_thread_whose_take_timed_out_is_not_handed_the_reading()
    {
        // Its timeout means work of the decoder's own (a correlation expiring): it is no longer asleep.
        using var handOff = new EventHandOff(capacity: 4);
        using var asleep = new EventThreadWake();
        var sleeper = SleepingEventThread(handOff, asleep, CancellationToken.None, TimeSpan.FromMilliseconds(100));
        Assert.Equal(new EventThreadTake(null, false, null), await sleeper.WaitAsync(Patience));
        Assert.False(handOff.TakerSleeps);

        handOff.Post(Queued(Ext4(), EUCLEAN, 1), deferWake: true);
        Assert.False(handOff.EndReads(handOver: true));
        Assert.Equal(1, handOff.Count);
    }

    [Fact]
    public async Task Take_HonoursCancellation()
    {
        using var handOff = new EventHandOff(capacity: 4);
        using var cancel = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));

        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await handOff.TakeEventAsync(cancel.Token));
    }

    [Fact]
    public void Capacity_MustBePositive()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new EventHandOff(0));
    }

    [Fact]
    public async Task Post_NeverBlocksWithoutAConsumer_AndCountsAddUp()
    {
        const int capacity = 16, events = 100_000;
        var superblocks = new[] { Ext4(), Xfs(), OtherExt4() };
        using var handOff = new EventHandOff(capacity);
        ulong posted = 0;

        // No consumer runs while posting: Post must return every time (bounded by a generous timeout).
        await Task.Run(() =>
        {
            for (var i = 0; i < events; i++)
            {
                var count = (uint)(i % 7 + 1);
                posted += count;
                handOff.Post(Queued(superblocks[i % superblocks.Length], i % 3 == 0 ? EIO : EUCLEAN, count));
            }
        }).WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Equal(events, handOff.Posted);
        Assert.InRange(handOff.Count, 1, capacity + superblocks.Length);
        Assert.InRange(handOff.MaxDepth, 1, capacity + superblocks.Length);

        var taken = await CompleteAndDrain(handOff);

        Assert.InRange(taken.Count, 1, capacity + superblocks.Length);
        Assert.Equal(posted, TotalCount(taken));
        Assert.Equal(events, taken.Sum(e => e.KernelEvents));
        // Per-errno tallies of folded events add up to their counts.
        Assert.All(taken.Where(e => e.FoldedErrnos is not null), e => Assert.Equal((ulong)e.Count, e.FoldedErrnos!.Values.Aggregate(0ul, (s, v) => s + v)));
        Assert.Equal(0, handOff.Count);
    }

    [Fact]
    public async Task FoldedCounts_DoNotWrapAround()
    {
        var sb = Ext4();
        using var handOff = new EventHandOff(capacity: 1);
        handOff.Post(Queued(sb, EUCLEAN, 1));              // queued
        handOff.Post(Queued(sb, EUCLEAN, uint.MaxValue));  // folded
        handOff.Post(Queued(sb, EIO, 2));                  // folded on top

        var taken = await CompleteAndDrain(handOff);

        var folded = taken[1];
        Assert.Equal((ulong)uint.MaxValue + 2, folded.FoldedErrnos!.Values.Aggregate(0ul, (s, v) => s + v));
        Assert.Equal((ulong)uint.MaxValue + 2, (ulong)folded.Count);
    }
}

internal static class HandOffTestExtensions
{
    /// <summary>The next item, which these tests expect to be a fanotify event (or the end), taken on a thread of its own as the decode thread would.</summary>
    public static async ValueTask<FsErrorEvent?> TakeEventAsync(this EventHandOff handOff, CancellationToken cancel)
    {
        var item = await Task.Run(() => handOff.Take(cancel));
        if (item is null)
            return null;
        Assert.Null(item.Value.Finding);
        return item.Value.Event;
    }
}
