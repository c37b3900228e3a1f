using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// Mirrors the two calls of &lt;systemd/sd-daemon.h&gt; (libsystemd 252, soname libsystemd.so.0) that a
/// Type=notify service needs. Neither sets errno: both return a negative errno value on failure.
/// Both read $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID with getenv(3) at call time, so they see
/// the environment systemd gave the process, not Environment.SetEnvironmentVariable (which on .NET
/// only changes a managed copy). A host without libsystemd throws DllNotFoundException on the first
/// call: callers treat that as "not under systemd".
/// </summary>
internal static unsafe partial class SdDaemon
{
    private const string Lib = "libsystemd.so.0";

    /// <summary>
    /// int sd_notify(int unset_environment, const char *state): sends <paramref name="state"/>
    /// (newline-separated VAR=VALUE lines, e.g. "READY=1\nSTATUS=...") as one datagram to $NOTIFY_SOCKET.
    /// Returns &gt; 0 when sent, 0 when $NOTIFY_SOCKET is unset, a negative errno on failure.
    /// unset_environment != 0 would remove $NOTIFY_SOCKET afterwards; we always pass 0 because the
    /// watchdog keeps notifying for the life of the process.
    /// </summary>
    [LibraryImport(Lib, EntryPoint = "sd_notify", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Notify(int unsetEnvironment, string state);

    /// <summary>
    /// int sd_watchdog_enabled(int unset_environment, uint64_t *usec): &gt; 0 when the service manager
    /// expects WATCHDOG=1 keep-alives ($WATCHDOG_USEC set and $WATCHDOG_PID unset or equal to getpid()),
    /// with the timeout in µs in *usec; 0 when it does not; a negative errno when the variables are malformed.
    /// </summary>
    [LibraryImport(Lib, EntryPoint = "sd_watchdog_enabled")]
    public static partial int WatchdogEnabled(int unsetEnvironment, ulong* usec);
}
