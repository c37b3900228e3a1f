using System.Globalization;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace ErrorWatch.Benchmarks;

public static class Program
{
    public static int Main(string[] args)
    {
        // Check every fixture against the C reference before spending minutes on timing.
        Console.WriteLine($"fixtures: {BenchPaths.FixturesDir}");
        Console.WriteLine($"C reference: {BenchPaths.WalkBinary}");
        foreach (var path in Directory.GetFiles(BenchPaths.FixturesDir, "*.bin").Order(StringComparer.Ordinal))
        {
            try
            {
                var s = CReference.Verify(path, File.ReadAllBytes(path));
                Console.WriteLine($"  ok  {Path.GetFileName(path),-36} events={s.Events} error_count_sum={s.ErrorCountSum} checksum={s.Checksum}");
            }
            catch (InvalidOperationException e)
            {
                Console.Error.WriteLine($"  FAIL {e.Message}");
                return 1;
            }
        }

        var summaries = BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args).ToList();
        var failed = summaries.Where(s => s.HasCriticalValidationErrors || s.Reports.Any(r => !r.Success)).ToList();
        foreach (var s in failed)
            Console.Error.WriteLine($"benchmark run failed: {s.Title} (see {s.LogFilePath})");

        var cResults = Environment.GetEnvironmentVariable(BenchPaths.CResultsVariable);
        if (!string.IsNullOrEmpty(cResults) && File.Exists(cResults))
            PrintComparison(summaries, ReadCResults(cResults));
        return failed.Count == 0 ? 0 : 1;
    }

    /// <summary>Lines "FIXTURE.bin events=.. error_count_sum=.. checksum=.. ns_per_event=X" written by run-parser-bench.sh.</summary>
    private static Dictionary<string, double> ReadCResults(string path)
    {
        var result = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var ns = parts.FirstOrDefault(p => p.StartsWith("ns_per_event=", StringComparison.Ordinal));
            if (parts.Length > 1 && ns is not null)
                result[parts[0]] = double.Parse(ns["ns_per_event=".Length..], CultureInfo.InvariantCulture);
        }
        return result;
    }

    private static void PrintComparison(List<Summary> summaries, Dictionary<string, double> cNsPerEvent)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine();
        Console.WriteLine("Event parser vs the C reference (C: best of 5 trials; C#: BenchmarkDotNet mean and min; ratio = C# / C)");
        Console.WriteLine();
        Console.WriteLine("| fixture | events | C ns/event | C# ns/event (mean) | C# ns/event (min) | ratio mean | ratio min | C# allocated/buffer |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var report in summaries.SelectMany(s => s.Reports))
        {
            if (report.BenchmarkCase.Parameters["Fixture"] is not string fixture || report.ResultStatistics is not { } stats)
                continue;
            var events = NsPerEventColumn.EventsIn(fixture);
            double mean = stats.Mean / events, min = stats.Min / events;
            var alloc = report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase);
            var c = cNsPerEvent.TryGetValue(fixture, out var v) ? v : double.NaN;
            Console.WriteLine(string.Format(inv, "| {0} | {1} | {2:F2} | {3:F2} | {4:F2} | {5:F2} | {6:F2} | {7} B |",
                fixture, events, c, mean, min, mean / c, min / c, alloc?.ToString(inv) ?? "NA"));
        }
    }
}
