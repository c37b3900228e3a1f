using BenchmarkDotNet.Attributes;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Reports;

namespace ErrorWatch.Benchmarks;

/// <summary>
/// What reading one stored report back costs, for the store query API of issue 17: the ledger's
/// partial read of the facts it counts (<see cref="ReportFacts.Read"/>, a JsonDocument over the
/// record) against the one typed reader (<see cref="ReportJson.Read"/>, which the journal replay and
/// the OTLP log records use) and the facts taken from it. The record is a typical fanotify report
/// with a path and the ext4 error record's details. Run: <c>benchmarks/run-parser-bench.sh --filter '*StoreRead*'</c>.
/// </summary>
[MemoryDiagnoser]
public class StoreReadBenchmarks
{
    private byte[] _json = [];

    [GlobalSetup]
    public void Setup()
    {
        var time = DateTimeOffset.Parse("2026-12-07T12:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var report = new CorruptionReport
        {
            Id = Guid.CreateVersion7(time).ToString(),
            Time = time,
            Host = "db-replica-07",
            Source = "fanotify",
            Category = ErrorCategory.Corruption,
            Severity = Severity.Critical,
            Filesystem = new FilesystemInfo
            {
                Device = "/dev/mapper/vg0-data", MajorMinor = new DeviceNumber(253, 2), Type = "ext4",
                Uuid = Guid.Parse("6b1a2f4e-0a39-4e4c-9d76-4f1c2a0b7e11"), Label = "data",
                Mountpoints = [FsPath.FromString("/srv/data")], Fsid = "4f1c2a0b:7e116b1a",
            },
            Error = new ErrorInfo
            {
                Errno = 117, RawErrno = 117, Name = "EUCLEAN", Description = "Structure needs cleaning",
                Meaning = "the filesystem found corrupted metadata (bad checksum, impossible value)", Count = 1,
            },
            Object = new ObjectInfo
            {
                Inode = 1_835_021, Generation = 3_141_592_653, WholeFilesystem = false, HandleType = 0x81,
                Handle = "0d001c00f1a9b5bb", Path = FsPath.FromString("/srv/data/pg/base/16384/2619"),
            },
            Decoder = "ext4",
        };
        var ext4 = report.Details.Section("ext4");
        ext4.Set("errors_count", 12L).Set("first_error_func", "ext4_lookup").Set("first_error_line", 1812L)
            .Set("last_error_func", "ext4_iget").Set("last_error_ino", 1_835_021L);
        _json = ReportJson.ToUtf8(report);
    }

    [Benchmark(Baseline = true)]
    public ReportFacts FactsFromJson() => ReportJson.ReadFacts(_json, DateTimeOffset.UnixEpoch);

    [Benchmark]
    public CorruptionReport TypedReport() => ReportJson.Read(_json);

    [Benchmark]
    public ReportFacts FactsFromTypedReport() => ReportFacts.Of(ReportJson.Read(_json));
}
