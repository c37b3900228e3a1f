using ErrorWatch.Bus;
using ErrorWatch.Interop;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Reports;
using ErrorWatch.Publishing;

namespace ErrorWatch.Cli.Clients;

/// <summary>
/// The client commands cannot reach ErrorWatch: the bus is unreachable, or nobody owns the service
/// name on it. The message says which, naming the bus; the commands exit with <see cref="ExitCode"/>.
/// </summary>
public sealed class ServiceUnavailableException(string message) : Exception(message)
{
    public const int ExitCode = 3;
}

/// <summary>The Manager object's properties (io.github.errorwatch.ErrorWatch1.Manager).</summary>
public sealed record ServiceStatus(string Version, bool KernelSupportsFsError, uint WatchedFilesystems, ulong ReportCount, string LastReportId);

/// <summary>One Filesystem object (io.github.errorwatch.ErrorWatch1.Filesystem) from GetManagedObjects.</summary>
public sealed record FilesystemStatus(
    string ObjectPath, string Device, string Uuid, string Type, IReadOnlyList<string> Mountpoints, uint Health,
    ulong ErrorCount, DateTimeOffset? FirstErrorTime, DateTimeOffset? LastErrorTime, string LastReportId)
{
    /// <summary>The word for <see cref="Health"/>, as status prints it.</summary>
    public string HealthWord => HealthName(Health);

    public static string HealthName(uint health) => (FilesystemHealth)health switch
    {
        FilesystemHealth.Ok => "ok",
        FilesystemHealth.Errors => "errors",
        FilesystemHealth.ReadOnly => "read-only",
        FilesystemHealth.ShutDown => "shut down",
        _ => $"unknown ({health})",
    };
}

/// <summary>
/// ErrorWatch's D-Bus API seen from the other side (docs/dbus-api.md): the Manager's properties,
/// the Filesystem objects, stored reports. Synchronous calls on one connection, from the thread
/// that owns it: its own (<see cref="Connect"/>) or a <see cref="BusLoop"/>'s (the constructor).
/// </summary>
public sealed class ErrorWatchClient : IDisposable
{
    private const string DBusName = "org.freedesktop.DBus", DBusPath = "/org/freedesktop/DBus";
    private const string Properties = "org.freedesktop.DBus.Properties";
    private const string ObjectManager = "org.freedesktop.DBus.ObjectManager";
    private const string NameHasNoOwner = "org.freedesktop.DBus.Error.NameHasNoOwner";

    public static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    private readonly BusConnection _bus;
    private readonly bool _owned;

    /// <summary>A client on a connection someone else owns and closes (a <see cref="BusLoop"/>'s).</summary>
    public ErrorWatchClient(BusConnection bus, string busLabel) : this(bus, busLabel, owned: false)
    {
    }

    private ErrorWatchClient(BusConnection bus, string busLabel, bool owned)
    {
        _bus = bus;
        BusLabel = busLabel;
        _owned = owned;
    }

    /// <summary>The bus in words for messages: "the system bus", "the session bus", or its address.</summary>
    public string BusLabel { get; }

    /// <summary>"system", "session" or an address, in words for messages.</summary>
    public static string Describe(string bus) => bus switch
    {
        "system" => "the system bus",
        "session" or "user" => "the session bus",
        _ => bus,
    };

    /// <summary>
    /// Connects to <paramref name="bus"/> ("system", "session" or an address) and makes sure the bus
    /// answers; <see cref="ServiceUnavailableException"/> names the address and errno when it does not.
    /// </summary>
    public static ErrorWatchClient Connect(string bus)
    {
        var label = Describe(bus);
        var address = BusConnection.Resolve(bus) ?? throw new ServiceUnavailableException(
            $"no address known for {label} (DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR are unset)");
        BusConnection connection;
        try
        {
            connection = BusConnection.Connect(address, "errorwatch client");
        }
        catch (BusException e)
        {
            throw Unreachable(label, address, e.Errno);
        }
        var client = new ErrorWatchClient(connection, label, owned: true);
        try
        {
            // The connection is made lazily; the first call is where an unusable bus shows.
            client.Call(DBusName, DBusPath, DBusName, "GetId", _ => { }, reply => reply.ReadString());
        }
        catch (BusException e) when (e.ErrorName is null)
        {
            client.Dispose();
            throw Unreachable(label, address, e.Errno);
        }
        return client;
    }

    private static ServiceUnavailableException Unreachable(string label, string address, int errno)
    {
        ErrnoTable.TryGet(errno, out var name, out var text);
        var where = label == address ? address : $"{label} at {address}";
        return new ServiceUnavailableException($"cannot connect to {where}: {name} ({text})");
    }

    /// <summary>The unique name owning <paramref name="name"/>, or null when nobody does.</summary>
    public string? NameOwner(string name)
    {
        try
        {
            return Call(DBusName, DBusPath, DBusName, "GetNameOwner", m => m.Append(name), reply => reply.ReadString());
        }
        catch (BusException e) when (e.ErrorName == NameHasNoOwner)
        {
            return null;
        }
    }

