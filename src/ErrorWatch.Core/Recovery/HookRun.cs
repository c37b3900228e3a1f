using System.Globalization;
using System.Text;

namespace ErrorWatch.Recovery;

/// <summary>
/// One run of one hook for one filesystem: due from the first report that matched, with every
/// report that matched before it started folded in. The run shows the newest report's fields (its
/// id, path, mount points, JSON); ERRORWATCH_ERROR_COUNT is the sum over all of them,
/// ERRORWATCH_PREVIOUS_COUNT the part from the reports before the newest, and
/// ERRORWATCH_FIRST_TIME the time of the first.
/// </summary>
public sealed class HookRun
{
    public HookRun(string id, string hook, HookFacts first, DateTimeOffset notBefore)
    {
        Id = id;
        Hook = hook;
        Latest = first;
        ErrorCount = first.Count;
        Reports = 1;
        FirstTime = first.Time;
        FirstReportId = first.ReportId;
        NotBefore = notBefore;
    }

    /// <summary>A time-ordered UUID; the same when a run is replayed after a restart (ERRORWATCH_RUN_ID).</summary>
    public string Id { get; }
    public string Hook { get; }
    public string Filesystem => Latest.Filesystem;
    public HookFacts Latest { get; private set; }
    public ulong ErrorCount { get; private set; }
    public int Reports { get; private set; }
    public DateTimeOffset FirstTime { get; private set; }
    public string FirstReportId { get; private set; }
    /// <summary>The repeat policy holds the run back until then.</summary>
    public DateTimeOffset NotBefore { get; set; }
    /// <summary>Runs of this hook for this filesystem before this one (ERRORWATCH_PREVIOUS_RUNS).</summary>
    public long PreviousRuns { get; set; }
    /// <summary>Recorded as due by an earlier ErrorWatch that stopped before it was done.</summary>
    public bool Replayed { get; init; }
    /// <summary>The process an executable run started (recorded in the ledger).</summary>
    public RunProcess? Process { get; set; }
    /// <summary>Order of becoming due: runs waiting for a free slot start in this order.</summary>
    public long Sequence { get; set; }

    /// <summary>The errors of the reports folded in before the newest.</summary>
    public ulong PreviousCount => ErrorCount - Latest.Count;

    public void Fold(HookFacts facts)
    {
        Latest = facts;
        ErrorCount += facts.Count;
        Reports++;
    }

    /// <summary>Sets the folded totals read back from the ledger.</summary>
    internal void Restore(ulong errorCount, int reports, DateTimeOffset firstTime, string firstReportId)
    {
        ErrorCount = errorCount;
        Reports = reports;
        FirstTime = firstTime;
        FirstReportId = firstReportId;
    }

    /// <summary>The run's variables after the report's own: what every hook gets besides the fixed environment.</summary>
    public IEnumerable<(string Name, byte[] Value)> Variables(string? reportJsonPath)
    {
        foreach (var variable in Latest.Variables)
            yield return variable;
        static byte[] T(string s) => Encoding.UTF8.GetBytes(s);
        yield return ("ERRORWATCH_HOOK", T(Hook));
        yield return ("ERRORWATCH_RUN_ID", T(Id));
        yield return ("ERRORWATCH_ERROR_COUNT", T(ErrorCount.ToString(CultureInfo.InvariantCulture)));
        yield return ("ERRORWATCH_PREVIOUS_COUNT", T(PreviousCount.ToString(CultureInfo.InvariantCulture)));
        yield return ("ERRORWATCH_FIRST_TIME", T(HookFacts.Rfc3339(FirstTime)));
        yield return ("ERRORWATCH_FIRST_REPORT_ID", T(FirstReportId));
        yield return ("ERRORWATCH_REPORT_COUNT", T(Reports.ToString(CultureInfo.InvariantCulture)));
        yield return ("ERRORWATCH_PREVIOUS_RUNS", T(PreviousRuns.ToString(CultureInfo.InvariantCulture)));
        yield return ("ERRORWATCH_REPLAYED", T(Replayed ? "1" : "0"));
        if (reportJsonPath is not null)
            yield return ("ERRORWATCH_REPORT_JSON", T(reportJsonPath));
    }
}
