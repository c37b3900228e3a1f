using ErrorWatch.Interop;
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
    /// <see cref="SystemdServiceManager"/> when $NOTIFY_SOCKET is set and libsystemd.so.0 loads,
    /// else <see cref="NoServiceManager"/>. Reads the native environment (what libsystemd will read).
    /// </summary>
    public static IServiceManager Detect(ILogger? log = null) =>
        SystemdServiceManager.TryCreate(log, out var reason) is { } systemd
            ? systemd
            : new NoServiceManager(reason);
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
/// systemd through libsystemd's sd_notify(3), the implementation systemd itself maintains (abstract
/// socket names, credentials, message size). Safe from any thread: sd_notify opens a socket per call.
/// </summary>
public sealed unsafe class SystemdServiceManager : IServiceManager
{
    // STATUS= must be one line; systemctl shows about one terminal row of it, and a datagram holds 4096 bytes.
    private const int MaxStatusChars = 1024;

    private readonly ILogger? _log;
    private int _failures;

    private SystemdServiceManager(ILogger? log, TimeSpan? watchdogInterval)
    {
        _log = log;
        WatchdogInterval = watchdogInterval;
    }

    public bool IsActive => true;
    public TimeSpan? WatchdogInterval { get; }

    /// <summary>Messages sd_notify failed to send (negative return), for tests and diagnostics.</summary>
    public int Failures => Volatile.Read(ref _failures);

    /// <summary>
    /// The manager for this process, or null with <paramref name="reason"/> when $NOTIFY_SOCKET is
    /// unset or libsystemd.so.0 cannot be loaded.
    /// </summary>
    public static SystemdServiceManager? TryCreate(ILogger? log, out string reason)
    {
        var socket = Libc.GetEnv("NOTIFY_SOCKET");
        if (socket is null || *socket == 0)
        {
            reason = "$NOTIFY_SOCKET is not set";
            return null;
        }
        ulong usec = 0;
        int enabled;
        try
        {
            enabled = SdDaemon.WatchdogEnabled(0, &usec);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            // systemd itself links libsystemd.so.0, so this is a container or a stripped image: nobody to tell.
            reason = $"$NOTIFY_SOCKET is set but libsystemd.so.0 cannot be used ({e.GetType().Name})";
            log?.Warning("Not notifying the service manager: {Reason}", reason);
            return null;
        }
        TimeSpan? interval = null;
        if (enabled > 0 && usec > 0)
            interval = TimeSpan.FromMicroseconds(usec / 2.0);
        else if (enabled < 0)
            log?.Warning("Watchdog not armed: $WATCHDOG_USEC/$WATCHDOG_PID are malformed ({Errno})", ErrnoTable.Name(-enabled));
        reason = "";
        return new SystemdServiceManager(log, interval);
    }

    public void Ready(string status) => Send("READY=1\nSTATUS=" + OneLine(status));

    public void Status(string status) => Send("STATUS=" + OneLine(status));

    // systemd 252 needs nothing more than RELOADING=1 (Type=notify-reload and its MONOTONIC_USEC= came in 253).
    public void Reloading() => Send("RELOADING=1");

    public void Stopping() => Send("STOPPING=1");

    public void WatchdogPing() => Send("WATCHDOG=1");

    private void Send(string state)
    {
        int rc;
        try
        {
            rc = SdDaemon.Notify(0, state);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            rc = -Libc.ENOSYS;
        }
        if (rc >= 0)
            return;
        // The first failure is news; a notify socket that stays broken would otherwise log every watchdog tick.
        if (Interlocked.Increment(ref _failures) == 1)
            _log?.Warning("sd_notify failed ({Errno}) sending {State}", ErrnoTable.Name(-rc), state.Replace('\n', ' '));
        else
            _log?.Debug("sd_notify failed ({Errno}) sending {State}", ErrnoTable.Name(-rc), state.Replace('\n', ' '));
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
