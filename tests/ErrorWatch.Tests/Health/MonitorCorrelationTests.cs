using System.Collections.Immutable;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Reports;

namespace ErrorWatch.Tests.Health;

/// <summary>
/// Synthetic: Linux 7.0 (XFS FAN_FS_ERROR + XFS_IOC_HEALTH_MONITOR); this machine runs 6.18.
/// The same XFS problem seen through both becomes one report, in either arrival order.
/// </summary>
public sealed class MonitorCorrelationTests
{
    private sealed class ManualClock : TimeProvider
    {
        public long Now;
        public override long GetTimestamp() => Now;
        public override long TimestampFrequency => 1000;
    }

    private static CorruptionReport Report(string source, ulong? inode, ulong count = 1, string device = "/dev/sdb1") => new()
    {
        Id = Guid.NewGuid().ToString(),
        Time = DateTimeOffset.UtcNow,
        Host = "test",
        Source = source,
        Category = ErrorCategory.Corruption,
        Severity = Severity.Critical,
        Filesystem = new FilesystemInfo { Device = device, MajorMinor = new DeviceNumber(8, 17), Type = "xfs", Mountpoints = ImmutableArray<FsPath>.Empty, Fsid = "0" },
        Error = new ErrorInfo { Errno = 117, RawErrno = 117, Name = "EUCLEAN", Description = "", Meaning = "", Count = count },
        Object = new ObjectInfo { Inode = inode, WholeFilesystem = inode is null },
        Decoder = "xfs",
        Finding = source == ReportSource.XfsHealthMonitor ? "inode 131 directory is sick" : null,
        Details = new ReportDetails(),
    };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Fanotify_and_monitor_reports_of_one_inode_are_one_report(bool fanotifyFirst)
    {
        var clock = new ManualClock();
        var correlation = new MonitorCorrelation(TimeSpan.FromSeconds(1), clock);
        var ready = new List<CorruptionReport>();
        var fan = Report(ReportSource.Fanotify, 131, count: 2);
        var mon = Report(ReportSource.XfsHealthMonitor, 131);

        correlation.Offer(fanotifyFirst ? fan : mon, monitored: true, ready);
        Assert.Empty(ready);
        clock.Now += 500;
        correlation.Offer(fanotifyFirst ? mon : fan, monitored: true, ready);

        var one = Assert.Single(ready);
        Assert.Equal(ReportSource.XfsHealthMonitor, one.Source);
        Assert.Equal(2UL, one.Error.Count);
        Assert.Equal("inode 131 directory is sick", one.Finding);
        var fanotify = Assert.IsType<ReportDetails>(one.Details["fanotify"]);
        Assert.Equal(fan.Id, fanotify["report_id"]);
        Assert.Equal(0, correlation.Pending);
    }

    [Fact]
    public void A_report_without_a_partner_goes_out_when_the_window_ends()
    {
        var clock = new ManualClock();
        var correlation = new MonitorCorrelation(TimeSpan.FromSeconds(1), clock);
        var ready = new List<CorruptionReport>();
        correlation.Offer(Report(ReportSource.Fanotify, 131), monitored: true, ready);
        Assert.Equal(TimeSpan.FromSeconds(1), correlation.NextDue());
        clock.Now += 999;
        correlation.Expire(ready);
        Assert.Empty(ready);
        clock.Now += 1;
        correlation.Expire(ready);
        Assert.Equal(ReportSource.Fanotify, Assert.Single(ready).Source);
        Assert.Null(correlation.NextDue());
    }

    [Fact]
    public void Different_inodes_and_unmonitored_filesystems_are_never_merged()
    {
        var correlation = new MonitorCorrelation(TimeSpan.FromSeconds(1), new ManualClock());
        var ready = new List<CorruptionReport>();
        correlation.Offer(Report(ReportSource.Fanotify, 131), monitored: false, ready);
        Assert.Single(ready);
        correlation.Offer(Report(ReportSource.Fanotify, 131), monitored: true, ready);
        correlation.Offer(Report(ReportSource.XfsHealthMonitor, 132), monitored: true, ready);
        correlation.Offer(Report(ReportSource.XfsHealthMonitor, 131, device: "/dev/sdc1"), monitored: true, ready);
        Assert.Single(ready);
        correlation.Drain(ready);
        Assert.Equal(4, ready.Count);
        Assert.Equal(0, correlation.Pending);
    }

    [Fact]
    public void Two_reports_of_the_same_source_are_two_problems()
    {
        var correlation = new MonitorCorrelation(TimeSpan.FromSeconds(1), new ManualClock());
        var ready = new List<CorruptionReport>();
        correlation.Offer(Report(ReportSource.Fanotify, 131), monitored: true, ready);
        correlation.Offer(Report(ReportSource.Fanotify, 131), monitored: true, ready);
        Assert.Single(ready);
        Assert.Equal(1, correlation.Pending);
    }
}
