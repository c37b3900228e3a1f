using ErrorWatch.Configuration;
using ErrorWatch.Reports;
using Serilog;

namespace ErrorWatch.Recovery;

/// <summary>A hook that will not run, and why (the reason ends with the fix).</summary>
public sealed record RefusedHook(string Name, string Where, string Reason);

/// <summary>A file in hooks.d that is not a hook at all (no known prefix, a backup copy, a directory).</summary>
public sealed record IgnoredFile(string Path, string Reason);

/// <summary>
/// The hooks there are: executables in the hooks directory selected by their name's prefix
/// (<see cref="HookEvent.Prefixes"/>, ZED-style), and the [Hook "NAME"] rules of the configuration.
/// A rule without Exec= or Unit= adjusts the hooks.d file of its name (repeat policy, timeout, and
/// narrower matching); a rule with them takes the name from a file of the same name. Every
/// executable is checked by <see cref="HookPermissions"/>: a refused one is logged once, with the
/// fix, and never runs. The directory is scanned again whenever it changes (no reload needed to add
/// or remove a hook); the snapshot is swapped atomically, so matching never waits for a scan.
/// </summary>
public sealed class HookCatalog
{
    private static readonly string[] BackupSuffixes = ["~", ".bak", ".old", ".orig", ".swp", ".tmp", ".disabled", ".dpkg-old", ".dpkg-new", ".dpkg-dist", ".dpkg-tmp", ".rpmnew", ".rpmsave", ".rpmorig", ".ucf-old", ".ucf-new", ".ucf-dist"];

    private volatile HooksSettings _settings;
    private readonly ILogger _log;
    private readonly Lock _scanLock = new();
    private volatile Snapshot _snapshot = new([], [], []);
    private DateTime _scannedWrite = DateTime.MinValue;
    private long _scannedAt;

    /// <summary>A chmod or chown does not change the directory: while something is refused, look again this often.</summary>
    private static readonly TimeSpan RefusedRescan = TimeSpan.FromSeconds(10);
    private HashSet<string> _loggedRefusals = new(StringComparer.Ordinal);

    private sealed record Snapshot(IReadOnlyList<Hook> Hooks, IReadOnlyList<RefusedHook> Refused, IReadOnlyList<IgnoredFile> Ignored);

    public HookCatalog(HooksSettings settings, ILogger log)
    {
        _settings = settings;
        _log = log;
        Scan();
    }

    public HooksSettings Settings => _settings;

    /// <summary>New settings (SIGHUP): rules, directory and defaults apply to runs that start from now on.</summary>
    public void Update(HooksSettings settings)
    {
        _settings = settings;
        Scan();
    }
    public IReadOnlyList<Hook> Hooks => _snapshot.Hooks;
    public IReadOnlyList<RefusedHook> Refused => _snapshot.Refused;
    public IReadOnlyList<IgnoredFile> Ignored => _snapshot.Ignored;

    public Hook? Find(string name) => Hooks.FirstOrDefault(h => h.Name == name);

    /// <summary>The hooks a report selects, in name order; rescans hooks.d first if it changed.</summary>
    public IReadOnlyList<Hook> Match(CorruptionReport report, string eventWord)
    {
        Refresh();
        var hooks = _snapshot.Hooks;
        List<Hook>? matched = null;
        foreach (var hook in hooks)
            if (hook.Matches(report, eventWord))
                (matched ??= new()).Add(hook);
        return matched ?? (IReadOnlyList<Hook>)[];
    }

    /// <summary>Scans hooks.d again if its modification time changed (a file added, removed or renamed).</summary>
    public void Refresh()
    {
        DateTime write;
        try
        {
            write = Directory.Exists(_settings.Directory) ? Directory.GetLastWriteTimeUtc(_settings.Directory) : DateTime.MinValue;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            write = DateTime.MinValue;
        }
        if (write != _scannedWrite || (_snapshot.Refused.Count > 0 && System.Diagnostics.Stopwatch.GetElapsedTime(_scannedAt) > RefusedRescan))
            Scan();
    }

