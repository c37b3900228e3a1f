namespace ErrorWatch.Recovery;

/// <summary>
/// How a run ended. <see cref="Result"/> is the word of the metrics' errorwatch_outcome label:
/// success, failure, timeout, or skipped (it never ran: refused at the last check, or the hook is gone).
/// </summary>
public sealed record HookOutcome
{
    public const string Success = "success", Failure = "failure", TimedOut = "timeout", Skipped = "skipped";

    public required string Result { get; init; }
    /// <summary>One line saying what happened ("exited with 0", "killed by SIGKILL after the 5min timeout", "job done").</summary>
    public required string Detail { get; init; }
    public int? ExitCode { get; init; }
    /// <summary>The signal name when the process was ended by one (SIGKILL).</summary>
    public string? Signal { get; init; }
    public TimeSpan Duration { get; init; }
    public DateTimeOffset Started { get; init; }
    /// <summary>Bytes the hook wrote to stdout and stderr together.</summary>
    public long OutputBytes { get; init; }
    public long OutputLines { get; init; }
    /// <summary>Output lines not sent to the journal one by one (beyond the per-run limit).</summary>
    public long OutputLinesDropped { get; init; }
    /// <summary>Unit hooks: the unit started, the job's object path and JobRemoved's result (done, failed, ...).</summary>
    public string? Unit { get; init; }
    public string? Job { get; init; }
    public string? JobResult { get; init; }
    /// <summary>ErrorWatch stopped while it ran: not done, so it runs again at the next start (at-least-once).</summary>
    public bool Interrupted { get; init; }
    /// <summary>The process id of an executable hook (for the journal).</summary>
    public int? Pid { get; init; }

    public static HookOutcome Skip(string why, DateTimeOffset now) =>
        new() { Result = Skipped, Detail = why, Started = now };
}
