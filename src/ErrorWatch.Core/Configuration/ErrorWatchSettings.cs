using System.Collections.ObjectModel;
using System.Text;
using ErrorWatch.Filesystems;
using Serilog.Events;
using ErrorWatch.Recovery;

namespace ErrorWatch.Configuration;

/// <summary>How new and removed mounts are noticed ([Watch] MountTracking=).</summary>
public enum MountTrackingMode
{
    /// <summary>fanotify FAN_MNT_ATTACH/DETACH where the kernel has them (6.15+), else /proc/self/mountinfo.</summary>
    Auto,
    /// <summary>Always /proc/self/mountinfo.</summary>
    Mountinfo,
}

/// <summary>Whether reports also go to the journal ([Journal] Enabled=).</summary>
public enum JournalMode
{
    /// <summary>When a journal is there to receive entries.</summary>
    Auto,
    Yes,
    No,
}

/// <summary>
/// Everything errorwatch.conf can say, with the defaults that apply when it says nothing.
/// Immutable: lists are read-only views of arrays nobody else holds.
/// </summary>
public sealed record ErrorWatchSettings
{
    public WatchSettings Watch { get; init; } = new();
    public HealthSettings Health { get; init; } = new();
    public StoreSettings Store { get; init; } = new();
    public JournalSettings Journal { get; init; } = new();
    public DBusSettings DBus { get; init; } = new();
    public MetricsSettings Metrics { get; init; } = new();
    public OpenTelemetrySettings OpenTelemetry { get; init; } = new();
    public HooksSettings Hooks { get; init; } = new();
    public LogSettings Log { get; init; } = new();

    /// <summary>The files these settings were read from, in the order read (main file, then drop-ins).</summary>
    public IReadOnlyList<string> Files { get; init; } = ReadOnlyCollection<string>.Empty;

    /// <summary>
    /// The settings as configuration text: one Key=value per line under its [Section], every key of
    /// <see cref="SettingKeys"/> present, the [Hook "NAME"] rules after [Hooks]. Parses back to equal settings.
    /// </summary>
    public string ToConfigurationText()
    {
        var sb = new StringBuilder();
        foreach (var section in SettingKeys.Sections)
        {
            Section(sb, section, SettingKeys.In(section).Select(k => (k.Name, k.Format(this))).ToArray());
            if (section == "Hooks")
            {
                foreach (var rule in Hooks.Rules)
                    Section(sb, $"Hook \"{rule.Name}\"", RuleKeys(rule));
            }
        }
        return sb.ToString();
    }

    public override string ToString() => ToConfigurationText();

    private static void Section(StringBuilder sb, string name, (string Key, string Value)[] keys)
    {
        if (sb.Length > 0)
            sb.Append('\n');
        sb.Append('[').Append(name).Append("]\n");
        foreach (var (key, value) in keys)
            sb.Append(key).Append('=').Append(value).Append('\n');
    }

    /// <summary>A [Hook "NAME"] rule's keys as the configuration writes them (check-config).</summary>
    internal static (string Key, string Value)[] RuleKeys(Recovery.HookRuleSettings rule) =>
    [
        ("Exec", List(rule.Exec)),
        ("Unit", rule.Unit ?? ""),
        ("Filesystems", List(rule.Filesystems)),
        ("Types", List(rule.Types)),
        ("Events", List(rule.Events)),
        ("Errnos", List(rule.Errnos)),
        ("Sources", List(rule.Sources)),
        ("Severities", List(rule.Severities)),
        ("Repeat", rule.Repeat?.ToString() ?? ""),
        ("Timeout", rule.Timeout is { } t ? SystemdValues.FormatTimeSpan(t) : ""),
    ];

    internal static string List(IReadOnlyList<string> items) => string.Join(' ', items.Select(SettingsFile.EscapeListItem));
}

/// <summary>[Watch]: which filesystems, and how mounts are found.</summary>
public sealed record WatchSettings
{
    public static readonly IReadOnlyList<string> DefaultTypes = SettingKeys.Types.Default;

    /// <summary>Only these (mount point, device, major:minor, UUID or label); empty watches every filesystem of <see cref="Types"/>.</summary>
    public IReadOnlyList<string> Filesystems { get; init; } = SettingKeys.Filesystems.Default;
    public IReadOnlyList<string> Exclude { get; init; } = SettingKeys.Exclude.Default;
    public IReadOnlyList<string> Types { get; init; } = DefaultTypes;
    public bool ResolvePaths { get; init; } = SettingKeys.ResolvePaths.Default;
    public MountTrackingMode MountTracking { get; init; } = SettingKeys.MountTracking.Default;
    /// <summary>null: statmount/listmount where the kernel has them (6.8+), else mountinfo.</summary>
    public MountSource? MountSource { get; init; } = SettingKeys.MountSource.Default;
    public TimeSpan RescanInterval { get; init; } = SettingKeys.RescanInterval.Default;
    /// <summary>How far the read and decode threads run ahead of ordinary work: N nice levels below the daemon's own and the shortest slice (auditd's priority_boost); 0 leaves them alone.</summary>
    public int PriorityBoost { get; init; } = SettingKeys.PriorityBoost.Default;
}

