using System.Collections.ObjectModel;
using System.Globalization;
using ErrorWatch.Recovery;

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

    /// <summary>Applies assignments in order through <see cref="SettingKeys"/>, checking each value, and builds the settings.</summary>
    private sealed class SettingsBuilder(string defaultStoreDirectory, List<ConfigurationProblem> problems)
    {
        /// <summary>The keys of a [Hook "NAME"] section.</summary>
        private static readonly string[] RuleKeys = ["Exec", "Unit", "Filesystems", "Types", "Events", "Errnos", "Sources", "Severities", "Repeat", "Timeout"];

        private static readonly string KnownSections =
            string.Join(", ", SettingKeys.Sections.Select(k => $"[{k}]")).Replace("[Hooks]", "[Hooks], [Hook \"NAME\"]", StringComparison.Ordinal);

        private static readonly string[] SeverityNames = ["critical", "error", "warning"];

        /// <summary>What an empty assignment goes back to: the table's defaults, the store where systemd says.</summary>
        private readonly ErrorWatchSettings _defaults = new() { Store = new StoreSettings { Directory = defaultStoreDirectory } };
        private ErrorWatchSettings _settings = new() { Store = new StoreSettings { Directory = defaultStoreDirectory } };
        /// <summary>List keys assigned since their last reset: these add to their list, the others replace the default.</summary>
        private readonly HashSet<SettingKey> _assignedLists = new();
        private readonly List<RuleBuilder> _rules = new();
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
                if (SettingKeys.Sections.Contains(section))
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
                if (!SettingKeys.Sections.Contains(a.Section))
                    continue;
                if (SettingKeys.Find(a.Section, a.Key) is not { } key)
                {
                    var keys = SettingKeys.In(a.Section).Select(k => k.Name).ToList();
                    var hint = keys.Find(k => string.Equals(k, a.Key, StringComparison.OrdinalIgnoreCase)) is { } near ? $"; did you mean {near}=? keys are case-sensitive" : "";
                    Problem($"unknown key{hint} (known in [{a.Section}]: {string.Join(", ", keys)})");
                    continue;
                }
                if (!key.TryAssign(ref _settings, a.Value, _defaults, _assignedLists, out var problem))
                    Problem(problem);
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
                    List(rule.Filesystems, value, SettingKeys.ValidFilesystem);
                    break;
                case "Types":
                    List(rule.Types, value, SettingKeys.ValidType);
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
                    List(rule.Sources, value, v => Reports.ReportSource.All.Contains(v) ? null : $"{Quote(v)} is not a source (known: {string.Join(", ", Reports.ReportSource.All)})");
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
                    // The same bounds as [Hooks] Timeout=, which it overrides.
                    else if (SettingKeys.HookTimeout.Syntax.TryParse(value, out var timeout, out var problem))
                        rule.Timeout = timeout;
                    else
                        Problem(problem);
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

        public ErrorWatchSettings Build(List<string> files) => _settings with
        {
            Hooks = _settings.Hooks with { Rules = BuildRules() },
            Files = ReadOnly(files),
        };

        private static ReadOnlyCollection<string> ReadOnly(List<string> items) => Array.AsReadOnly(items.ToArray());

        /// <summary>A rule's list key: each assignment adds its items, an empty one resets the list.</summary>
        private void List(List<string> list, string value, Func<string, string?> invalid)
        {
            if (value.Length == 0)
                list.Clear();
            else if (!SettingKey.TryAddItems(list, SettingsFile.SplitList(value), invalid, out var problem))
                Problem(problem);
        }

        private static string Quote(string value) => SettingSyntax.Quote(value);

        private void Problem(string message) =>
            problems.Add(new ConfigurationProblem(_at.File, _at.Line, _at.Key, message) { Section = _at.Section });
    }
}
