using System.Diagnostics;
using ErrorWatch.Daemon;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.Service;

/// <summary>The watchdog against systemd's protocol (real libsystemd, real socket) and against a counting manager.</summary>
[Collection(NativeEnvironmentCollection.Name)]
public sealed class WatchdogTests
{
    [Fact]
    public void Pings_every_half_watchdog_usec_while_alive_stops_when_the_probe_fails_and_resumes()
    {
        using var socket = new NotifySocket();
        using var env = new NativeEnvironment()
            .Set("NOTIFY_SOCKET", socket.Address)
            .Set("WATCHDOG_USEC", "200000") // WatchdogSec=200ms: a ping every 100 ms
            .Set("WATCHDOG_PID", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var manager = ServiceManager.Detect();
        Assert.Equal(TimeSpan.FromMilliseconds(100), manager.WatchdogInterval);

        var alive = true;
        using var watchdog = new Watchdog(manager, () => Volatile.Read(ref alive));
        Assert.True(watchdog.Start());

        var pings = socket.ReceiveFor(TimeSpan.FromMilliseconds(1050));
        Assert.All(pings, p => Assert.Equal("WATCHDOG=1", p.Message));
        Assert.InRange(pings.Count, 7, 14); // one at start, then every 100 ms: 11 on an idle machine
        var gaps = pings.Zip(pings.Skip(1), (a, b) => (b.At - a.At).TotalMilliseconds).ToList();
        Assert.InRange(gaps.Average(), 75, 140);

        // A hung loop: no pings, so systemd would restart us after WatchdogSec.
        Volatile.Write(ref alive, false);
        Thread.Sleep(150); // at most one ping was already on its way
        socket.Drain();
        Assert.Empty(socket.ReceiveFor(TimeSpan.FromMilliseconds(500)));
        Assert.True(watchdog.Withheld >= 4, $"withheld {watchdog.Withheld}");

        Volatile.Write(ref alive, true);
        Assert.Equal("WATCHDOG=1", socket.Receive(TimeSpan.FromMilliseconds(500)));

        var clock = Stopwatch.StartNew();
        watchdog.Stop();
        Assert.True(clock.Elapsed < TimeSpan.FromMilliseconds(500), $"Stop took {clock.Elapsed}");
        Assert.False(watchdog.IsRunning);
        socket.Drain();
        Assert.Empty(socket.ReceiveFor(TimeSpan.FromMilliseconds(300)));
    }

    [Fact]
    public void Without_a_watchdog_interval_start_does_nothing()
    {
        var manager = new CountingManager(null);
        using var watchdog = new Watchdog(manager, () => true);
        Assert.False(watchdog.Start());
        Assert.False(watchdog.IsRunning);
        Thread.Sleep(50);
        Assert.Equal(0, manager.Pings);
        watchdog.Stop(); // harmless
    }

    [Fact]
    public void A_probe_that_throws_withholds_the_ping_and_the_watchdog_keeps_running()
    {
        var manager = new CountingManager(TimeSpan.FromMilliseconds(20));
        var calls = 0;
        using var watchdog = new Watchdog(manager, () => Interlocked.Increment(ref calls) % 2 == 0 ? true : throw new InvalidOperationException("decode loop gone"));
        watchdog.Start();
        SpinWait.SpinUntil(() => Volatile.Read(ref calls) >= 10, TimeSpan.FromSeconds(5));
        watchdog.Stop();
        Assert.True(manager.Pings >= 4, $"pings {manager.Pings}");
        Assert.True(watchdog.Withheld >= 4, $"withheld {watchdog.Withheld}");
        Assert.Equal(watchdog.Pings, manager.Pings);
    }

    [Fact]
    public void Stop_is_prompt_idempotent_and_final()
    {
        var manager = new CountingManager(TimeSpan.FromHours(1));
        var watchdog = new Watchdog(manager, () => true);
        Assert.True(watchdog.Start());
        Assert.True(SpinWait.SpinUntil(() => manager.Pings == 1, TimeSpan.FromSeconds(5)), "pings at once on start");
        var clock = Stopwatch.StartNew();
        watchdog.Stop();
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), "does not wait out the hour");
        watchdog.Stop();
        watchdog.Dispose();
        Assert.False(watchdog.Start());
        Assert.Equal(1, manager.Pings);
    }

    [Fact]
    public void The_interval_must_be_positive() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new Watchdog(new CountingManager(null), () => true, interval: TimeSpan.Zero));

    [Fact]
    public void Heartbeats_are_alive_while_waiting_or_recently_busy_and_dead_when_stalled()
    {
        var reader = new LoopHeartbeat("read loop");
        var decoder = new LoopHeartbeat("decode loop");
        var probe = LoopHeartbeat.AllAlive(TimeSpan.FromMilliseconds(100), reader, decoder);
        reader.Waiting();
        decoder.Progress();
        Assert.True(probe());

        Thread.Sleep(150);
        Assert.True(reader.IsAlive(TimeSpan.FromMilliseconds(100)), "an idle loop waiting for input is alive however long it waits");
        Assert.False(decoder.IsAlive(TimeSpan.FromMilliseconds(100)), "a busy loop that made no progress is stalled");
        Assert.False(probe());

        decoder.Waiting();
        Assert.True(probe());
        reader.Progress();
        Assert.False(reader.IsWaiting);
        Assert.True(probe());
    }

    private sealed class CountingManager(TimeSpan? interval) : IServiceManager
    {
        private long _pings;

        public long Pings => Interlocked.Read(ref _pings);
        public bool IsActive => true;
        public TimeSpan? WatchdogInterval => interval;
        public void Ready(string status) { }
        public void Status(string status) { }
        public void Reloading() { }
        public void Stopping() { }
        public void WatchdogPing() => Interlocked.Increment(ref _pings);
    }
}
