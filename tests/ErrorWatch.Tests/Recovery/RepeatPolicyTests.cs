using ErrorWatch.Recovery;
using ErrorWatch.Tests.Journal;

namespace ErrorWatch.Tests.Recovery;

/// <summary>
/// Repeat policies (always, once, interval, diminishing) as documented in docs/hooks.md, on a clock
/// the test moves (TimeProvider), with a runner that records instead of running processes.
/// </summary>
public sealed class RepeatPolicyTests : IDisposable
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(10);

    private readonly HookDirectory _dir = new();
    private readonly ManualTimeProvider _clock = new(T0);
    private readonly RecordingRunner _runner;
    private readonly List<HookDispatcher> _dispatchers = new();
    private int _reports;

    public RepeatPolicyTests() => _runner = new RecordingRunner { Clock = _clock };

    public void Dispose()
    {
        foreach (var d in _dispatchers)
            d.Dispose();
        _dir.Dispose();
    }

    private HookDispatcher Dispatcher(string repeat, HookLedger? ledger = null, int max = 4, params string[] hooks)
    {
        var names = hooks.Length == 0 ? ["rule"] : hooks;
        var catalog = new HookCatalog(_dir.Settings([.. names.Select(n => HookReports.Rule(n, repeat))]), HookReports.Quiet);
        var dispatcher = new HookDispatcher(catalog, _runner, ledger, max, _clock, HookReports.Quiet);
        _dispatchers.Add(dispatcher);
        dispatcher.Start();
        return dispatcher;
    }

    private void Offer(HookDispatcher d, ulong count = 1, Guid? uuid = null) =>
        d.Offer(HookReports.Corruption($"report-{++_reports}", _clock.GetUtcNow(), count, uuid));

    private List<HookRun> Started => _runner.Runs.Select(r => r.Run).ToList();

    private void Settle(HookDispatcher d)
    {
        d.Wake();
        Assert.True(d.WaitIdle(Idle), "the dispatcher did not settle");
    }

    [Theory]
    [InlineData("always", "always")]
    [InlineData("once", "once")]
    [InlineData("interval=1h", "interval=1h")]
    [InlineData("interval=90min", "interval=1h 30min")]
    [InlineData("diminishing", "diminishing")]
    [InlineData("diminishing=1d", "diminishing=1d")]
    public void Policies_parse_and_print_as_they_are_written(string text, string printed)
    {
        Assert.True(RepeatPolicy.TryParse(text, out var policy, out var error), error);
        Assert.Equal(printed, policy.ToString());
        Assert.True(RepeatPolicy.TryParse(printed, out var again, out _));
        Assert.Equal(policy, again);
    }

    [Theory]
    [InlineData("sometimes", "is not one of always, once, interval=DURATION, diminishing[=DURATION]")]
    [InlineData("interval", "interval needs a duration")]
    [InlineData("interval=0", "shorter than 1s")]
    [InlineData("interval=soon", "is not a time span")]
    [InlineData("once=1h", "is not one of")]
    public void Nonsense_is_refused_with_a_reason(string text, string message)
    {
        Assert.False(RepeatPolicy.TryParse(text, out _, out var error));
        Assert.Contains(message, error);
    }

    [Fact]
    public void Diminishing_waits_one_two_four_eight_intervals_after_each_run()
    {
        var policy = RepeatPolicy.DiminishingFrom(TimeSpan.FromHours(1));
        Assert.Equal(DateTimeOffset.MinValue, policy.NextAllowed(0, null));
        Assert.Equal(T0 + TimeSpan.FromHours(1), policy.NextAllowed(1, T0));
        Assert.Equal(T0 + TimeSpan.FromHours(2), policy.NextAllowed(2, T0));
        Assert.Equal(T0 + TimeSpan.FromHours(4), policy.NextAllowed(3, T0));
        Assert.Equal(T0 + TimeSpan.FromHours(8), policy.NextAllowed(4, T0));
        Assert.Equal(DateTimeOffset.MaxValue, RepeatPolicy.DiminishingFrom(TimeSpan.FromDays(3650)).NextAllowed(long.MaxValue, T0)); // no overflow
        Assert.Null(RepeatPolicy.Once.NextAllowed(1, T0));
    }

    [Fact]
    public void Once_runs_once_per_filesystem_and_remembers_it_across_a_restart()
    {
        var ledger = HookLedger.Open(_dir.State, HookReports.Quiet);
        var d = Dispatcher("once", ledger);
        var skipped = 0;
        d.Skipped += (_, _) => Interlocked.Increment(ref skipped);

        Offer(d);
        Settle(d);
        Assert.Single(Started);
        _clock.Advance(TimeSpan.FromDays(30));
        Offer(d);
        Offer(d);
        Settle(d);
        Assert.Single(Started);
        Assert.Equal(2, skipped);

        // Another filesystem has its own once.
        Offer(d, uuid: Guid.NewGuid());
        Settle(d);
        Assert.Equal(2, Started.Count);

        d.Stop(TimeSpan.FromSeconds(2));
        ledger.Dispose();
        using var reopened = HookLedger.Open(_dir.State, HookReports.Quiet);
        var again = Dispatcher("once", reopened);
        Offer(again);
        Settle(again);
        Assert.Equal(2, Started.Count);
    }

    [Fact]
    public void Interval_runs_at_most_once_per_interval_and_folds_what_came_in_between_into_the_run_at_its_end()
    {
        var d = Dispatcher("interval=1h");
        Offer(d, count: 2);
        Settle(d);
        Assert.Single(Started);
        Assert.Equal(2UL, Started[0].ErrorCount);

        _clock.Advance(TimeSpan.FromMinutes(10));
        Offer(d, count: 3);
        var firstHeldBack = _clock.GetUtcNow();
        _clock.Advance(TimeSpan.FromMinutes(10));
        Offer(d, count: 4);
        Settle(d);
        Assert.Single(Started);
        Assert.Equal(1, d.Waiting);

        _clock.Advance(TimeSpan.FromMinutes(39)); // 59 min after the first run
        Settle(d);
        Assert.Single(Started);

        _clock.Advance(TimeSpan.FromMinutes(1));
        Settle(d);
        Assert.Equal(2, Started.Count);
        var second = Started[1];
        Assert.Equal(7UL, second.ErrorCount);
        Assert.Equal(2, second.Reports);
        Assert.Equal(4UL, second.Latest.Count);
        Assert.Equal(3UL, second.PreviousCount);
        Assert.Equal(firstHeldBack, second.FirstTime);
        Assert.Equal(1, second.PreviousRuns);
        Assert.Equal("report-3", second.Latest.ReportId);
        Assert.Equal("report-2", second.FirstReportId);

        // Next one: an hour after the second run started, not after the report.
        _clock.Advance(TimeSpan.FromMinutes(30));
        Offer(d);
        _clock.Advance(TimeSpan.FromMinutes(29));
        Settle(d);
        Assert.Equal(2, Started.Count);
        _clock.Advance(TimeSpan.FromMinutes(1));
        Settle(d);
        Assert.Equal(3, Started.Count);
        Assert.Equal(0, d.Waiting);
        // Every error matched is in exactly one run.
        Assert.Equal(2UL + 3 + 4 + 1, Started.Aggregate(0UL, (s, r) => s + r.ErrorCount));
    }

    [Fact]
    public void Diminishing_runs_after_one_then_two_then_four_intervals_while_errors_keep_coming()
    {
        var d = Dispatcher("diminishing=1h");
        // A report every 15 minutes; at each step, what is due starts before the step's report arrives.
        for (var minute = 0; minute <= 8 * 60; minute += 15)
        {
            Settle(d);
            Offer(d);
            Settle(d);
            _clock.Advance(TimeSpan.FromMinutes(15));
        }
        var runs = _runner.Runs.ToList();
        // t0, then 1 h later, 2 h after that, 4 h after that; the next would be 8 h later (+15 h).
        Assert.Equal([T0, T0.AddHours(1), T0.AddHours(3), T0.AddHours(7)], runs.Select(r => r.At));
        Assert.Equal([0L, 1, 2, 3], runs.Select(r => r.Run.PreviousRuns));
        // Each run stands for every report since the one before: none is lost.
        Assert.Equal([1, 3, 8, 16], runs.Select(r => r.Run.Reports));
        Assert.Equal([T0, T0.AddMinutes(15), T0.AddMinutes(60), T0.AddMinutes(180)], runs.Select(r => r.Run.FirstTime));
        Assert.Equal(1, d.Waiting); // the 5 reports from +7 h on wait for +15 h
    }

    [Fact]
    public void Always_folds_a_storm_into_the_waiting_run_never_runs_a_lane_twice_at_once_and_keeps_the_global_limit()
    {
        _runner.Gate = new SemaphoreSlim(0);
        var d = Dispatcher("always", max: 2, hooks: ["a", "b", "c"]);
        ulong offered = 0;
        for (var i = 0; i < 1000; i++)
        {
            var count = (ulong)(i % 3 + 1);
            offered += count;
            Offer(d, count);
            if (i == 500)
            {
                // Two runs hold both slots; the third hook waits for one.
                Assert.True(SpinWait.SpinUntil(() => _runner.Runs.Count == 2, Idle));
                Assert.Equal(2, d.Running);
                Assert.Equal(3, d.Waiting);
            }
        }
        while (!d.WaitIdle(TimeSpan.FromMilliseconds(20)))
            _runner.Gate.Release(1);
        Assert.Equal(2, _runner.PeakRunning);
        Assert.Equal(1, _runner.PeakPerLane);
        Assert.True(d.PeakRunning <= 2);
        foreach (var hook in new[] { "a", "b", "c" })
        {
            var runs = _runner.Runs.Where(r => r.Hook.Name == hook).Select(r => r.Run).ToList();
            Assert.Equal(offered, runs.Aggregate(0UL, (s, r) => s + r.ErrorCount));
            Assert.Equal(1000, runs.Sum(r => r.Reports));
            Assert.True(runs.Count < 1000, $"{hook}: {runs.Count} runs for 1000 reports: nothing was folded");
        }
    }
}
