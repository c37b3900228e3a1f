using System.CommandLine;
using ErrorWatch.Reports;
using ErrorWatch.Store;

namespace ErrorWatch.Cli;

/// <summary>errorwatch list: the reports in the store, oldest first; with --live, those the running service announces from now on.</summary>
internal static class ListCommand
{
    private static readonly Option<string> Since = new("--since")
    {
        Description = "Only reports after this report id, since this time (2026-11-21T10:00:00Z) or within this age (30min, 12h, 7d)",
    };

    private static readonly Option<string> Filesystem = new("--filesystem", "-f")
    {
        Description = "Only reports about this filesystem (device, major:minor, UUID, label or mount point)",
    };

    private static readonly Option<bool> Json = new("--json")
    {
        Description = "One JSON report per line, exactly as stored (schema: docs/report-schema.md); with --live, converted from the ReportAdded signal",
    };

    private static readonly Option<bool> Live = new("--live")
    {
        Description = "Follow the running service's reports as they happen (as 'errorwatch watch' does) instead of reading the store; ignores --since",
    };

    public static Command Create()
    {
        var command = new Command("list", "Show the reports kept in the store")
        {
            Since, Filesystem, Json, Live, StatusCommand.Bus, RunCommand.StateDirectory, RunCommand.Config,
        };
        command.SetAction(parse => Execute(parse));
        return command;
    }

    private static int Execute(ParseResult parse)
    {
        if (parse.GetValue(Live))
        {
            if (parse.GetValue(Since) is not null)
                Console.Error.WriteLine("errorwatch list: --since is ignored with --live (only reports from now on are shown)");
            return WatchCommand.Follow("list", parse.GetValue(StatusCommand.Bus)!, parse.GetValue(Json), parse.GetValue(Filesystem));
        }
        // The same store the service writes: --state-dir, else the configuration's [Store] Directory.
        var state = parse.GetResult(RunCommand.StateDirectory) is { Implicit: false }
            ? parse.GetValue(RunCommand.StateDirectory)!
            : Configuration.ConfigurationLoader.Load(parse.GetValue(RunCommand.Config), out _).Store.Directory;
        var query = new ReportQuery { Filesystem = parse.GetValue(Filesystem) };
        if (parse.GetValue(Since) is { } since)
        {
            query = ReportQuery.WithSince(query, since, DateTimeOffset.UtcNow, out var problem)!;
            if (problem is not null)
            {
                Console.Error.WriteLine($"errorwatch list: {problem}");
                return 2;
            }
        }
        // Opened, not tested with Directory.Exists: that says "no" for a store this user may not read
        // too, and "nothing reported yet" must never stand for "not yours to see".
        var reports = Path.Combine(state, ReportStore.DirectoryName);
        var fd = Interop.Libc.Open(reports, Interop.Libc.O_RDONLY | Interop.Libc.O_DIRECTORY | Interop.Libc.O_CLOEXEC);
        if (fd < 0)
        {
            var errno = Interop.Libc.LastErrno;
            Console.Error.WriteLine(errno == Interop.Libc.ENOENT
                ? $"errorwatch list: no report store in {state} (nothing reported yet, or another --state-dir)"
                : $"errorwatch list: cannot read the report store {reports}: {Interop.ErrnoTable.Name(errno)}"
                  + (errno is Interop.Libc.EACCES or Interop.Libc.EPERM ? " (the store is root's: reports name files; run it as root)" : ""));
            return 1;
        }
        Interop.Libc.Close(fd);
        var json = parse.GetValue(Json);
        var stdout = Console.OpenStandardOutput();
        var problems = StoredReports.Query(state, query, (in StoredRecord record) =>
        {
            if (json)
            {
                stdout.Write(record.Json);
                stdout.WriteByte((byte)'\n');
                return true;
            }
            string line;
            try
            {
                line = TextLine(record.Report());
            }
            catch (Reports.ReportFormatException e)
            {
                line = $"(a stored report that cannot be read back: {e.Message})";
            }
            stdout.Write(System.Text.Encoding.UTF8.GetBytes(line + "\n"));
            return true;
        }).Problems;
        stdout.Flush();
        foreach (var problem in problems)
            Console.Error.WriteLine($"errorwatch list: {problem}");
        if (problems.Count == 0)
            return 0;
        // Unreadable or damaged segments: what was printed is not every report; a script must not take it for that.
        Console.Error.WriteLine($"errorwatch list: {problems.Count} problem(s) reading the store; the reports above may be incomplete");
        return 1;
    }

    /// <summary>One stored report on one line: time, severity, summary, where it was learnt, id.</summary>
    internal static string TextLine(Reports.CorruptionReport r) => TextLine(r.Time, r.Severity.Word(), r.Summary, r.Source, r.Id);

    /// <summary>The same line for a report received over D-Bus (<c>errorwatch watch</c>, <c>list --live</c>).</summary>
    internal static string TextLine(DateTimeOffset time, string severity, string summary, string source, string id) =>
        $"{time.UtcDateTime:yyyy-MM-ddTHH:mm:ss.fffZ} {severity.ToUpperInvariant()} {summary} [{source}] id={id}";
}