    /// <summary>Reads hooks.d and the rules now.</summary>
    public void Scan()
    {
        lock (_scanLock)
        {
            var hooks = new List<Hook>();
            var refused = new List<RefusedHook>();
            var ignored = new List<IgnoredFile>();
            var rules = _settings.Rules.ToDictionary(r => r.Name, StringComparer.Ordinal);
            var files = ReadDirectory(ignored, out _scannedWrite);
            _scannedAt = System.Diagnostics.Stopwatch.GetTimestamp();

            foreach (var (name, path, prefix) in files)
            {
                rules.TryGetValue(name, out var rule);
                if (rule is not null && (rule.Exec.Count > 0 || rule.Unit is not null))
                {
                    ignored.Add(new IgnoredFile(path, $"[Hook \"{name}\"] ({rule.Origin}) of the same name runs instead"));
                    continue;
                }
                if (HookPermissions.Refusal(path) is { } why)
                {
                    refused.Add(new RefusedHook(name, path, why));
                    continue;
                }
                hooks.Add(new Hook
                {
                    Name = name,
                    Kind = HookKind.Exec,
                    Executable = path,
                    Prefix = prefix,
                    Filter = rule is null ? HookFilter.Any : FilterOf(rule),
                    Repeat = rule?.Repeat ?? _settings.Repeat,
                    Timeout = rule?.Timeout ?? _settings.Timeout,
                    KillGrace = _settings.KillGrace,
                    Origin = rule is null ? path : $"{path}, adjusted by [Hook \"{name}\"] ({rule.Origin})",
                });
            }

            foreach (var rule in _settings.Rules)
            {
                var where = $"[Hook \"{rule.Name}\"] ({rule.Origin})";
                if (rule.Exec.Count == 0 && rule.Unit is null)
                {
                    if (!files.Any(f => f.Name == rule.Name))
                        refused.Add(new RefusedHook(rule.Name, where,
                            $"{where} has no Exec= and no Unit=, and {Path.Combine(_settings.Directory, rule.Name)} is not a hook file (or not there). Fix: add Exec= or Unit=, or name an executable in {_settings.Directory} with a prefix ({string.Join(", ", HookEvent.Prefixes)})"));
                    continue;
                }
                if (rule.Exec.Count > 0 && HookPermissions.Refusal(rule.Exec[0]) is { } why)
                {
                    refused.Add(new RefusedHook(rule.Name, where, why));
                    continue;
                }
                hooks.Add(new Hook
                {
                    Name = rule.Name,
                    Kind = rule.Unit is null ? HookKind.Exec : HookKind.Unit,
                    Executable = rule.Exec.Count > 0 ? rule.Exec[0] : "",
                    Arguments = rule.Exec.Count > 1 ? [.. rule.Exec.Skip(1)] : [],
                    Unit = rule.Unit ?? "",
                    Filter = FilterOf(rule),
                    Repeat = rule.Repeat ?? _settings.Repeat,
                    Timeout = rule.Timeout ?? _settings.Timeout,
                    KillGrace = _settings.KillGrace,
                    Origin = where,
                });
            }

            hooks.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
            var logged = new HashSet<string>(StringComparer.Ordinal);
            foreach (var r in refused)
            {
                var key = r.Where + "\n" + r.Reason;
                logged.Add(key);
                // Once per refusal, not per scan: the log says it when it first appears.
                if (!_loggedRefusals.Contains(key))
                    _log.Error("Hook {Hook} refused, it will not run: {Reason}", r.Where, r.Reason);
            }
            _loggedRefusals = logged;
            _snapshot = new Snapshot(hooks, refused, ignored);
        }
    }

    private List<(string Name, string Path, string Prefix)> ReadDirectory(List<IgnoredFile> ignored, out DateTime write)
    {
        var files = new List<(string, string, string)>();
        write = DateTime.MinValue;
        var directory = _settings.Directory;
        try
        {
            if (!Directory.Exists(directory))
                return files;
            write = Directory.GetLastWriteTimeUtc(directory);
            var entries = Directory.EnumerateFileSystemEntries(directory, "*", new EnumerationOptions { AttributesToSkip = 0, RecurseSubdirectories = false }).ToList();
            entries.Sort(string.CompareOrdinal);
            foreach (var path in entries)
            {
                var name = Path.GetFileName(path);
                if (name.StartsWith('.'))
                    continue; // hidden, as run-parts and systemd skip them
                if (BackupSuffixes.Any(s => name.EndsWith(s, StringComparison.Ordinal)))
                {
                    ignored.Add(new IgnoredFile(path, "a backup or package manager copy"));
                    continue;
                }
                if (Directory.Exists(path))
                {
                    ignored.Add(new IgnoredFile(path, "a directory"));
                    continue;
                }
                if (HookEvent.PrefixOf(name) is not { } prefix)
                {
                    ignored.Add(new IgnoredFile(path, $"its name has none of the prefixes {string.Join(", ", HookEvent.Prefixes)}"));
                    continue;
                }
                files.Add((name, path, prefix));
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Error("Hooks directory {Directory} cannot be read: {Reason}", directory, e.Message);
        }
        return files;
    }

    private static HookFilter FilterOf(HookRuleSettings rule) => new()
    {
        Filesystems = rule.Filesystems,
        Types = rule.Types,
        Events = rule.Events,
        Errnos = [.. rule.Errnos.Select(e => Interop.ErrnoTable.TryParse(e, out var n) ? n : int.Parse(e, System.Globalization.CultureInfo.InvariantCulture))],
        Sources = rule.Sources,
        Severities = rule.Severities,
    };
}
