using ErrorWatch.Bus;
using Serilog;

namespace ErrorWatch.Cli.Clients;

/// <summary>One desktop notification about one filesystem, ready to send.</summary>
public sealed record DesktopNotification(string Key, string Summary, string Body, bool Critical, uint ReplacesId)
{
    /// <summary>Events that put data at risk: the notification is critical and stays until dismissed.</summary>
    public static bool IsCritical(string reportEvent) => reportEvent is "corruption" or "shutdown" or "readonly";

    /// <summary>"Filesystem errors on /srv (ext4 /dev/sdb1)" with the report's summary, or "N more errors on ..." for a follow-up.</summary>
    public static DesktopNotification For(ThrottledNotification<AddedReport> n)
    {
        var r = n.Latest;
        var mountpoint = r.Mountpoints.FirstOrDefault();
        var where = mountpoint ?? (r.Device.Length > 0 ? r.Device : "a filesystem");
        var what = string.Join(' ', new[] { r.FilesystemType, mountpoint is null ? "" : r.Device }.Where(s => s.Length > 0));
        var subject = what.Length > 0 ? $"{where} ({what})" : where;
        var summary = n.FollowUp
            ? $"{n.Errors} more error{(n.Errors == 1 ? "" : "s")} on {subject}"
            : r.Event switch
            {
                "shutdown" => $"Filesystem shut down: {subject}",
                "readonly" => $"Filesystem now read-only: {subject}",
                _ => $"Filesystem errors on {subject}",
            };
        var body = n.FollowUp ? $"Latest: {r.Summary}"
            : n.Reports > 1 ? $"{n.Errors} errors; latest: {r.Summary}"
            : r.Summary;
        return new DesktopNotification(n.Key, summary, body, n.Urgent, n.ReplacesId);
    }
}

/// <summary>
/// Shows notifications through org.freedesktop.Notifications on the session bus. A missing session
/// bus or notification server is said once and waited out: what could not be shown is kept, one
/// notification per filesystem standing for all of it, and sent as soon as a server answers
/// (reconnection, NameOwnerChanged, or the next notification). Everything runs on its own bus thread.
/// </summary>
public sealed class DesktopNotifier : IDisposable
{
    public const string ServerName = "org.freedesktop.Notifications";
    private const string ServerPath = "/org/freedesktop/Notifications";
    private const string AppName = "ErrorWatch", Icon = "drive-harddisk", DesktopEntry = "errorwatch", Category = "device.error";
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(5);

    /// <summary>Errors that mean "no server now, try again later" (activation failed, none running, no answer).</summary>
    private static readonly HashSet<string> Transient =
    [
        "org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner", "org.freedesktop.DBus.Error.NoReply",
        "org.freedesktop.DBus.Error.Disconnected", "org.freedesktop.DBus.Error.Spawn.Failed", "org.freedesktop.DBus.Error.Spawn.ChildExited",
        "org.freedesktop.DBus.Error.TimedOut", "org.freedesktop.DBus.Error.Timeout",
    ];

    private readonly string _label;
    private readonly ILogger _log;
    private readonly Action<string, uint> _delivered;
    private readonly BusLoop _loop;
    private readonly BusSignalHandler _servers;

    // Loop thread only.
    private readonly Dictionary<string, ThrottledNotification<AddedReport>> _unsent = new(StringComparer.Ordinal);
    private bool? _bodyMarkup;
    private bool _failing;

    /// <param name="sessionBus">"session" or a bus address.</param>
    /// <param name="delivered">Called on the notifier's thread with each notification's key and the server's id for it.</param>
    public DesktopNotifier(string sessionBus, ILogger log, Action<string, uint> delivered)
    {
        _label = ErrorWatchClient.Describe(sessionBus);
        _log = log;
        _delivered = delivered;
        _servers = new BusSignalHandler(OnServerChanged, e => _log.Warning("A NameOwnerChanged signal could not be read: {Reason}", e.Message));
        _loop = new BusLoop("session bus", () => BusConnection.Resolve(sessionBus), OnConnect, () => _bodyMarkup = null, log);
    }

    public void Start() => _loop.Start();

    public void Stop(TimeSpan timeout) => _loop.Stop(timeout);

