using System.Text;
using ErrorWatch.Filesystems;
using Serilog.Events;
using ErrorWatch.Recovery;

namespace ErrorWatch.Configuration;

/// <summary>
/// Every key of errorwatch.conf (except those of [Hook "NAME"] rules, docs/hooks.md), each declared
/// once: the loader, the command line of <c>errorwatch run</c>, reload, check-config and the key
/// reference in docs/configuration.md are all made from this table. The settings records take their
/// defaults from it. Order: the order of the file, of check-config and of the docs.
/// </summary>
public static class SettingKeys
{
    /// <summary>The bounds of the intervals the daemon polls at.</summary>
    private static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(100), MaxInterval = TimeSpan.FromDays(1);

    /// <summary>Hook run time limits (a unit hook may be a long scrub).</summary>
    private static readonly TimeSpan MaxHookTimeout = TimeSpan.FromDays(7);

    private static readonly SettingSyntax<IReadOnlyList<string>> FilesystemList =
        SettingSyntax.List("mount points, devices, major:minor, UUIDs or labels", ValidFilesystem);

    // [Watch]

    public static readonly SettingKey<IReadOnlyList<string>> Filesystems = new("Watch", "Filesystems", FilesystemList, [],
        s => s.Watch.Filesystems, (s, v) => s with { Watch = s.Watch with { Filesystems = v } })
    {
        Description = "Watch only these filesystems, each a mount point, device, `major:minor`, UUID or label. Empty: every filesystem whose type is in `Types=`. A filesystem is chosen when it is first seen and stays watched while it is mounted anywhere: one chosen by its mount point is still watched after `umount -l` of that path while a bind mount keeps it. A reload (SIGHUP) decides again for every filesystem.",
        Reloadable = true,
        Option = new("--filesystem", "Watch only this filesystem (mount point, device, major:minor, UUID or label); repeatable") { Aliases = ["-f"] },
    };

    public static readonly SettingKey<IReadOnlyList<string>> Exclude = new("Watch", "Exclude", FilesystemList, [],
        s => s.Watch.Exclude, (s, v) => s with { Watch = s.Watch with { Exclude = v } })
    {
        Description = "Never watch these (same forms). Wins over `Filesystems=`.",
        Reloadable = true,
        Option = new("--exclude", "Never watch this filesystem (mount point, device, major:minor, UUID or label); repeatable"),
    };

    public static readonly SettingKey<IReadOnlyList<string>> Types = new("Watch", "Types",
        SettingSyntax.List("filesystem type names", ValidType), Array.AsReadOnly(Watching.WatchOptions.DefaultTypes.ToArray()),
        s => s.Watch.Types, (s, v) => s with { Watch = s.Watch with { Types = v } })
    {
        Description = "Filesystem types to watch. ext2 and ext3 are driven by the ext4 code and report the same way.",
        Reloadable = true,
        Option = new("--fs-type", "Filesystem types to watch (default: ext4 ext3 ext2 xfs); others use the generic decoder"),
    };

    public static readonly SettingKey<bool> ResolvePaths = new("Watch", "ResolvePaths", SettingSyntax.Boolean, true,
        s => s.Watch.ResolvePaths, (s, v) => s with { Watch = s.Watch with { ResolvePaths = v } })
    {
        Description = "Name the damaged file by opening the kernel's file handle (`open_by_handle_at`, needs `CAP_DAC_READ_SEARCH`). `no`: inode numbers only; no file is ever opened.",
        Option = new("--no-paths", "Do not resolve file handles to paths (inode numbers only)") { FlagSets = false },
    };

    public static readonly SettingKey<MountTrackingMode> MountTracking = new("Watch", "MountTracking",
        SettingSyntax.Choice([("auto", MountTrackingMode.Auto), ("mountinfo", MountTrackingMode.Mountinfo)]), MountTrackingMode.Auto,
        s => s.Watch.MountTracking, (s, v) => s with { Watch = s.Watch with { MountTracking = v } })
    {
        Description = "How new and removed mounts are noticed: `auto` uses fanotify mount events (Linux 6.15+) and falls back to `/proc/self/mountinfo`; `mountinfo` always polls the latter.",
        Option = new("--mount-tracking", "auto (FAN_MNT_ATTACH/DETACH on 6.15+, else mountinfo) or mountinfo"),
    };

