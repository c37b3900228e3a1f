namespace ErrorWatch.Reports;

/// <summary>
/// The stored reports as a stage before the store sees them (the health baseline's catch-up at
/// start): their facts in the order they were stored. Store/ReportHistory reads the store for it.
/// </summary>
public interface IReportHistory
{
    /// <summary>
    /// Visits the facts of the reports stored after the one with <paramref name="afterId"/> (every
    /// report when null), oldest first; false when the store does not hold <paramref name="afterId"/>.
    /// A record that holds no report is skipped and named in <paramref name="problems"/>.
    /// </summary>
    bool FactsAfter(string? afterId, Action<ReportFacts> visit, List<string> problems);

    /// <summary>The newest stored report's id; null for an empty store.</summary>
    string? NewestId(List<string> problems);
}
