using ErrorWatch.Daemon;

namespace ErrorWatch.Tests.Service;

/// <summary>Notifications through Microsoft.Extensions.Hosting.Systemd's notifier, received on a notify socket the test binds.</summary>
[Collection(NativeEnvironmentCollection.Name)]
public sealed class SystemdServiceManagerTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(5);

    [Fact]
    public void Managed_environment_changes_do_not_reach_getenv_which_is_why_the_tests_use_setenv()
    {
        var name = $"ERRORWATCH_TEST_{Environment.ProcessId}";
        Environment.SetEnvironmentVariable(name, "managed");
        try
        {
            Assert.Null(NativeEnvironment.Get(name));
            Assert.Equal("managed", Environment.GetEnvironmentVariable(name));
        }
        finally
        {
            Environment.SetEnvironmentVariable(name, null);
        }
    }

    [Fact]
    public void Without_a_notify_socket_there_is_no_service_manager()
    {
        using var env = new NativeEnvironment().Set("NOTIFY_SOCKET", null).Set("WATCHDOG_USEC", null);
        var manager = ServiceManager.Detect();
        var none = Assert.IsType<NoServiceManager>(manager);
        Assert.False(none.IsActive);
        Assert.Null(none.WatchdogInterval);
        Assert.Contains("NOTIFY_SOCKET", none.Reason);
        none.Ready("x"); // dropped, never throws
        none.WatchdogPing();
    }

    [Fact]
    public void Ready_status_reloading_watchdog_and_stopping_arrive_as_sd_notify_datagrams()
    {
        using var socket = new NotifySocket();
        using var env = new NativeEnvironment().Set("NOTIFY_SOCKET", socket.Address).Set("WATCHDOG_USEC", null).Set("WATCHDOG_PID", null);
        var manager = Assert.IsType<SystemdServiceManager>(ServiceManager.Detect());
        Assert.True(manager.IsActive);
        Assert.Null(manager.WatchdogInterval);

        manager.Ready("Watching 3 filesystem(s)");
        Assert.Equal("READY=1\nSTATUS=Watching 3 filesystem(s)", socket.Receive(Wait));
        manager.Status("line one\nline two\0end");
        Assert.Equal("STATUS=line one line two end", socket.Receive(Wait));
        manager.Reloading();
        Assert.Equal("RELOADING=1", socket.Receive(Wait));
        manager.Ready("Reloaded");
        Assert.Equal("READY=1\nSTATUS=Reloaded", socket.Receive(Wait));
        manager.WatchdogPing();
        Assert.Equal("WATCHDOG=1", socket.Receive(Wait));
        manager.Stopping();
        Assert.Equal("STOPPING=1", socket.Receive(Wait));
        Assert.Equal(0, manager.Failures);
    }

    [Fact]
    public void An_abstract_notify_socket_works_too()
    {
        using var socket = new NotifySocket(abstractName: true);
        using var env = new NativeEnvironment().Set("NOTIFY_SOCKET", socket.Address);
        ServiceManager.Detect().Ready("ok");
        Assert.Equal("READY=1\nSTATUS=ok", socket.Receive(Wait));
    }

    [Fact]
    public void A_long_status_is_cut_to_fit_one_datagram()
    {
        using var socket = new NotifySocket();
        using var env = new NativeEnvironment().Set("NOTIFY_SOCKET", socket.Address);
        ServiceManager.Detect().Status(new string('x', 10_000));
        Assert.Equal("STATUS=" + new string('x', 1024), socket.Receive(Wait));
    }

    [Fact]
    public void The_watchdog_interval_is_half_of_watchdog_usec_when_it_is_meant_for_this_process()
    {
        using var socket = new NotifySocket();
        using var env = new NativeEnvironment().Set("NOTIFY_SOCKET", socket.Address).Set("WATCHDOG_USEC", "30000000").Set("WATCHDOG_PID", null);
        Assert.Equal(TimeSpan.FromSeconds(15), ServiceManager.Detect().WatchdogInterval);

        env.Set("WATCHDOG_PID", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(TimeSpan.FromSeconds(15), ServiceManager.Detect().WatchdogInterval);

        // A watchdog armed for another process (e.g. our parent's) is not ours to feed.
        env.Set("WATCHDOG_PID", "1");
        Assert.Null(ServiceManager.Detect().WatchdogInterval);

        env.Set("WATCHDOG_PID", null).Set("WATCHDOG_USEC", "soon");
        Assert.Null(ServiceManager.Detect().WatchdogInterval); // malformed: no watchdog, no exception
    }

    [Fact]
    public void A_notify_socket_nobody_listens_on_is_counted_not_thrown()
    {
        var gone = Path.Combine(Path.GetTempPath(), $"errorwatch-gone-{Guid.NewGuid():N}.sock");
        using var env = new NativeEnvironment().Set("NOTIFY_SOCKET", gone);
        var manager = Assert.IsType<SystemdServiceManager>(ServiceManager.Detect());
        manager.Ready("x");
        manager.WatchdogPing();
        Assert.Equal(2, manager.Failures);
    }
}