    public static readonly SettingKey<MountSource?> MountSource = new("Watch", "MountSource",
        SettingSyntax.Choice([("auto", (MountSource?)null), ("statmount", global::ErrorWatch.Filesystems.MountSource.Statmount), ("mountinfo", global::ErrorWatch.Filesystems.MountSource.Mountinfo)]), null,
        s => s.Watch.MountSource, (s, v) => s with { Watch = s.Watch with { MountSource = v } })
    {
        Description = "How the mount table is read: `auto` uses `statmount`/`listmount` (Linux 6.8+) and falls back to `/proc/self/mountinfo`; or `statmount`, `mountinfo`.",
        Option = new("--mount-source", "auto (statmount/listmount on 6.8+, else mountinfo), statmount or mountinfo"),
    };

    public static readonly SettingKey<TimeSpan> RescanInterval = new("Watch", "RescanInterval", SettingSyntax.Span(MinInterval, MaxInterval), TimeSpan.FromSeconds(30),
        s => s.Watch.RescanInterval, (s, v) => s with { Watch = s.Watch with { RescanInterval = v } })
    {
        Description = "How often the mount table is read again in case a change notification was missed.",
    };

    public static readonly SettingKey<int> PriorityBoost = new("Watch", "PriorityBoost", SettingSyntax.Integer(0, 19), 4,
        s => s.Watch.PriorityBoost, (s, v) => s with { Watch = s.Watch with { PriorityBoost = v } })
    {
        Description = "How far the two threads between the kernel and the store (`events-1` and `events-2`, which trade the fanotify read loop's and the decode thread's roles) run ahead of ordinary work, as auditd's `priority_boost`: N nice levels below the daemon's own (−4 when it runs at 0; at nice 10 they run at 6) and the shortest scheduler slice (0.1 ms, Linux 6.12+), so an error's report is not queued behind other tasks' slices on a busy CPU (docs/performance.md, Latency). Threads and hooks they start begin at nice 0 again. Lowering the nice value needs `CAP_SYS_NICE` (root) or `LimitNICE=-N`; the shipped unit's system-call filter (`~@resources`) denies the call, so there the threads run unboosted and the log says so once; docs/operations.md has the drop-in that allows it. `0` leaves the threads alone.",
    };

    // [Health]

    public static readonly SettingKey<TimeSpan> CheckInterval = new("Health", "CheckInterval", SettingSyntax.Span(MinInterval, MaxInterval), TimeSpan.FromSeconds(30),
        s => s.Health.CheckInterval, (s, v) => s with { Health = s.Health with { CheckInterval = v } })
    {
        Description = "Periodic check of each filesystem's own record: ext4 `errors_count` and state, XFS sick bits. fanotify events and kernel log lines trigger checks at once, so this bounds only how late an error that announces itself nowhere else is found.",
        Option = new("--check-interval", "Seconds between periodic checks of native health (ext4 state, XFS sick bits); notifications and kernel log lines trigger checks at once"),
    };

    public static readonly SettingKey<bool> KernelLog = new("Health", "KernelLog", SettingSyntax.Boolean, true,
        s => s.Health.KernelLog, (s, v) => s with { Health = s.Health with { KernelLog = v } })
    {
        Description = "Read the kernel log for ext4 and XFS lines that call for a prompt check: `/dev/kmsg` when it can be opened (needs `CAP_SYSLOG` where `kernel.dmesg_restrict=1`, which the daemon then keeps), else the journal's copy of the kernel's lines (`_TRANSPORT=kernel`; what the unit does, with `ProtectKernelLogs=yes`). The capability report and the startup line say which. The lines only trigger checks; report facts come from sysfs and ioctls. `no` reads neither and drops `CAP_SYSLOG`.",
        Option = new("--no-kernel-log", "Do not read the kernel log (/dev/kmsg, else the journal) for lines that call for a prompt health check") { FlagSets = false },
    };

