using System.Collections.ObjectModel;
using System.Globalization;
using ErrorWatch.Filesystems;
using Serilog.Events;

namespace ErrorWatch.Configuration;

/// <summary>
/// Reads errorwatch.conf and its drop-ins the way systemd reads its own configuration:
/// <c>DIR/errorwatch.conf</c>, then <c>DIR/errorwatch.conf.d/*.conf</c> in lexical order of file name,
/// a later assignment overriding an earlier one. List keys (Filesystems=, Exclude=, Types=) add to the
/// list, and an empty assignment resets it to its default; an empty assignment of any other key
/// resets that key to its default. Keys and section names are case-sensitive.
/// </summary>
public static class ConfigurationLoader
{
    public const string FileName = "errorwatch.conf";
    public const string DefaultDirectory = "/etc/errorwatch";

    /// <summary>The bounds of every interval: CLI --check-interval accepts the same.</summary>
    private static readonly TimeSpan MinInterval = TimeSpan.FromMilliseconds(100), MaxInterval = TimeSpan.FromDays(1);

    /// <summary>$CONFIGURATION_DIRECTORY/errorwatch.conf (its first entry) when systemd sets it, else /etc/errorwatch/errorwatch.conf.</summary>
    public static string DefaultPath(string? configurationDirectory)
    {
        var dir = configurationDirectory?.Split(':')[0];
        return Path.Combine(string.IsNullOrEmpty(dir) ? DefaultDirectory : dir, FileName);
    }

    /// <summary>
    /// Loads <paramref name="path"/> (null: the default path, which may be missing) and its drop-ins
    /// <c>PATH.d/*.conf</c>. Problems name file, line and key; settings with problems keep their
    /// earlier value, so the result is always usable, but a caller should refuse to start on problems.
    /// </summary>
    public static ErrorWatchSettings Load(string? path, out IReadOnlyList<ConfigurationProblem> problems) =>
        Load(path, Environment.GetEnvironmentVariable("CONFIGURATION_DIRECTORY"), Environment.GetEnvironmentVariable("STATE_DIRECTORY"), out problems);

    /// <param name="configurationDirectory">$CONFIGURATION_DIRECTORY as systemd sets it (colon-separated), or null.</param>
    /// <param name="stateDirectory">$STATE_DIRECTORY as systemd sets it, for the default [Store] Directory=.</param>
    public static ErrorWatchSettings Load(string? path, string? configurationDirectory, string? stateDirectory, out IReadOnlyList<ConfigurationProblem> problems)
    {
        var found = new List<ConfigurationProblem>();
        var builder = new SettingsBuilder(Health.HealthBaseline.DefaultDirectory(stateDirectory), found);
        var files = new List<string>();
        var main = path ?? DefaultPath(configurationDirectory);

        void Read(string file, bool required)
        {
            var first = found.Count;
            if (ReadFile(file, required, found) is { } content)
            {
                files.Add(file);
                builder.Apply(file, content);
            }
            // Syntax problems are found while reading, value problems while applying: list each file's by line.
            var sorted = found.Skip(first).OrderBy(p => p.Line).ToList();
            found.RemoveRange(first, sorted.Count);
            found.AddRange(sorted);
        }

        Read(main, required: path is not null);
        foreach (var dropIn in DropIns(main + ".d", found))
            Read(dropIn, required: true);
        problems = found;
        return builder.Build(files);
    }

    private static SettingsFileContent? ReadFile(string file, bool required, List<ConfigurationProblem> problems)
    {
        try
        {
            if (Directory.Exists(file))
            {
                problems.Add(new(file, 0, "", "is a directory, not a configuration file"));
                return null;
            }
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
            return SettingsFile.Read(file, stream, problems);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            if (required)
                problems.Add(new(file, 0, "", "no such file"));
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            problems.Add(new(file, 0, "", "cannot be read: " + e.Message));
            return null;
        }
    }

