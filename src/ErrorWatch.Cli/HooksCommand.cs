using System.CommandLine;
using System.Globalization;
using ErrorWatch.Configuration;
using ErrorWatch.Filesystems;
using ErrorWatch.Modules;
using ErrorWatch.Recovery;
using ErrorWatch.Reports;
using ErrorWatch.Watching;

namespace ErrorWatch.Cli;

/// <summary>errorwatch hooks list | test: what would run for which reports, and a dry run of it (docs/hooks.md).</summary>
internal static class HooksCommand
{
    private static readonly string[] TestEvents = ["corruption", "io", "shutdown", "readonly", "history"];

    private static readonly Option<string> Event = new("--event", "-e")
    {
        Description = "The kind of report to test with: corruption, io, shutdown, readonly or history",
        DefaultValueFactory = _ => "corruption",
    };

    private static readonly Option<string?> Filesystem = new("--filesystem", "-f")
    {
        Description = "The filesystem the test report is about (mount point, device, major:minor, UUID or label; default: the one mounted on /)",
    };

    private static readonly Option<string?> Hook = new("--hook")
    {
        Description = "Run only this hook (its file name or [Hook \"NAME\"])",
    };

    private static readonly Option<bool> StartUnits = new("--start-units")
    {
        Description = "Also start the units of Unit= hooks (otherwise the test shows which unit it would start)",
    };

    public static Command Create()
    {
        var list = new Command("list", "Show the hooks that would run for which reports, and those refused and why")
        {
            RunCommand.Config, RunCommand.StateDirectory,
        };
        list.SetAction(parse => List(parse));
        Event.AcceptOnlyFromAmong(TestEvents);
        var test = new Command("test", "Run the matching hooks now with a test report (ERRORWATCH_EVENT=test), as smartd -M test does")
        {
            Event, Filesystem, Hook, StartUnits, RunCommand.Config,
        };
        test.SetAction(parse => Test(parse));
        return new Command("hooks", "Recovery hooks: executables in the hooks directory and [Hook] rules (docs/hooks.md)") { list, test };
    }

    private static HooksSettings? Load(ParseResult parse, out ErrorWatchSettings settings)
    {
        settings = ConfigurationLoader.Load(parse.GetValue(RunCommand.Config), out var problems);
        if (problems.Count == 0)
            return settings.Hooks;
        foreach (var problem in problems)
            Console.Error.WriteLine(problem);
        Console.Error.WriteLine($"{problems.Count} problem(s) in the configuration; check with 'errorwatch check-config'");
        return null;
    }

    private static int List(ParseResult parse)
    {
        if (Load(parse, out var settings) is not { } hooks)
            return 1;
        var catalog = new HookCatalog(hooks, Serilog.Core.Logger.None);
        var o = Console.Out;
        o.WriteLine($"Hooks directory {hooks.Directory}{(Directory.Exists(hooks.Directory) ? "" : " (not there)")}; at most {hooks.MaxConcurrent} at once; "
            + $"default Timeout={SystemdValues.FormatTimeSpan(hooks.Timeout)}, KillGrace={SystemdValues.FormatTimeSpan(hooks.KillGrace)}, Repeat={hooks.Repeat}");
        o.WriteLine();
        if (catalog.Hooks.Count == 0)
            o.WriteLine("No hook runs.");
        else
        {
            o.WriteLine("Hooks that run:");
            foreach (var h in catalog.Hooks)
            {
                o.WriteLine($"  {h.Name}");
                o.WriteLine($"      runs     {h.Command}");
                o.WriteLine($"      for      {h.Selects}");
                o.WriteLine($"      repeat   {h.Repeat}; timeout {SystemdValues.FormatTimeSpan(h.Timeout)}");
                o.WriteLine($"      from     {h.Origin}");
            }
            o.WriteLine();
            o.WriteLine("By event:");
            foreach (var word in TestEvents)
            {
                var names = catalog.Hooks.Select(h => RunsFor(h, word)).Where(n => n is not null).ToList();
                o.WriteLine($"  {word,-11} {(names.Count == 0 ? "-" : string.Join(", ", names))}");
            }
        }
        if (catalog.Refused.Count > 0)
        {
            o.WriteLine();
            o.WriteLine("Refused (these never run):");
            foreach (var r in catalog.Refused)
                o.WriteLine($"  {r.Name}: {r.Reason}");
        }
        if (catalog.Ignored.Count > 0)
        {
            o.WriteLine();
            o.WriteLine("Not hooks (ignored):");
            foreach (var i in catalog.Ignored)
                o.WriteLine($"  {i.Path}: {i.Reason}");
        }
        var state = parse.GetResult(RunCommand.StateDirectory) is { Implicit: false } ? parse.GetValue(RunCommand.StateDirectory)! : settings.Store.Directory;
        var last = HookLedger.LastRuns(state);
        if (last.Count > 0)
        {
            o.WriteLine();
            o.WriteLine($"Last runs ({Path.Combine(state, HookLedger.DirectoryName, HookLedger.FileName)}):");
            foreach (var r in last.OrderBy(r => r.Hook, StringComparer.Ordinal).ThenBy(r => r.Filesystem, StringComparer.Ordinal))
                o.WriteLine($"  {r.Hook} on {r.Filesystem}: {r.Started.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture)} UTC {r.Outcome}: {r.Detail}");
        }
        return catalog.Refused.Count == 0 ? 0 : 1;
    }