    public static readonly SettingKey<bool> XfsHealthMonitor = new("Health", "XfsHealthMonitor", SettingSyntax.Boolean, true,
        s => s.Health.XfsHealthMonitor, (s, v) => s with { Health = s.Health with { XfsHealthMonitor = v } })
    {
        Description = "On Linux 7.0+, read XFS events from `XFS_IOC_HEALTH_MONITOR` (one monitor per filesystem). `no`: leave the monitor to `xfs_healer` and poll the health bits.",
        Option = new("--no-xfs-health-monitor", "Poll XFS health bits even where XFS_IOC_HEALTH_MONITOR (Linux 7.0+) is available (leave it to xfs_healer)") { FlagSets = false },
    };

    public static readonly SettingKey<int> XfsScanLimit = new("Health", "XfsScanLimit", SettingSyntax.Integer(0, 1_000_000_000), 100_000,
        s => s.Health.XfsScanLimit, (s, v) => s with { Health = s.Health with { XfsScanLimit = v } })
    {
        Description = "Most inodes one kernel-log-triggered scan may stat to name the owner of a damaged XFS block; `0` never scans.",
    };

    // [Store]

    public static readonly SettingKey<string> StoreDirectory = new("Store", "Directory", SettingSyntax.AbsolutePath, Health.HealthBaseline.DefaultDirectory(null),
        s => s.Store.Directory, (s, v) => s with { Store = s.Store with { Directory = v } })
    {
        Description = "Where reports (`reports/`) and what was already reported (`health-baseline.json`) are kept. The unit creates `/var/lib/errorwatch` with mode 0700: reports name files.",
        DefaultText = "`$STATE_DIRECTORY`, else `/var/lib/errorwatch`",
        Option = new("--state-dir", "Where what was already reported is remembered across restarts (default: $STATE_DIRECTORY, else /var/lib/errorwatch)"),
    };

    public static readonly SettingKey<int> MaxReports = new("Store", "MaxReports", SettingSyntax.Integer(1, int.MaxValue), 100_000,
        s => s.Store.MaxReports, (s, v) => s with { Store = s.Store with { MaxReports = v } })
    {
        Description = "The oldest reports are dropped beyond this many.",
    };

    public static readonly SettingKey<TimeSpan> MaxAge = new("Store", "MaxAge", SettingSyntax.Span(TimeSpan.FromSeconds(1), SystemdValues.MaxTimeSpan), TimeSpan.FromDays(90),
        s => s.Store.MaxAge, (s, v) => s with { Store = s.Store with { MaxAge = v } })
    {
        Description = "Reports older than this are dropped.",
    };

    // [Journal]

    public static readonly SettingKey<JournalMode> JournalEnabled = new("Journal", "Enabled",
        new SettingSyntax<JournalMode>(SettingKind.Choice, "one of", "auto, yes, no", ParseJournalMode,
            m => m switch { JournalMode.Yes => "yes", JournalMode.No => "no", _ => "auto" }) { Choices = ["auto", "yes", "no"] },
        JournalMode.Auto,
        s => s.Journal.Enabled, (s, v) => s with { Journal = s.Journal with { Enabled = v } })
    {
        Description = "Reports as journal entries: `auto` (whenever `/run/systemd/journal/socket` exists), `yes`, `no`.",
        Option = new("--journal", "Reports to journald: auto (when its socket exists, or as the fallback when nothing else shows them), yes, or no"),
    };

    public static readonly SettingKey<int> MaxEntriesPerInterval = new("Journal", "MaxEntriesPerInterval", SettingSyntax.Integer(1, 1_000_000), 20,
        s => s.Journal.MaxEntriesPerInterval, (s, v) => s with { Journal = s.Journal with { MaxEntriesPerInterval = v } })
    {
        Description = "Storm control: at most this many report entries per filesystem per `Interval=`; the rest are counted into one summary entry (docs/report-schema.md). Every report stays in the store.",
    };

