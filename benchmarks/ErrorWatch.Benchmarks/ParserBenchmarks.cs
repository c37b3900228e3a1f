using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;

namespace ErrorWatch.Benchmarks;

/// <summary>
/// One fanotify read(2) buffer walked end to end with FanotifyEventReader + ReadRecords, extracting what
/// shared/anchors/fanotify-walk.c extracts. BenchmarkDotNet reports time per buffer; the ns/event columns
/// divide by the buffer's event count so the numbers compare with the C program's.
/// </summary>
[Config(typeof(ParserBenchConfig))]
[MemoryDiagnoser]
[MinColumn]
public class ParserBenchmarks
{
    public const string StormFixture = "ext4-storm-buffer.bin";

    [Params(StormFixture, "ext4-three-events-two-objects.bin", "ext4-inode-dir-extent.bin")]
    public string Fixture { get; set; } = StormFixture;

    private byte[] _buffer = [];

    [GlobalSetup]
    public void Setup()
    {
        var path = BenchPaths.Fixture(Fixture);
        _buffer = File.ReadAllBytes(path);
        // Hard-fails the benchmark (exception in the child process) if the work differs from the C loop's.
        var summary = CReference.Verify(path, _buffer);
        Console.WriteLine($"// verified {Fixture} against fanotify-walk: events={summary.Events} " +
                          $"error_count_sum={summary.ErrorCountSum} checksum={summary.Checksum}");
    }

    [Benchmark]
    public WalkSummary WalkBuffer() => ParserWalk.Walk(_buffer);
}

/// <summary>Short job: a 2-core machine, and the whole script should finish in a few minutes.</summary>
public sealed class ParserBenchConfig : ManualConfig
{
    public ParserBenchConfig()
    {
        AddJob(Job.Default
            .WithLaunchCount(1)
            .WithWarmupCount(3)
            .WithIterationCount(10)
            .WithId("Short10"));
        AddColumn(new NsPerEventColumn(useMin: false), new NsPerEventColumn(useMin: true));
        WithSummaryStyle(SummaryStyle.Default.WithMaxParameterColumnWidth(40));
    }
}
