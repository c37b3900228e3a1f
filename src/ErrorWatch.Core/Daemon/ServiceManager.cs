using Microsoft.Extensions.Hosting.Systemd;
using Serilog;

namespace ErrorWatch.Daemon;

/// <summary>
/// What the daemon tells the service manager about its life (sd_notify(3) states). Implementations
/// never throw: a service manager that cannot be told is a log line, not a reason to stop watching.
/// </summary>
public interface IServiceManager
{
    /// <summary>True when a service manager is listening ($NOTIFY_SOCKET set and libsystemd loaded).</summary>
    bool IsActive { get; }

    /// <summary>How often <see cref="WatchdogPing"/> is due: half of WatchdogSec=, or null when no watchdog is armed.</summary>
    TimeSpan? WatchdogInterval { get; }

    /// <summary>READY=1 with a one-line STATUS=: start-up is done, or a reload announced by <see cref="Reloading"/> is.</summary>
    void Ready(string status);

    /// <summary>STATUS=: one line shown by systemctl status.</summary>
    void Status(string status);

    /// <summary>RELOADING=1. systemd keeps the unit "reloading" until the next <see cref="Ready"/>, so always follow it with one.</summary>
    void Reloading();

    /// <summary>STOPPING=1: shutdown has begun.</summary>
    void Stopping();

    /// <summary>WATCHDOG=1: the pipeline is alive. Sent by <see cref="Watchdog"/>, not by hand.</summary>
    void WatchdogPing();
}

/// <summary>Chooses the service manager the process runs under.</summary>
public static class ServiceManager
{
    /// <summary>
    /// <see cref="SystemdServiceManager"/> when $NOTIFY_SOCKET is set, whoever the parent process is
    /// (Microsoft.Extensions.Hosting.Systemd's <see cref="SystemdNotifier"/> reads it), else
    /// <see cref="NoServiceManager"/>.
    /// </summary>
    public static IServiceManager Detect(ILogger? log = null) => Detect(new SystemdNotifier(), log);

    public static IServiceManager Detect(ISystemdNotifier notifier, ILogger? log = null) =>
        notifier.IsEnabled
            ? new SystemdServiceManager(notifier, SystemdServiceManager.WatchdogIntervalFromEnvironment(log), log)
            : new NoServiceManager();
}

/// <summary>Not under a service manager (a terminal, a container without systemd): every notification is dropped.</summary>
public sealed class NoServiceManager : IServiceManager
{
    public NoServiceManager(string reason = "$NOTIFY_SOCKET is not set") => Reason = reason;

    /// <summary>Why there is no service manager to tell, for the start-up log.</summary>
    public string Reason { get; }

    public bool IsActive => false;
    public TimeSpan? WatchdogInterval => null;
    public void Ready(string status) { }
    public void Status(string status) { }
    public void Reloading() { }
    public void Stopping() { }
    public void WatchdogPing() { }
}

/// <summary>
/// systemd through Microsoft.Extensions.Hosting.Systemd's <see cref="ISystemdNotifier"/> (the
/// notify socket's datagrams, abstract names included): the same notifier the host's
/// SystemdLifetime sends READY=1 and STOPPING=1 with. Safe from any thread (a socket per message).
/// </summary>
public sealed class SystemdServiceManager : IServiceManager
{
    // STATUS= must be one line; systemctl shows about one terminal row of it, and a datagram holds 4096 bytes.
    private const int MaxStatusChars = 1024;

    private readonly ISystemdNotifier _notifier;
    private readonly ILogger? _log;
    private int _failures;

    public SystemdServiceManager(ISystemdNotifier notifier, TimeSpan? watchdogInterval, ILogger? log)
    {
        _notifier = notifier;
        _log = log;
        WatchdogInterval = watchdogInterval;
    }

    public bool IsActive => true;
    public TimeSpan? WatchdogInterval { get; }

    /// <summary>Messages the notify socket did not take, for tests and diagnostics.</summary>
    public int Failures => Volatile.Read(ref _failures);

    /// <summary>
    /// Half of $WATCHDOG_USEC when the watchdog is meant for this process ($WATCHDOG_PID unset or ours),
    /// as sd_watchdog_enabled(3) decides it; null when none is armed or the variables are malformed.
    /// </summary>
    public static TimeSpan? WatchdogIntervalFromEnvironment(ILogger? log)
    {
        var usec = Environment.GetEnvironmentVariable("WATCHDOG_USEC");
        if (string.IsNullOrEmpty(usec))
            return null;
        var pid = Environment.GetEnvironmentVariable("WATCHDOG_PID");
        if (!ulong.TryParse(usec, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var microseconds) || microseconds == 0
            || !string.IsNullOrEmpty(pid) && !int.TryParse(pid, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out _))
        {
            log?.Warning("Watchdog not armed: $WATCHDOG_USEC/$WATCHDOG_PID are malformed (EINVAL)");
            return null;
        }
        // A watchdog armed for another process (our parent's) is not ours to feed.
        if (!string.IsNullOrEmpty(pid) && int.Parse(pid, System.Globalization.CultureInfo.InvariantCulture) != Environment.ProcessId)
            return null;
        return TimeSpan.FromMicroseconds(microseconds / 2.0);
    }

    public void Ready(string status) => Send("READY=1\nSTATUS=" + OneLine(status));

    public void Status(string status) => Send("STATUS=" + OneLine(status));

    // systemd 252 needs nothing more than RELOADING=1 (Type=notify-reload and its MONOTONIC_USEC= came in 253).
    public void Reloading() => Send("RELOADING=1");

    public void Stopping() => Send("STOPPING=1");

    public void WatchdogPing() => Send("WATCHDOG=1");

    private void Send(string state)
    {
        try
        {
            _notifier.Notify(new ServiceState(state));
            return;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or ObjectDisposedException)
        {
            // The first failure is news; a notify socket that stays broken would otherwise log every watchdog tick.
            if (Interlocked.Increment(ref _failures) == 1)
                _log?.Warning("Notifying the service manager failed ({Reason}) sending {State}", e.Message, state.Replace('\n', ' '));
            else
                _log?.Debug("Notifying the service manager failed ({Reason}) sending {State}", e.Message, state.Replace('\n', ' '));
        }
    }

    internal static string OneLine(string status)
    {
        var cut = status.Length > MaxStatusChars ? MaxStatusChars - (char.IsHighSurrogate(status[MaxStatusChars - 1]) ? 1 : 0) : status.Length;
        var text = status[..cut];
        // A newline would start a new VAR= line; a NUL would end the C string early.
        return string.Create(text.Length, text, static (span, s) =>
        {
            for (var i = 0; i < s.Length; i++)
                span[i] = char.IsControl(s[i]) ? ' ' : s[i];
        });
    }
}