/// <summary>[Health]: the filesystems' own error records.</summary>
public sealed record HealthSettings
{
    public TimeSpan CheckInterval { get; init; } = SettingKeys.CheckInterval.Default;
    public bool KernelLog { get; init; } = SettingKeys.KernelLog.Default;
    public bool XfsHealthMonitor { get; init; } = SettingKeys.XfsHealthMonitor.Default;
    public int XfsScanLimit { get; init; } = SettingKeys.XfsScanLimit.Default;
}

/// <summary>[Store]: where reports and what was already reported are kept.</summary>
public sealed record StoreSettings
{
    /// <summary>$STATE_DIRECTORY (its first entry) when systemd sets it, else /var/lib/errorwatch: read when made, not from the table, which names the latter.</summary>
    public string Directory { get; init; } = Health.HealthBaseline.DefaultDirectory();
    public int MaxReports { get; init; } = SettingKeys.MaxReports.Default;
    public TimeSpan MaxAge { get; init; } = SettingKeys.MaxAge.Default;
}

/// <summary>[Journal]: reports as journal entries, rate-limited so an error storm cannot flood journald.</summary>
public sealed record JournalSettings
{
    public JournalMode Enabled { get; init; } = SettingKeys.JournalEnabled.Default;
    public int MaxEntriesPerInterval { get; init; } = SettingKeys.MaxEntriesPerInterval.Default;
    public TimeSpan Interval { get; init; } = SettingKeys.JournalInterval.Default;
}

/// <summary>[DBus]: the service desktop tools and scripts talk to.</summary>
public sealed record DBusSettings
{
    /// <summary>"system" (honours DBUS_SYSTEM_BUS_ADDRESS), "none", or a D-Bus address such as unix:path=/run/x/bus.</summary>
    public string Bus { get; init; } = SettingKeys.Bus.Default;
    /// <summary>File paths in ReportAdded signals, which every local user receives (off: only root and polkit-authorized callers see paths).</summary>
    public bool SignalPaths { get; init; } = SettingKeys.SignalPaths.Default;

    /// <summary>Why <paramref name="bus"/> is not a bus setting, or null.</summary>
    public static string? Invalid(string bus) =>
        bus is "system" or "none" || (bus.Contains(':') && bus.Contains('=')) ? null
        : $"'{bus}' is not system, none or a D-Bus address (unix:path=/run/dbus/system_bus_socket)";
}

/// <summary>[Metrics]: the Prometheus scrape endpoint.</summary>
public sealed record MetricsSettings
{
    public static readonly IReadOnlyList<string> DefaultListen = SettingKeys.Listen.Default;

    /// <summary>host:port, [v6]:port or unix:/path; empty (Listen=none) turns the endpoint off. Loopback unless configured otherwise.</summary>
    public IReadOnlyList<string> Listen { get; init; } = DefaultListen;

    /// <summary>Why <paramref name="endpoint"/> is not a listen address, or null.</summary>
    public static string? Invalid(string endpoint)
    {
        if (endpoint.StartsWith("unix:", StringComparison.Ordinal))
            return endpoint.Length > 5 && endpoint[5] == '/' ? null : $"'{endpoint}': a unix socket needs an absolute path (unix:/run/errorwatch/metrics.sock)";
        var colon = endpoint.LastIndexOf(':');
        if (colon <= 0 || !ushort.TryParse(endpoint.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port == 0)
            return $"'{endpoint}' is not host:port, [address]:port or unix:/path";
        var host = endpoint[..colon];
        if (host.StartsWith('[') != host.EndsWith(']') || (host.Contains(':') && !host.StartsWith('[')))
            return $"'{endpoint}': write IPv6 addresses in brackets ([::1]:9464)";
        return null;
    }
}

/// <summary>[OpenTelemetry]: OTLP push of metrics and of one log record per report (OTEL_EXPORTER_OTLP_* apply when unset).</summary>
public sealed record OpenTelemetrySettings
{
    public string? Endpoint { get; init; } = SettingKeys.OtlpEndpoint.Default;
    /// <summary>grpc or http/protobuf.</summary>
    public string? Protocol { get; init; } = SettingKeys.OtlpProtocol.Default;
    public string? Headers { get; init; } = SettingKeys.OtlpHeaders.Default;
    public TimeSpan Interval { get; init; } = SettingKeys.OtlpInterval.Default;
}


/// <summary>[Log]: the daemon's own log.</summary>
public sealed record LogSettings
{
    public LogEventLevel Level { get; init; } = SettingKeys.LogLevel.Default;

    /// <summary>The configuration words for the levels a user may choose.</summary>
    internal static readonly (string Name, LogEventLevel Level)[] Levels =
    [
        ("debug", LogEventLevel.Debug), ("information", LogEventLevel.Information),
        ("warning", LogEventLevel.Warning), ("error", LogEventLevel.Error),
    ];

    /// <summary>Other words for a level: "info" is the one syslog, systemd and journalctl (-p info) use.</summary>
    internal static string Canonical(string word) => word == "info" ? "information" : word;

    internal static string Name(LogEventLevel level) =>
        Array.Find(Levels, l => l.Level == level).Name ?? level.ToString().ToLowerInvariant();
}