    /// <summary>The hook's name if it can run for <paramref name="eventWord"/>, with what else it requires; null if it never does.</summary>
    private static string? RunsFor(Recovery.Hook hook, string eventWord)
    {
        if (hook.Filter.Events.Count > 0 && !hook.Filter.Events.Contains(eventWord))
            return null;
        var conditions = new List<string>();
        switch (hook.Prefix)
        {
            case null or "all-":
                break;
            case "ext4-":
                conditions.Add("ext4");
                break;
            case "xfs-":
                conditions.Add("xfs");
                break;
            default:
                if (hook.Prefix[..^1] != eventWord)
                    return null;
                break;
        }
        var filter = (hook.Filter with { Events = [] }).Describe();
        if (filter.Length > 0)
            conditions.Add(filter);
        return conditions.Count == 0 ? hook.Name : $"{hook.Name} ({string.Join("; ", conditions)})";
    }

    private static int Test(ParseResult parse)
    {
        if (Load(parse, out _) is not { } hooks)
            return 1;
        var eventWord = parse.GetValue(Event)!;
        if (FindFilesystem(parse.GetValue(Filesystem), out var problem) is not { } filesystem)
        {
            Console.Error.WriteLine($"errorwatch hooks test: {problem}");
            return 2;
        }
        var catalog = new HookCatalog(hooks, Logging.ForCommand("hooks test"));
        var report = TestReport.For(filesystem, eventWord, DateTimeOffset.UtcNow);
        var only = parse.GetValue(Hook);
        var matched = catalog.Match(report, HookEvent.Of(report)).Where(h => only is null || h.Name == only).ToList();
        var where = $"{filesystem.Type} {filesystem.Device}" + (filesystem.Mountpoints.Length > 0 ? $" ({filesystem.Mountpoints[0].Escaped})" : "");
        if (only is not null && matched.Count == 0)
        {
            var why = catalog.Refused.FirstOrDefault(r => r.Name == only)?.Reason
                ?? (catalog.Find(only) is null ? "no such hook (errorwatch hooks list)" : $"it does not run for a {eventWord} report on {where}");
            Console.Error.WriteLine($"errorwatch hooks test: {only}: {why}");
            return 1;
        }
        Console.Out.WriteLine($"Test report {report.Id}: {eventWord} on {where}; ERRORWATCH_EVENT=test");
        if (matched.Count == 0)
        {
            Console.Out.WriteLine($"No hook runs for a {eventWord} report on this filesystem (errorwatch hooks list shows what runs when).");
            return 0;
        }
        var facts = HookFacts.From(report, HookEvent.Test);
        var directory = Directory.CreateTempSubdirectory("errorwatch-hooks-test-").FullName;
        var failed = 0;
        try
        {
            using var launcher = new HookLauncher(directory, new TerminalOutput(), Logging.ForCommand("hooks test"));
            foreach (var hook in matched)
            {
                var run = new HookRun(Guid.CreateVersion7().ToString(), hook.Name, facts, DateTimeOffset.MinValue);
                if (hook.Kind == HookKind.Unit && !parse.GetValue(StartUnits))
                {
                    var unit = HookSpecifiers.ExpandUnit(hook.Unit, facts, out var unitProblem);
                    Console.Out.WriteLine(unit is null ? $"{hook.Name}: would fail: {unitProblem}" : $"{hook.Name}: would start {unit} (add --start-units to start it)");
                    continue;
                }
                Console.Out.WriteLine($"{hook.Name}: {hook.Command}");
                var outcome = launcher.Run(hook, run, _ => { }, CancellationToken.None);
                if (outcome.Result == HookOutcome.Success)
                    Console.Out.WriteLine($"{hook.Name}: ok: {outcome.Detail}");
                else
                {
                    Console.Out.WriteLine($"{hook.Name}: {outcome.Result}: {HookJournal.Message(hook, run, outcome)}");
                    failed++;
                }
            }
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
        return failed == 0 ? 0 : 1;
    }

    /// <summary>Hook output on the terminal, indented under the hook's name.</summary>
    private sealed class TerminalOutput : IHookOutput
    {
        public bool Line(Recovery.Hook hook, HookRun run, HookOutputLine line, long number, int? pid)
        {
            Console.Out.WriteLine($"  {(line.Stderr ? "!" : "|")} {FsPath.Escape(line.Text)}");
            return true;
        }
    }

    /// <summary>The mounted filesystem <paramref name="pattern"/> names (the one on / when null), identified as the daemon does.</summary>
    private static FilesystemInfo? FindFilesystem(string? pattern, out string problem)
    {
        problem = "";
        var mounts = MountTable.Read(MountTable.Detect());
        var options = new WatchOptions();
        var modules = FilesystemModules.CreateDefault();
        foreach (var group in mounts.GroupBy(m => m.Device))
        {
            var entries = group.ToList();
            var first = entries[0];
            var named = pattern is null
                ? entries.Any(m => m.MountPoint.Text == "/")
                : entries.Any(m => m.MountPoint.Text == pattern) || first.Source == pattern || first.Device.ToString() == pattern;
            // Only filesystems that could be watched are opened: a stale network mount could hang.
            var sb = named || (pattern is not null && WatchOptions.DefaultTypes.Contains(first.FsType)) ? FilesystemInventory.Identify(modules.ReadUuid, first.Device, first.FsType, entries, out _) : null;
            if (!named && (sb is null || !options.Matches(sb, pattern!)))
                continue;
            return sb is not null ? FilesystemInfo.From(sb) : new FilesystemInfo
            {
                Device = first.Source,
                MajorMinor = first.Device,
                Type = first.FsType,
                Mountpoints = [.. entries.Select(m => m.MountPoint)],
                Fsid = "0:0",
            };
        }
        problem = pattern is null ? "no filesystem is mounted on /" : $"no mounted filesystem matches '{pattern}' (a mount point, device, major:minor, UUID or label)";
        return null;
    }
}
