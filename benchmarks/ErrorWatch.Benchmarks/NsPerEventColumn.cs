using System.Collections.Concurrent;
using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace ErrorWatch.Benchmarks;

/// <summary>Mean (or Min) time per buffer divided by the number of events in the buffer.</summary>
public sealed class NsPerEventColumn(bool useMin) : IColumn
{
    private static readonly ConcurrentDictionary<string, ulong> EventCounts = new();

    public string Id => useMin ? "MinNsPerEvent" : "NsPerEvent";
    public string ColumnName => useMin ? "Min ns/event" : "ns/event";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => useMin ? 1 : 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => useMin ? "Min per buffer / events in the buffer, in ns" : "Mean per buffer / events in the buffer, in ns";

    public bool IsAvailable(Summary summary) => true;
    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var stats = summary[benchmarkCase]?.ResultStatistics;
        if (stats is null || benchmarkCase.Parameters["Fixture"] is not string fixture)
            return "NA";
        var events = EventsIn(fixture);
        return events == 0 ? "NA" : ((useMin ? stats.Min : stats.Mean) / events).ToString("F2", CultureInfo.InvariantCulture);
    }

    public static ulong EventsIn(string fixture) =>
        EventCounts.GetOrAdd(fixture, f => ParserWalk.Walk(File.ReadAllBytes(BenchPaths.Fixture(f))).Events);

    public override string ToString() => ColumnName;
}