    public static readonly SettingKey<TimeSpan> JournalInterval = new("Journal", "Interval", SettingSyntax.Span(MinInterval, MaxInterval), TimeSpan.FromSeconds(60),
        s => s.Journal.Interval, (s, v) => s with { Journal = s.Journal with { Interval = v } })
    {
        Description = "The storm-control interval.",
    };

    // [DBus]

    public static readonly SettingKey<string> Bus = new("DBus", "Bus", SettingSyntax.Text("text", "`system`, `none` or a bus address", DBusSettings.Invalid), "system",
        s => s.DBus.Bus, (s, v) => s with { DBus = s.DBus with { Bus = v } })
    {
        Description = "Where the D-Bus service `io.github.errorwatch.ErrorWatch1` is offered: `system` (the system bus, or `$DBUS_SYSTEM_BUS_ADDRESS`), `none`, or a bus address such as `unix:path=/run/errorwatch/bus`. A missing bus is retried with backoff; detection never waits for it.",
        Option = new("--bus", "The D-Bus service's bus: system (default; honours DBUS_SYSTEM_BUS_ADDRESS), none, or a bus address (unix:path=/run/x/bus)"),
    };

    public static readonly SettingKey<bool> SignalPaths = new("DBus", "SignalPaths", SettingSyntax.Boolean, false,
        s => s.DBus.SignalPaths, (s, v) => s with { DBus = s.DBus with { SignalPaths = v } })
    {
        Description = "`ReportAdded` signals reach every local user, so they carry no file paths unless this is `yes`. Root and callers polkit authorizes get paths from `GetReport(s)` regardless (docs/security.md).",
    };

    // [Metrics]

    public static readonly SettingKey<IReadOnlyList<string>> Listen = new("Metrics", "Listen",
        SettingSyntax.List("`host:port`, `[v6]:port`, `unix:/path`; `none`", MetricsSettings.Invalid, none: "none"), Array.AsReadOnly(new[] { "127.0.0.1:9464" }),
        s => s.Metrics.Listen, (s, v) => s with { Metrics = s.Metrics with { Listen = v } })
    {
        Description = "The Prometheus endpoint (`GET /metrics`), several separated by spaces; `none` turns it off. The unit lets only loopback through (`IPAddressAllow=localhost`); for another address add it to the unit with a drop-in (docs/operations.md).",
        Option = new("--metrics-listen", "Prometheus endpoint address: host:port, [v6]:port or unix:/path (repeatable), or none (default: 127.0.0.1:9464)"),
    };

    // [OpenTelemetry]

    public static readonly SettingKey<string?> OtlpEndpoint = new("OpenTelemetry", "Endpoint",
        SettingSyntax.OptionalText("URL", "`http://` or `https://`", value =>
            Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https" ? null
            : $"{SettingSyntax.Quote(value)} is not an http:// or https:// URL (http://collector:4317)"),
        null, s => s.OpenTelemetry.Endpoint, (s, v) => s with { OpenTelemetry = s.OpenTelemetry with { Endpoint = v } })
    {
        Description = "OTLP push of the metrics and one log record per report, e.g. `http://collector:4317` (grpc) or `http://collector:4318` (http/protobuf; `/v1/metrics` and `/v1/logs` are added). Unset: the metrics go where `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` says, the log records where `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT` says; none set: no OTLP. An unreachable collector is logged once per outage; the log records wait in the store meanwhile (docs/metrics.md, OTLP). https needs `libssl3`.",
        DefaultText = "unset",
        Option = new("--otlp-endpoint", "Push metrics and one log record per report to this OTLP collector (http://host:4317; OTEL_EXPORTER_OTLP_* apply too)"),
    };

