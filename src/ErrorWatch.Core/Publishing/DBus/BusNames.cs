namespace ErrorWatch.Publishing.DBus;

/// <summary>ErrorWatch's names on the bus (docs/dbus-api.md); the major version is in every one of them.</summary>
public static class BusNames
{
    public const string Service = "io.github.errorwatch.ErrorWatch1";
    public const string RootPath = "/io/github/errorwatch/ErrorWatch1";
    public const string FilesystemsPath = RootPath + "/filesystems";
    public const string ManagerInterface = Service + ".Manager";
    public const string FilesystemInterface = Service + ".Filesystem";

    public const string NoSuchReport = Service + ".Error.NoSuchReport";
    public const string AccessDenied = "org.freedesktop.DBus.Error.AccessDenied";
    public const string InvalidArgs = "org.freedesktop.DBus.Error.InvalidArgs";
    /// <summary>Too many authorization checks waiting for polkit (the caller's own or all together).</summary>
    public const string LimitsExceeded = "org.freedesktop.DBus.Error.LimitsExceeded";

    /// <summary>polkit actions (deploy/polkit/io.github.errorwatch.ErrorWatch1.policy).</summary>
    public const string AcknowledgeAction = Service + ".acknowledge";
    public const string RescanAction = Service + ".rescan";
    public const string ReadPathsAction = Service + ".read-paths";
}

public sealed record BusOptions
{
    /// <summary>"system" (honours DBUS_SYSTEM_BUS_ADDRESS), "none", or a bus address.</summary>
    public string Bus { get; init; } = "system";
    /// <summary>Put file paths in ReportAdded signals, which every local user receives.</summary>
    public bool SignalPaths { get; init; }
    /// <summary>ReportAdded signals waiting for the bus thread beyond which signals (never counts) are dropped.</summary>
    public int SignalBacklog { get; init; } = 10_000;
    /// <summary>
    /// The same bound in bytes of the waiting signals' reports, measured as JSON (about 3,000 of them):
    /// what a storm may hold in memory for the bus thread (docs/performance.md, footprint).
    /// </summary>
    public long SignalBacklogBytes { get; init; } = 4L << 20;
    /// <summary>How many polkit checks may wait at once and for how long (fixed in the daemon; tests shorten them).</summary>
    public AuthorizationLimits Authorization { get; init; } = new();
}
