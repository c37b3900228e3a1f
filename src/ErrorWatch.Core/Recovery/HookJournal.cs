using System.Globalization;
using System.Text;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.Journal;

namespace ErrorWatch.Recovery;

/// <summary>
/// Hook runs in the journal: one outcome entry per run (MESSAGE_ID <see cref="OutcomeMessageId"/>,
/// explained by deploy/catalog/errorwatch.catalog) and one entry per line the hook wrote, each with
/// ERRORWATCH_HOOK, ERRORWATCH_RUN_ID and ERRORWATCH_REPORT_ID, so
/// <c>journalctl ERRORWATCH_HOOK=ext4-fsck-at-boot</c> shows a hook's runs and everything it said.
/// At most <see cref="MaxLinesPerRun"/> lines of a run are logged; the outcome counts the rest.
/// Without journald the same goes to stderr as text. Never throws.
/// </summary>
public sealed class HookJournal(IJournal journal, JournalFallback? fallback = null) : IHookOutput
{
    public const string OutcomeMessageId = "9bc8e9727f5c444c97fa353539c2d943";
    public const string Documentation = "file:///usr/share/doc/errorwatch/hooks.md";

    private readonly JournalFallback _fallback = fallback ?? new JournalFallback(what: "hook outcomes");

    public int MaxLinesPerRun { get; init; } = 200;

    /// <summary>syslog priority: info for success, notice for a skip, err for failures and timeouts.</summary>
    public static int PriorityOf(string result) => result switch
    {
        HookOutcome.Success => 6,
        HookOutcome.Skipped => 5,
        _ => 3,
    };

    public void Outcome(Hook hook, HookRun run, HookOutcome outcome) =>
        Deliver(() => OutcomeEntry(hook, run, outcome), () => $"{HookFacts.Rfc3339(DateTimeOffset.UtcNow)} {outcome.Result.ToUpperInvariant()} {Message(hook, run, outcome)}");

    /// <summary>Logs a line of the hook's output; false once the run's limit is reached (the caller counts the rest).</summary>
    public bool Line(Hook hook, HookRun run, HookOutputLine line, long lineNumber, int? pid)
    {
        if (lineNumber > MaxLinesPerRun)
            return false;
        Deliver(() =>
        {
            var e = new JournalEntry();
            e.Add("MESSAGE", [.. Encoding.UTF8.GetBytes(hook.Name + ": "), .. line.Text]);
            e.Add("PRIORITY", 6);
            e.Add("SYSLOG_IDENTIFIER", ReportJournal.SyslogIdentifier);
            e.Add("ERRORWATCH_HOOK", hook.Name);
            e.Add("ERRORWATCH_RUN_ID", run.Id);
            e.Add("ERRORWATCH_REPORT_ID", run.Latest.ReportId);
            e.Add("ERRORWATCH_HOOK_STREAM", line.Stderr ? "stderr" : "stdout");
            if (pid is { } p) e.Add("ERRORWATCH_HOOK_PID", p);
            return e;
        }, () => $"{hook.Name}: {FsPath.Escape(line.Text)}");
        return true;
    }

    public static string Message(Hook hook, HookRun run, HookOutcome outcome)
    {
        var where = FilesystemText(run.Latest);
        var sb = new StringBuilder($"Hook {hook.Name} for {where}: {outcome.Detail}");
        if (outcome.Result != HookOutcome.Skipped)
        {
            sb.Append(CultureInfo.InvariantCulture, $" after {outcome.Duration.TotalSeconds:0.###} s");
            if (hook.Kind == HookKind.Exec)
                sb.Append(CultureInfo.InvariantCulture, $", {outcome.OutputBytes} byte(s) of output");
            if (outcome.OutputLinesDropped > 0)
                sb.Append(CultureInfo.InvariantCulture, $" ({outcome.OutputLinesDropped} line(s) not logged)");
        }
        if (run.Reports > 1)
            sb.Append(CultureInfo.InvariantCulture, $"; stood for {run.Reports} reports, {run.ErrorCount} errors");
        return ReportJournal.OneLine(sb.ToString());
    }

    private static string FilesystemText(HookFacts facts)
    {
        var mountpoint = facts.Get("ERRORWATCH_MOUNTPOINT");
        var where = mountpoint.Length > 0 ? $" ({FsPath.Escape(mountpoint)})" : "";
        return $"{facts.GetText("ERRORWATCH_FSTYPE")} {facts.GetText("ERRORWATCH_DEVICE")}{where}";
    }

    public static JournalEntry OutcomeEntry(Hook hook, HookRun run, HookOutcome outcome)
    {
        var e = new JournalEntry();
        e.Add("MESSAGE", Message(hook, run, outcome));
        e.Add("MESSAGE_ID", OutcomeMessageId);
        e.Add("PRIORITY", PriorityOf(outcome.Result));
        e.Add("SYSLOG_IDENTIFIER", ReportJournal.SyslogIdentifier);
        e.Add("DOCUMENTATION", Documentation);
        e.Add("ERRORWATCH_HOOK", hook.Name);
        e.Add("ERRORWATCH_HOOK_KIND", hook.Kind == HookKind.Unit ? "unit" : "exec");
        e.Add("ERRORWATCH_HOOK_COMMAND", hook.Command);
        e.Add("ERRORWATCH_RUN_ID", run.Id);
        e.Add("ERRORWATCH_REPORT_ID", run.Latest.ReportId);
        e.Add("ERRORWATCH_FIRST_REPORT_ID", run.FirstReportId);
        e.Add("ERRORWATCH_OUTCOME", outcome.Result);
        e.Add("ERRORWATCH_OUTCOME_DETAIL", outcome.Detail);
        if (outcome.ExitCode is { } code) e.Add("ERRORWATCH_EXIT_CODE", code);
        if (outcome.Signal is { } signal) e.Add("ERRORWATCH_SIGNAL", signal);
        e.Add("ERRORWATCH_DURATION_SEC", outcome.Duration.TotalSeconds.ToString("0.0#####", CultureInfo.InvariantCulture));
        e.Add("ERRORWATCH_OUTPUT_BYTES", outcome.OutputBytes);
        e.Add("ERRORWATCH_OUTPUT_LINES", outcome.OutputLines);
        if (outcome.OutputLinesDropped > 0) e.Add("ERRORWATCH_OUTPUT_LINES_DROPPED", outcome.OutputLinesDropped);
        if (outcome.Pid is { } pid) e.Add("ERRORWATCH_HOOK_PID", pid);
        if (outcome.Unit is { } unit) e.Add("ERRORWATCH_UNIT", unit);
        if (outcome.Job is { } job) e.Add("ERRORWATCH_JOB", job);
        if (outcome.JobResult is { } result) e.Add("ERRORWATCH_JOB_RESULT", result);
        e.Add("ERRORWATCH_ERROR_COUNT", run.ErrorCount);
        e.Add("ERRORWATCH_REPORT_COUNT", run.Reports);
        e.Add("ERRORWATCH_REPLAYED", run.Replayed);
        e.Add("ERRORWATCH_EVENT", run.Latest.Event);
        foreach (var name in (string[])["ERRORWATCH_DEVICE", "ERRORWATCH_MAJOR_MINOR", "ERRORWATCH_UUID", "ERRORWATCH_FSTYPE", "ERRORWATCH_MOUNTPOINT"])
            if (run.Latest.Get(name) is { Length: > 0 } value)
                e.Add(name, value);
        return e;
    }

    private void Deliver(Func<JournalEntry> entry, Func<string> line)
    {
        if (!journal.TrySend(entry, out var reason))
            _fallback.Write(line(), reason);
    }
}