    public static readonly SettingKey<string?> OtlpProtocol = new("OpenTelemetry", "Protocol",
        new SettingSyntax<string?>(SettingKind.Choice, "one of", "grpc, http/protobuf",
            (string value, out string? result, out string problem) =>
            {
                result = value;
                problem = value is "grpc" or "http/protobuf" ? "" : $"{SettingSyntax.Quote(value)} is not one of grpc, http/protobuf";
                return problem.Length == 0;
            },
            v => v ?? "") { Choices = ["grpc", "http/protobuf"] },
        null, s => s.OpenTelemetry.Protocol, (s, v) => s with { OpenTelemetry = s.OpenTelemetry with { Protocol = v } })
    {
        Description = "The OTLP transport.",
        DefaultText = "`OTEL_EXPORTER_OTLP_PROTOCOL`, else `grpc`",
    };

    public static readonly SettingKey<string?> OtlpHeaders = new("OpenTelemetry", "Headers",
        SettingSyntax.OptionalText("text", "`name=value,name2=value2`", value =>
            Publishing.Otlp.OtlpDestination.ParseHeaders(value, out var problem) is null ? $"{problem} (name=value,name2=value2)" : null),
        null, s => s.OpenTelemetry.Headers, (s, v) => s with { OpenTelemetry = s.OpenTelemetry with { Headers = v } })
    {
        Description = "Extra request headers, `name=value` pairs separated by commas, values %-encoded (`Authorization=Bearer%20token,X-Tenant=ops`), as `OTEL_EXPORTER_OTLP_HEADERS` writes them. A malformed list is a configuration error naming the pair by its place, never its value (often a secret).",
        DefaultText = "`OTEL_EXPORTER_OTLP_HEADERS`",
    };

    public static readonly SettingKey<TimeSpan> OtlpInterval = new("OpenTelemetry", "Interval", SettingSyntax.Span(TimeSpan.FromSeconds(1), MaxInterval), TimeSpan.FromSeconds(60),
        s => s.OpenTelemetry.Interval, (s, v) => s with { OpenTelemetry = s.OpenTelemetry with { Interval = v } })
    {
        Description = "How often metrics are pushed.",
    };

    // [Hooks]

    public static readonly SettingKey<string> HooksDirectory = new("Hooks", "Directory", SettingSyntax.AbsolutePath, HooksSettings.DefaultDirectory,
        s => s.Hooks.Directory, (s, v) => s with { Hooks = s.Hooks with { Directory = v } })
    {
        Description = "Executables here run for the reports their file name's prefix (`all-`, `ext4-`, `corruption-`, ...) selects (docs/hooks.md).",
        Reloadable = true,
    };

    public static readonly SettingKey<int> MaxConcurrent = new("Hooks", "MaxConcurrent", SettingSyntax.Integer(1, 64), HooksSettings.DefaultMaxConcurrent,
        s => s.Hooks.MaxConcurrent, (s, v) => s with { Hooks = s.Hooks with { MaxConcurrent = v } })
    {
        Description = "Hook runs at the same time, all hooks and filesystems together.",
        Reloadable = true,
    };

    public static readonly SettingKey<TimeSpan> HookTimeout = new("Hooks", "Timeout", SettingSyntax.Span(TimeSpan.FromSeconds(1), MaxHookTimeout), HooksSettings.DefaultTimeout,
        s => s.Hooks.Timeout, (s, v) => s with { Hooks = s.Hooks with { Timeout = v } })
    {
        Description = "How long a run may take (for a unit: until its job is done) before its process group gets SIGTERM; a rule's `Timeout=` overrides it.",
        Reloadable = true,
    };

    public static readonly SettingKey<TimeSpan> KillGrace = new("Hooks", "KillGrace", SettingSyntax.Span(MinInterval, TimeSpan.FromHours(1)), HooksSettings.DefaultKillGrace,
        s => s.Hooks.KillGrace, (s, v) => s with { Hooks = s.Hooks with { KillGrace = v } })
    {
        Description = "From SIGTERM to SIGKILL of a run that took too long.",
        Reloadable = true,
    };