    /// <summary>*.conf in <paramref name="directory"/> (files and symlinks to files, not hidden ones), ordered by file name byte by byte, as systemd orders drop-ins.</summary>
    private static List<string> DropIns(string directory, List<ConfigurationProblem> problems)
    {
        var result = new List<string>();
        try
        {
            if (!Directory.Exists(directory))
                return result;
            foreach (var entry in Directory.EnumerateFileSystemEntries(directory, "*.conf", new EnumerationOptions { MatchCasing = MatchCasing.CaseSensitive, AttributesToSkip = 0 }))
            {
                // Hidden files are skipped, as systemd skips them.
                if (!Path.GetFileName(entry).StartsWith('.') && !Directory.Exists(entry))
                    result.Add(entry);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add(new(directory, 0, "", "drop-in directory cannot be read: " + e.Message));
        }
        result.Sort((a, b) => string.CompareOrdinal(Path.GetFileName(a), Path.GetFileName(b)));
        return result;
    }

    /// <summary>Applies assignments in order to mutable state, checking each value, and builds the immutable settings.</summary>
    private sealed class SettingsBuilder(string defaultStoreDirectory, List<ConfigurationProblem> problems)
    {
        private static readonly Dictionary<string, string[]> Keys = new(StringComparer.Ordinal)
        {
            ["Watch"] = ["Filesystems", "Exclude", "Types", "ResolvePaths", "MountTracking", "MountSource", "RescanInterval", "PriorityBoost"],
            ["Health"] = ["CheckInterval", "KernelLog", "XfsHealthMonitor", "XfsScanLimit"],
            ["Store"] = ["Directory", "MaxReports", "MaxAge"],
            ["Journal"] = ["Enabled", "MaxEntriesPerInterval", "Interval"],
            ["DBus"] = ["Bus", "SignalPaths"],
            ["Metrics"] = ["Listen"],
            ["OpenTelemetry"] = ["Endpoint", "Protocol", "Headers", "Interval"],
            ["Hooks"] = ["Directory", "MaxConcurrent", "Timeout", "KillGrace", "Repeat", "Capabilities"],
            ["Log"] = ["Level"],
        };

        /// <summary>The keys of a [Hook "NAME"] section.</summary>
        private static readonly string[] RuleKeys = ["Exec", "Unit", "Filesystems", "Types", "Events", "Errnos", "Sources", "Severities", "Repeat", "Timeout"];

        private static readonly string KnownSections =
            string.Join(", ", Keys.Keys.Select(k => $"[{k}]")).Replace("[Hooks]", "[Hooks], [Hook \"NAME\"]", StringComparison.Ordinal);

        /// <summary>Hook run time limits (a unit hook may be a long scrub).</summary>
        private static readonly TimeSpan MaxHookTimeout = TimeSpan.FromDays(7);

        private static readonly string[] SourceNames = ["fanotify", "ext4-sysfs", "ext4-superblock", "ext4-state", "xfs-health", "xfs-health-monitor"];
        private static readonly string[] SeverityNames = ["critical", "error", "warning"];

        private static readonly ErrorWatchSettings Defaults = new();

        private readonly List<string> _filesystems = new(), _exclude = new(), _types = new(), _hookCapabilities = new();
        private WatchSettings _watch = new();
        private HealthSettings _health = new();
        private StoreSettings _store = new() { Directory = defaultStoreDirectory };
        private JournalSettings _journal = new();
        private DBusSettings _dbus = new();
        private List<string>? _listen; // null: no assignment, the default applies
        private OpenTelemetrySettings _otel = new();
        private HooksSettings _hooks = new();
        private readonly List<RuleBuilder> _rules = new();
        private LogSettings _log = new();
        private SettingsAssignment _at;
        private int _order;

        /// <summary>One [Hook "NAME"] as its assignments make it, across files; where Exec= and Unit= were last set, to name a conflict.</summary>
        private sealed class RuleBuilder(string name, string origin)
        {
            public string Name { get; } = name;
            public string Origin { get; } = origin;
            public List<string> Exec { get; set; } = new();
            public string? Unit { get; set; }
            /// <summary>Where each was last set, and the assignment's position in reading order.</summary>
            public (SettingsAssignment At, int Order)? ExecAt { get; set; }
            public (SettingsAssignment At, int Order)? UnitAt { get; set; }
            public readonly List<string> Filesystems = new(), Types = new(), Events = new(), Errnos = new(), Sources = new(), Severities = new();
            public Recovery.RepeatPolicy? Repeat { get; set; }
            public TimeSpan? Timeout { get; set; }
        }

        /// <summary>The NAME of a [Hook "NAME"] header, or null (and why) when the section is not one.</summary>
        internal static string? RuleName(string section, out string? problem)
        {
            problem = null;
            if (!section.StartsWith("Hook ", StringComparison.Ordinal) && section != "Hook")
                return null;
            var quoted = section[4..].Trim();
            if (quoted.Length < 3 || quoted[0] != '"' || quoted[^1] != '"')
            {
                problem = "a hook rule's header is [Hook \"NAME\"], the name in double quotes";
                return null;
            }
            var name = quoted[1..^1];
            if (name.Length > 64 || !char.IsAsciiLetterOrDigit(name[0]) || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or '@' or ':' or '+' or '-'))
            {
                problem = $"'{name}' is not a hook name: up to 64 letters, digits and _.@:+-, starting with a letter or digit";
                return null;
            }
            return name;
        }

        public void Apply(string file, SettingsFileContent content)
        {
            // One problem per unknown section header, not one per key under it.
            foreach (var (line, section) in content.Sections)
            {
                if (Keys.ContainsKey(section))
                    continue;
                if (RuleName(section, out var malformed) is { } name)
                {
                    if (!_rules.Exists(r => r.Name == name))
                        _rules.Add(new RuleBuilder(name, $"{file}:{line}"));
                }
                else
                    problems.Add(new(file, line, "", malformed ?? $"unknown section (known: {KnownSections})") { Section = section });
            }
            foreach (var a in content.Assignments)
            {
                _at = a;
                _order++;
                if (_rules.Find(r => a.Section == $"Hook \"{r.Name}\"") is { } rule)
                {
                    if (Array.IndexOf(RuleKeys, a.Key) < 0)
                    {
                        var near = RuleKeys.FirstOrDefault(k => string.Equals(k, a.Key, StringComparison.OrdinalIgnoreCase)) is { } k ? $"; did you mean {k}=? keys are case-sensitive" : "";
                        Problem($"unknown key{near} (known in [Hook \"NAME\"]: {string.Join(", ", RuleKeys)})");
                    }
                    else
                        ApplyRule(rule, a.Key, a.Value);
                    continue;
                }
                if (!Keys.TryGetValue(a.Section, out var keys))
                    continue;
                if (Array.IndexOf(keys, a.Key) < 0)
                {
                    var hint = keys.FirstOrDefault(k => string.Equals(k, a.Key, StringComparison.OrdinalIgnoreCase)) is { } near ? $"; did you mean {near}=? keys are case-sensitive" : "";
                    Problem($"unknown key{hint} (known in [{a.Section}]: {string.Join(", ", keys)})");
                    continue;
                }
                ApplyKnown(a.Section, a.Key, a.Value);
            }
        }

        private void ApplyKnown(string section, string key, string value)
        {
            // An empty assignment resets a key to its default, as in systemd.
            var reset = value.Length == 0;
            switch (section, key)
            {
                case ("Watch", "Filesystems"):
                    List(_filesystems, value, ValidFilesystem);
                    break;
                case ("Watch", "Exclude"):
                    List(_exclude, value, ValidFilesystem);
                    break;
                case ("Watch", "Types"):
                    List(_types, value, ValidType);
                    break;
                case ("Watch", "ResolvePaths"):
                    if (reset)
                        _watch = _watch with { ResolvePaths = Defaults.Watch.ResolvePaths };
                    else if (TryBoolean(value, out var resolve))
                        _watch = _watch with { ResolvePaths = resolve };
                    break;
                case ("Watch", "MountTracking"):
                    if (reset)
                        _watch = _watch with { MountTracking = Defaults.Watch.MountTracking };
                    else if (TryChoice(value, [("auto", MountTrackingMode.Auto), ("mountinfo", MountTrackingMode.Mountinfo)], out var tracking))
                        _watch = _watch with { MountTracking = tracking };
                    break;
                case ("Watch", "MountSource"):
                    if (reset)
                        _watch = _watch with { MountSource = Defaults.Watch.MountSource };
                    else if (TryChoice(value, [("auto", (MountSource?)null), ("statmount", MountSource.Statmount), ("mountinfo", MountSource.Mountinfo)], out var source))
                        _watch = _watch with { MountSource = source };
                    break;
                case ("Watch", "RescanInterval"):
                    if (reset)
                        _watch = _watch with { RescanInterval = Defaults.Watch.RescanInterval };
                    else if (TryInterval(value, MinInterval, MaxInterval, out var rescan))
                        _watch = _watch with { RescanInterval = rescan };
                    break;
                case ("Watch", "PriorityBoost"):
                    if (reset)
                        _watch = _watch with { PriorityBoost = Defaults.Watch.PriorityBoost };
                    else if (TryInteger(value, 0, 19, out var boost))
                        _watch = _watch with { PriorityBoost = boost };
                    break;
                case ("Health", "CheckInterval"):
                    if (reset)
                        _health = _health with { CheckInterval = Defaults.Health.CheckInterval };
                    else if (TryInterval(value, MinInterval, MaxInterval, out var check))
                        _health = _health with { CheckInterval = check };
                    break;
                case ("Health", "KernelLog"):
                    if (reset)
                        _health = _health with { KernelLog = Defaults.Health.KernelLog };
                    else if (TryBoolean(value, out var kernelLog))
                        _health = _health with { KernelLog = kernelLog };
                    break;
                case ("Health", "XfsHealthMonitor"):
                    if (reset)
                        _health = _health with { XfsHealthMonitor = Defaults.Health.XfsHealthMonitor };
                    else if (TryBoolean(value, out var monitor))
                        _health = _health with { XfsHealthMonitor = monitor };
                    break;
                case ("Health", "XfsScanLimit"):
                    if (reset)
                        _health = _health with { XfsScanLimit = Defaults.Health.XfsScanLimit };
                    else if (TryInteger(value, 0, 1_000_000_000, out var limit))
                        _health = _health with { XfsScanLimit = limit };
                    break;
                case ("Store", "Directory"):
                    if (reset)
                        _store = _store with { Directory = defaultStoreDirectory };
                    else if (!value.StartsWith('/'))
                        Problem($"{Quote(value)} is not an absolute path");
                    else
                        _store = _store with { Directory = value };
                    break;
                case ("Store", "MaxReports"):
                    if (reset)
                        _store = _store with { MaxReports = Defaults.Store.MaxReports };
                    else if (TryInteger(value, 1, int.MaxValue, out var maxReports))
                        _store = _store with { MaxReports = maxReports };
                    break;
                case ("Store", "MaxAge"):
                    if (reset)
                        _store = _store with { MaxAge = Defaults.Store.MaxAge };
                    else if (TryInterval(value, TimeSpan.FromSeconds(1), SystemdValues.MaxTimeSpan, out var maxAge))
                        _store = _store with { MaxAge = maxAge };
                    break;
                case ("Journal", "Enabled"):
                    if (reset || value == "auto")
                        _journal = _journal with { Enabled = JournalMode.Auto };
                    else if (SystemdValues.TryParseBoolean(value, out var journal))
                        _journal = _journal with { Enabled = journal ? JournalMode.Yes : JournalMode.No };
                    else
                        Problem($"{Quote(value)} is not one of auto, yes, no");
                    break;
                case ("Journal", "MaxEntriesPerInterval"):
                    if (reset)
                        _journal = _journal with { MaxEntriesPerInterval = Defaults.Journal.MaxEntriesPerInterval };
                    else if (TryInteger(value, 1, 1_000_000, out var entries))
                        _journal = _journal with { MaxEntriesPerInterval = entries };
                    break;
                case ("Journal", "Interval"):
                    if (reset)
                        _journal = _journal with { Interval = Defaults.Journal.Interval };
                    else if (TryInterval(value, MinInterval, MaxInterval, out var interval))
                        _journal = _journal with { Interval = interval };
                    break;
                case ("DBus", "Bus"):
                    if (reset)
                        _dbus = _dbus with { Bus = Defaults.DBus.Bus };
                    else if (DBusSettings.Invalid(value) is { } invalid)
                        Problem(invalid);
                    else
                        _dbus = _dbus with { Bus = value };
                    break;
                case ("DBus", "SignalPaths"):
                    if (reset)
                        _dbus = _dbus with { SignalPaths = Defaults.DBus.SignalPaths };
                    else if (TryBoolean(value, out var signalPaths))
                        _dbus = _dbus with { SignalPaths = signalPaths };
                    break;
                case ("Metrics", "Listen"):
                    // The first valid assignment replaces the default; "none" empties the list, "" restores the default.
                    if (reset)
                        _listen = null;
                    else if (value == "none")
                        _listen = new List<string>();
                    else
                    {
                        var listen = _listen ?? new List<string>();
                        List(listen, value, MetricsSettings.Invalid);
                        if (listen.Count > 0)
                            _listen = listen;
                    }
                    break;
                case ("OpenTelemetry", "Endpoint"):
                    if (reset)
                        _otel = _otel with { Endpoint = null };
                    else if (!Uri.TryCreate(value, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                        Problem($"{Quote(value)} is not an http:// or https:// URL (http://collector:4317)");
                    else
                        _otel = _otel with { Endpoint = value };
                    break;
                case ("OpenTelemetry", "Protocol"):
                    if (reset)
                        _otel = _otel with { Protocol = null };
                    else if (value is "grpc" or "http/protobuf")
                        _otel = _otel with { Protocol = value };
                    else
                        Problem($"{Quote(value)} is not one of grpc, http/protobuf");
                    break;
                case ("OpenTelemetry", "Headers"):
                    if (reset)
                        _otel = _otel with { Headers = null };
                    else if (Publishing.Otlp.OtlpDestination.ParseHeaders(value, out var headerProblem) is null)
                        Problem($"{headerProblem} (name=value,name2=value2)");
                    else
                        _otel = _otel with { Headers = value };
                    break;
                case ("OpenTelemetry", "Interval"):
                    if (reset)
                        _otel = _otel with { Interval = Defaults.OpenTelemetry.Interval };
                    else if (TryInterval(value, TimeSpan.FromSeconds(1), MaxInterval, out var otelInterval))
                        _otel = _otel with { Interval = otelInterval };
                    break;
                case ("Hooks", "Directory"):
                    if (reset)
                        _hooks = _hooks with { Directory = HooksSettings.DefaultDirectory };
                    else if (!value.StartsWith('/'))
                        Problem($"{Quote(value)} is not an absolute path");
                    else
                        _hooks = _hooks with { Directory = value };
                    break;
                case ("Hooks", "MaxConcurrent"):
                    if (reset)
                        _hooks = _hooks with { MaxConcurrent = Defaults.Hooks.MaxConcurrent };
                    else if (TryInteger(value, 1, 64, out var concurrent))
                        _hooks = _hooks with { MaxConcurrent = concurrent };
                    break;
                case ("Hooks", "Timeout"):
                    if (reset)
                        _hooks = _hooks with { Timeout = Defaults.Hooks.Timeout };
                    else if (TryInterval(value, TimeSpan.FromSeconds(1), MaxHookTimeout, out var timeout))
                        _hooks = _hooks with { Timeout = timeout };
                    break;
                case ("Hooks", "KillGrace"):
                    if (reset)
                        _hooks = _hooks with { KillGrace = Defaults.Hooks.KillGrace };
                    else if (TryInterval(value, MinInterval, TimeSpan.FromHours(1), out var grace))
                        _hooks = _hooks with { KillGrace = grace };
                    break;
                case ("Hooks", "Repeat"):
                    if (reset)
                        _hooks = _hooks with { Repeat = Defaults.Hooks.Repeat };
                    else if (TryRepeat(value, out var repeat))
                        _hooks = _hooks with { Repeat = repeat };
                    break;
                case ("Hooks", "Capabilities"):
                    List(_hookCapabilities, value, ValidCapability);
                    break;
                case ("Log", "Level"):
                    if (reset)
                        _log = _log with { Level = Defaults.Log.Level };
                    else if (TryChoice(LogSettings.Canonical(value), LogSettings.Levels, out var level))
                        _log = _log with { Level = level };
                    break;
            }
        }

        private void ApplyRule(RuleBuilder rule, string key, string value)
        {
            var reset = value.Length == 0;
            switch (key)
            {
                case "Exec":
                    if (reset)
                    {
                        rule.Exec = new();
                        rule.ExecAt = null;
                        break;
                    }
                    var words = SettingsFile.SplitList(value);
                    if (!words[0].StartsWith('/'))
                        Problem($"{Quote(words[0])} is not an absolute path (hooks are executed directly, without a shell or PATH search)");
                    else if (words[0].Contains('%'))
                        Problem("the executable's path cannot contain specifiers; use them in its arguments");
                    else if (words.Skip(1).Select(Recovery.HookSpecifiers.InvalidArgument).FirstOrDefault(p => p is not null) is { } bad)
                        Problem(bad);
                    else
                    {
                        rule.Exec = words;
                        rule.ExecAt = (_at, _order);
                    }
                    break;
                case "Unit":
                    if (reset)
                    {
                        rule.Unit = null;
                        rule.UnitAt = null;
                    }
                    else if (Recovery.HookSpecifiers.InvalidUnit(value) is { } invalid)
                        Problem(invalid);
                    else
                    {
                        rule.Unit = value;
                        rule.UnitAt = (_at, _order);
                    }
                    break;
                case "Filesystems":
                    List(rule.Filesystems, value, ValidFilesystem);
                    break;
                case "Types":
                    List(rule.Types, value, ValidType);
                    break;
                case "Events":
                    List(rule.Events, value, v => Array.IndexOf(Recovery.HookEvent.Words, v) >= 0 ? null
                        : $"{Quote(v)} is not an event (known: {string.Join(", ", Recovery.HookEvent.Words)})");
                    break;
                case "Errnos":
                    List(rule.Errnos, value, v => (Interop.ErrnoTable.TryParse(v, out _) || (v.All(char.IsAsciiDigit) && v.Length is > 0 and <= 4 && int.Parse(v, CultureInfo.InvariantCulture) is > 0 and < 4096)) ? null
                        : $"{Quote(v)} is not an errno name (EUCLEAN, EFSCORRUPTED, EIO, ...) or number");
                    break;
                case "Sources":
                    List(rule.Sources, value, v => Array.IndexOf(SourceNames, v) >= 0 ? null : $"{Quote(v)} is not a source (known: {string.Join(", ", SourceNames)})");
                    break;
                case "Severities":
                    List(rule.Severities, value, v => Array.IndexOf(SeverityNames, v) >= 0 ? null : $"{Quote(v)} is not a severity (critical, error, warning)");
                    break;
                case "Repeat":
                    if (reset)
                        rule.Repeat = null;
                    else if (TryRepeat(value, out var repeat))
                        rule.Repeat = repeat;
                    break;
                case "Timeout":
                    if (reset)
                        rule.Timeout = null;
                    else if (TryInterval(value, TimeSpan.FromSeconds(1), MaxHookTimeout, out var timeout))
                        rule.Timeout = timeout;
                    break;
            }
        }

        private bool TryRepeat(string value, out Recovery.RepeatPolicy policy)
        {
            if (Recovery.RepeatPolicy.TryParse(value, out policy, out var error))
                return true;
            Problem(error);
            return false;
        }

        /// <summary>The rules as settings; a rule that ended up with both Exec= and Unit= is a problem at the later of the two.</summary>
        private IReadOnlyList<HookRuleSettings> BuildRules()
        {
            var rules = new List<HookRuleSettings>();
            foreach (var r in _rules)
            {
                if (r.ExecAt is { } exec && r.UnitAt is { } unit)
                {
                    var (later, earlier) = exec.Order > unit.Order ? (exec.At, unit.At) : (unit.At, exec.At);
                    _at = later;
                    Problem($"a hook either runs Exec= or starts Unit=, not both ({earlier.Key}= is set at {earlier.File}:{earlier.Line}); reset one with an empty assignment");
                    continue;
                }
                rules.Add(new HookRuleSettings
                {
                    Name = r.Name,
                    Origin = r.Origin,
                    Exec = ReadOnly(r.Exec),
                    Unit = r.Unit,
                    Filesystems = ReadOnly(r.Filesystems),
                    Types = ReadOnly(r.Types),
                    Events = ReadOnly(r.Events),
                    Errnos = ReadOnly(r.Errnos),
                    Sources = ReadOnly(r.Sources),
                    Severities = ReadOnly(r.Severities),
                    Repeat = r.Repeat,
                    Timeout = r.Timeout,
                });
            }
            return rules.AsReadOnly();
        }

        public ErrorWatchSettings Build(List<string> files) => new()
        {
            Watch = _watch with
            {
                Filesystems = ReadOnly(_filesystems),
                Exclude = ReadOnly(_exclude),
                Types = _types.Count > 0 ? ReadOnly(_types) : WatchSettings.DefaultTypes,
            },
            Health = _health,
            Store = _store,
            Journal = _journal,
            DBus = _dbus,
            Metrics = new MetricsSettings { Listen = _listen is null ? MetricsSettings.DefaultListen : ReadOnly(_listen) },
            OpenTelemetry = _otel,
            Hooks = _hooks with { Rules = BuildRules(), Capabilities = ReadOnly(_hookCapabilities) },
            Log = _log,
            Files = ReadOnly(files),
        };

        private static ReadOnlyCollection<string> ReadOnly(List<string> items) => Array.AsReadOnly(items.ToArray());

        /// <summary>systemd list semantics: each assignment adds its items (duplicates once), an empty one resets the list.</summary>
        private void List(List<string> list, string value, Func<string, string?> invalid)
        {
            if (value.Length == 0)
            {
                list.Clear();
                return;
            }
            var items = SettingsFile.SplitList(value);
            foreach (var item in items)
            {
                if (invalid(item) is { } why)
                {
                    Problem(why);
                    return; // all or nothing: half a list is not what anyone wrote
                }
            }
            foreach (var item in items)
            {
                if (!list.Contains(item))
                    list.Add(item);
            }
        }

        private static string? ValidFilesystem(string item) =>
            item.AsSpan().IndexOfAnyInRange('\0', '\x1f') >= 0 ? "a filesystem name cannot contain control characters" : null;

        private static string? ValidType(string item)
        {
            foreach (var c in item)
            {
                if (!(char.IsAsciiLetterOrDigit(c) || c is '.' or '_' or '-'))
                    return $"{Quote(item)} is not a filesystem type name (as in /proc/filesystems, e.g. ext4, xfs)";
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
            return $"{Quote(item)} is not a capability name" + (near is null ? " (as in capabilities(7): CAP_KILL, CAP_NET_ADMIN, CAP_SYS_RESOURCE, ...)" : $"; did you mean {near}?");
        }

        private bool TryBoolean(string value, out bool result)
        {
            if (SystemdValues.TryParseBoolean(value, out result))
                return true;
            Problem($"{Quote(value)} is not a boolean (yes, no, true, false, on, off, 1, 0)");
            return false;
        }

        private bool TryChoice<T>(string value, (string Name, T Value)[] choices, out T result)
        {
            foreach (var (name, v) in choices)
            {
                if (value == name)
                {
                    result = v;
                    return true;
                }
            }
            Problem($"{Quote(value)} is not one of {string.Join(", ", choices.Select(c => c.Name))}");
            result = default!;
            return false;
        }

        private bool TryInterval(string value, TimeSpan min, TimeSpan max, out TimeSpan result)
        {
            if (!SystemdValues.TryParseTimeSpan(value, out result, out var error))
            {
                Problem(error);
                return false;
            }
            if (result < min || result > max)
            {
                Problem($"{SystemdValues.FormatTimeSpan(result)} is outside {SystemdValues.FormatTimeSpan(min)}..{SystemdValues.FormatTimeSpan(max)}");
                return false;
            }
            return true;
        }

        private bool TryInteger(string value, int min, int max, out int result)
        {
            result = 0;
            // Digits only: no sign, no thousands separators, no 0x.
            if (value.Length == 0 || !value.All(char.IsAsciiDigit))
            {
                Problem($"{Quote(value)} is not a whole number");
                return false;
            }
            // A whole number all the same, only too large to parse: out of range, as a smaller one would be.
            if (value.Length > 18 || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            {
                Problem($"{Quote(value)} is outside {min}..{max}");
                return false;
            }
            if (n < min || n > max)
            {
                Problem($"{n} is outside {min}..{max}");
                return false;
            }
            result = (int)n;
            return true;
        }

        internal static string Quote(string value) => "'" + (value.Length <= 60 ? value : value[..57] + "...") + "'";

        private void Problem(string message) =>
            problems.Add(new ConfigurationProblem(_at.File, _at.Line, _at.Key, message) { Section = _at.Section });
    }
}