    /// <summary>Sends <paramref name="notification"/>, or keeps it (folding in an unshown one of the same filesystem).</summary>
    public void Show(ThrottledNotification<AddedReport> notification) => _loop.Post(bus =>
    {
        _unsent[notification.Key] = _unsent.TryGetValue(notification.Key, out var earlier) ? notification.Including(earlier) : notification;
        SendUnsent(bus);
    });

    private void OnConnect(BusConnection bus)
    {
        _servers.MatchOwnerChanges(bus, ServerName);
        // After connecting, not during: a failed Notify is no failed connection.
        _loop.Post(SendUnsent);
    }

    private void OnServerChanged(BusMessage signal)
    {
        signal.ReadString();
        signal.ReadString();
        var newOwner = signal.ReadString();
        _bodyMarkup = null;
        // Posted, not called here: no method calls from inside sd-bus's dispatch.
        if (newOwner.Length > 0)
            _loop.Post(SendUnsent);
    }

    private void SendUnsent(BusConnection? bus)
    {
        if (bus is null)
            return;
        foreach (var unsent in _unsent.Values.ToList())
        {
            var n = DesktopNotification.For(unsent);
            uint id;
            try
            {
                id = Notify(bus, n);
            }
            catch (BusException e) when (e.ErrorName is null || Transient.Contains(e.ErrorName))
            {
                if (!_failing)
                    _log.Warning("Cannot show desktop notifications on {Bus}: {Reason}; they are kept and shown once a notification server answers", _label, e.Message);
                _failing = true;
                return;
            }
            catch (BusException e)
            {
                // The server refused this one: retrying would not change its mind.
                _unsent.Remove(n.Key);
                _log.Warning("The notification server refused a notification ({Summary}): {Reason}", n.Summary, e.Message);
                continue;
            }
            _unsent.Remove(n.Key);
            if (_failing)
                _log.Information("Desktop notifications are shown again on {Bus}", _label);
            _failing = false;
            _delivered(n.Key, id);
        }
    }

    /// <summary>Notify(s app_name, u replaces_id, s app_icon, s summary, s body, as actions, a{sv} hints, i expire_timeout) → u id.</summary>
    private uint Notify(BusConnection bus, DesktopNotification n)
    {
        _bodyMarkup ??= Capabilities(bus).Contains("body-markup");
        var call = bus.NewMethodCall(ServerName, ServerPath, ServerName, "Notify");
        try
        {
            call.Append(AppName);
            call.Append(n.ReplacesId);
            call.Append(Icon);
            call.Append(n.Summary);
            call.Append(_bodyMarkup == true ? EscapeMarkup(n.Body) : n.Body);
            call.AppendStrings([]);
            call.Open('a', "{sv}");
            call.Open('e', "sv");
            call.Append("urgency");
            call.Open('v', "y");
            call.Append((byte)(n.Critical ? 2 : 1)); // critical : normal
            call.Close();
            call.Close();
            call.AppendEntry("desktop-entry", DesktopEntry);
            call.AppendEntry("category", Category);
            call.Close();
            call.Append(n.Critical ? 0 : -1); // critical ones stay until dismissed; others as the server decides
        }
        catch
        {
            BusConnection.Release(call);
            throw;
        }
        var reply = bus.Call(call, CallTimeout);
        try
        {
            return reply.ReadUInt32();
        }
        finally
        {
            BusConnection.Release(reply);
        }
    }

    private static List<string> Capabilities(BusConnection bus)
    {
        var reply = bus.Call(bus.NewMethodCall(ServerName, ServerPath, ServerName, "GetCapabilities"), CallTimeout);
        try
        {
            return reply.ReadValue() is List<object?> list ? [.. list.OfType<string>()] : [];
        }
        finally
        {
            BusConnection.Release(reply);
        }
    }

    /// <summary>The body is markup for servers with "body-markup": report text must not be taken for tags.</summary>
    public static string EscapeMarkup(string text) =>
        text.Replace("&", "&amp;", StringComparison.Ordinal).Replace("<", "&lt;", StringComparison.Ordinal).Replace(">", "&gt;", StringComparison.Ordinal);

    public void Dispose()
    {
        _loop.Dispose();
        _servers.Dispose();
    }
}