    /// <summary>The service's unique name; <see cref="ServiceUnavailableException"/> when it is not running.</summary>
    public string RequireService() =>
        NameOwner(BusNames.Service) ?? throw new ServiceUnavailableException(NotRunning(BusLabel));

    public static string NotRunning(string busLabel) => $"ErrorWatch is not running on {busLabel} ({BusNames.Service} has no owner)";

    public ServiceStatus GetStatus()
    {
        var all = Call(BusNames.Service, BusNames.RootPath, Properties, "GetAll", m => m.Append(BusNames.ManagerInterface), Dictionary);
        return new ServiceStatus(
            Text(all, "Version"),
            all.TryGetValue("KernelSupportsFsError", out var k) && k is true,
            all.TryGetValue("WatchedFilesystems", out var w) && w is uint watched ? watched : 0,
            all.TryGetValue("ReportCount", out var c) && c is ulong count ? count : 0,
            Text(all, "LastReportId"));
    }

    /// <summary>Every Filesystem object, sorted by device.</summary>
    public IReadOnlyList<FilesystemStatus> GetFilesystems()
    {
        var objects = Call(BusNames.Service, BusNames.RootPath, ObjectManager, "GetManagedObjects", _ => { }, Dictionary);
        var found = new List<FilesystemStatus>();
        foreach (var (path, interfaces) in objects)
        {
            if (interfaces is not IReadOnlyDictionary<string, object?> byInterface
                || !byInterface.TryGetValue(BusNames.FilesystemInterface, out var value) || value is not IReadOnlyDictionary<string, object?> p)
                continue;
            found.Add(new FilesystemStatus(
                path, Text(p, "Device"), Text(p, "Uuid"), Text(p, "Type"),
                p.TryGetValue("Mountpoints", out var mounts) && mounts is List<object?> list ? [.. list.OfType<string>()] : [],
                p.TryGetValue("Health", out var h) && h is uint health ? health : 0,
                p.TryGetValue("ErrorCount", out var e) && e is ulong errors ? errors : 0,
                Time(p, "FirstErrorTime"), Time(p, "LastErrorTime"), Text(p, "LastReportId")));
        }
        found.Sort((a, b) => string.CompareOrdinal(a.Device, b.Device));
        return found;
    }

    /// <summary>Stored reports from <paramref name="sinceUsec"/> (µs since the epoch) on, oldest first (max 0: the service's default).</summary>
    public IReadOnlyList<IReadOnlyDictionary<string, object?>> GetReports(ulong sinceUsec, uint max) =>
        Call(BusNames.Service, BusNames.RootPath, BusNames.ManagerInterface, "GetReports",
            m => { m.Append(sinceUsec); m.Append(max); },
            reply => reply.ReadValue() is List<object?> list ? list.OfType<IReadOnlyDictionary<string, object?>>().ToList() : []);

    /// <summary>One stored report by id, or null when the service has no such report.</summary>
    public IReadOnlyDictionary<string, object?>? GetReport(string id)
    {
        try
        {
            return Call(BusNames.Service, BusNames.RootPath, BusNames.ManagerInterface, "GetReport", m => m.Append(id), Dictionary);
        }
        catch (BusException e) when (e.ErrorName == BusNames.NoSuchReport)
        {
            return null;
        }
    }

    private T Call<T>(string destination, string path, string iface, string member, Action<BusMessage> args, Func<BusMessage, T> read)
    {
        var call = _bus.NewMethodCall(destination, path, iface, member);
        try
        {
            args(call);
        }
        catch
        {
            BusConnection.Release(call);
            throw;
        }
        var reply = _bus.Call(call, CallTimeout);
        try
        {
            return read(reply);
        }
        finally
        {
            BusConnection.Release(reply);
        }
    }

    private static IReadOnlyDictionary<string, object?> Dictionary(BusMessage reply) =>
        reply.ReadValue() as IReadOnlyDictionary<string, object?> ?? new Dictionary<string, object?>();

    private static string Text(IReadOnlyDictionary<string, object?> d, string key) => d.TryGetValue(key, out var v) && v is string s ? s : "";

    /// <summary>µs since the epoch; 0 (none) and values beyond year 9999 are null.</summary>
    private static DateTimeOffset? Time(IReadOnlyDictionary<string, object?> d, string key) =>
        d.TryGetValue(key, out var v) && v is ulong us && us > 0 && us < MaxMicroseconds ? DateTimeOffset.UnixEpoch.AddTicks((long)us * 10) : null;

    private static readonly ulong MaxMicroseconds = (ulong)((DateTimeOffset.MaxValue - DateTimeOffset.UnixEpoch).Ticks / 10);

    public void Dispose()
    {
        if (_owned)
            _bus.Dispose();
    }
}