    public static readonly SettingKey<Recovery.RepeatPolicy> HookRepeat = new("Hooks", "Repeat",
        new SettingSyntax<Recovery.RepeatPolicy>(SettingKind.Text, "repeat policy", "`always`, `once`, `interval=DURATION`, `diminishing[=DURATION]`",
            (string value, out Recovery.RepeatPolicy result, out string problem) => Recovery.RepeatPolicy.TryParse(value, out result, out problem),
            p => p.ToString()),
        Recovery.RepeatPolicy.Default,
        s => s.Hooks.Repeat, (s, v) => s with { Hooks = s.Hooks with { Repeat = v } })
    {
        Description = "How often a hook may run again for the same filesystem, unless its `[Hook \"NAME\"]` rule says otherwise (docs/hooks.md, Repeat policies).",
        Reloadable = true,
    };

    public static readonly SettingKey<IReadOnlyList<string>> Capabilities = new("Hooks", "Capabilities",
        SettingSyntax.List("capability names", ValidCapability), [],
        s => s.Hooks.Capabilities, (s, v) => s with { Hooks = s.Hooks with { Capabilities = v } })
    {
        Description = "Capabilities hooks need beyond the daemon's own `CAP_SYS_ADMIN CAP_DAC_READ_SEARCH` (and `CAP_SYSLOG` outside the unit while `KernelLog=yes`), named as in capabilities(7): `CAP_KILL CAP_SYS_RESOURCE`. ErrorWatch drops every capability it does not need at startup; these it keeps in its bounding set, which root hooks get as their capabilities (the daemon holds them too). Under systemd add them to the unit's `CapabilityBoundingSet=` with a drop-in as well (docs/hooks.md, docs/security.md). The bounding set only shrinks, so a change waits for a restart.",
    };

    // [Log]

    public static readonly SettingKey<LogEventLevel> LogLevel = new("Log", "Level", SettingSyntax.Choice(LogSettings.Levels, LogSettings.Canonical), LogEventLevel.Information,
        s => s.Log.Level, (s, v) => s with { Log = s.Log with { Level = v } })
    {
        Description = "The daemon's own log: `debug`, `information` (or `info`), `warning` or `error`. It goes to the journal (`journalctl -u errorwatch`) and, on a terminal, to stderr.",
        Reloadable = true,
        Option = new("--log-level", "Minimum level of the daemon's own log on stderr: debug, information, warning or error"),
    };

    /// <summary>Every key, in the order of the file.</summary>
    public static readonly IReadOnlyList<SettingKey> All = Array.AsReadOnly(new SettingKey[]
    {
        Filesystems, Exclude, Types, ResolvePaths, MountTracking, MountSource, RescanInterval, PriorityBoost,
        CheckInterval, KernelLog, XfsHealthMonitor, XfsScanLimit,
        StoreDirectory, MaxReports, MaxAge,
        JournalEnabled, MaxEntriesPerInterval, JournalInterval,
        Bus, SignalPaths,
        Listen,
        OtlpEndpoint, OtlpProtocol, OtlpHeaders, OtlpInterval,
        HooksDirectory, MaxConcurrent, HookTimeout, KillGrace, HookRepeat, Capabilities,
        LogLevel,
    });

    /// <summary>The sections, in the order of the file.</summary>
    public static readonly IReadOnlyList<string> Sections = Array.AsReadOnly(All.Select(k => k.Section).Distinct().ToArray());

    public static IEnumerable<SettingKey> In(string section) => All.Where(k => k.Section == section);

    public static SettingKey? Find(string section, string name) => All.FirstOrDefault(k => k.Section == section && k.Name == name);

    private static bool ParseJournalMode(string value, out JournalMode result, out string problem)
    {
        problem = "";
        result = JournalMode.Auto;
        if (value == "auto")
            return true;
        if (SystemdValues.TryParseBoolean(value, out var on))
        {
            result = on ? JournalMode.Yes : JournalMode.No;
            return true;
        }
        problem = $"{SettingSyntax.Quote(value)} is not one of auto, yes, no";
        return false;
    }

    internal static string? ValidFilesystem(string item) =>
        item.AsSpan().IndexOfAnyInRange('\0', '\x1f') >= 0 ? "a filesystem name cannot contain control characters" : null;

    internal static string? ValidType(string item)
    {
        foreach (var c in item)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
                return $"{SettingSyntax.Quote(item)} is not a filesystem type name (as in /proc/filesystems, e.g. ext4, xfs)";
        }
        return null;
    }

    /// <summary>A capability name as capabilities(7) and systemd's CapabilityBoundingSet= write it: CAP_KILL.</summary>
    private static string? ValidCapability(string item)
    {
        if (Daemon.CapabilitySet.NumberOf(item) >= 0)
            return null;
        var near = Daemon.CapabilitySet.NumberOf(item.ToUpperInvariant()) is var n and >= 0 ? Daemon.CapabilitySet.NameOf(n)
            : Daemon.CapabilitySet.NumberOf("CAP_" + item.ToUpperInvariant()) is var m and >= 0 ? Daemon.CapabilitySet.NameOf(m) : null;
        return $"{SettingSyntax.Quote(item)} is not a capability name" + (near is null ? " (as in capabilities(7): CAP_KILL, CAP_NET_ADMIN, CAP_SYS_RESOURCE, ...)" : $"; did you mean {near}?");
    }

    /// <summary>check-config --keys: each key as the file writes it with its default, then what else the table says.</summary>
    public static string ToText()
    {
        var sb = new StringBuilder();
        foreach (var key in All)
        {
            sb.Append('[').Append(key.Section).Append("] ").Append(key.Name).Append('=').Append(key.FormattedDefault)
                .Append("  (").Append(ValuesText(key).Replace("`", "", StringComparison.Ordinal))
                .Append("; ").Append(key.Reloadable ? "a reload applies it" : "applies at restart")
                .Append(key.Option is { } option ? "; run " + option.Name : "").Append(")\n")
                .Append("    ").Append(key.Description.Replace("`", "", StringComparison.Ordinal)).Append('\n');
        }
        return sb.ToString();
    }

    private static string ValuesText(SettingKey key) =>
        key.Values is null ? key.Type : key.Kind == SettingKind.List ? $"list of {key.Values}" : $"{key.Type}: {key.Values}";

    public const string MarkdownBegin = "<!-- keys: generated from src/ErrorWatch.Core/Configuration/SettingKeys.cs by `errorwatch check-config --keys-markdown`; a test compares -->";
    public const string MarkdownEnd = "<!-- end of keys -->";

    /// <summary>The key reference of docs/configuration.md: a heading and a table per section, between the markers.</summary>
    public static string ToMarkdown()
    {
        var sb = new StringBuilder();
        sb.Append(MarkdownBegin).Append('\n');
        foreach (var section in Sections)
        {
            sb.Append("\n## [").Append(section).Append("]\n\n");
            sb.Append("| key | default | values | reload | option | meaning |\n");
            sb.Append("|---|---|---|---|---|---|\n");
            foreach (var key in In(section))
            {
                sb.Append("| `").Append(key.Name).Append("=` | ")
                    .Append(Cell(key.DefaultText ?? (key.FormattedDefault.Length == 0 ? "empty" : $"`{key.FormattedDefault}`"))).Append(" | ")
                    .Append(Cell(ValuesText(key))).Append(" | ")
                    .Append(key.Reloadable ? "at once" : "at restart").Append(" | ")
                    .Append(key.Option is { } option ? $"`{option.Name}`" : "").Append(" | ")
                    .Append(Cell(key.Description)).Append(" |\n");
            }
        }
        sb.Append('\n').Append(MarkdownEnd).Append('\n');
        return sb.ToString();
    }

    private static string Cell(string text) => text.Replace("|", "\\|", StringComparison.Ordinal);
}
