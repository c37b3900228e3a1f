using System.Collections.Immutable;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Reports;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.Modules.Ext4;

/// <summary>
/// The ext4 reconciliation rules on a fake /sys/fs/ext4 and /proc/fs/ext4 tree: counter growth minus
/// what fanotify announced, a sysfs counter that lags fanotify, history against the baseline,
/// restarts, e2fsck resets, and state changes reported once. (Real-kernel versions of these are
/// in EndToEnd/NativeHealthTests.)
/// </summary>
public sealed class Ext4ReconciliationTests : IDisposable
{
    private const string Name = "loopfake";
    private readonly string _root = Directory.CreateTempSubdirectory("errorwatch-ext4-").FullName;
    private readonly Superblock _sb;
    private readonly Watcher _watcher = new(new EventHandOff(), Serilog.Core.Logger.None);

    public Ext4ReconciliationTests()
    {
        _sb = new Superblock(new DeviceNumber(7, 99), "ext4", []) { KernelName = Name, Uuid = Guid.NewGuid(), DevicePath = "/nonexistent", Magic = Ext4Module.SuperMagic };
        Directory.CreateDirectory(Path.Combine(_root, "sys", Name));
        Directory.CreateDirectory(Path.Combine(_root, "proc", Name));
        SetOptions("rw\nerrors=continue\n");
        SetCounter(0, firstTime: 0);
    }

    public void Dispose()
    {
        _watcher.Dispose();
        Directory.Delete(_root, recursive: true);
    }

    private void SetCounter(ulong count, long firstTime = 1_700_000_000, string lastFunc = "ext4_mb_generate_buddy", byte code = 5)
    {
        void Write(string file, object value) => File.WriteAllText(Path.Combine(_root, "sys", Name, file), value + "\n");
        Write("errors_count", count);
        foreach (var which in new[] { "first", "last" })
        {
            Write($"{which}_error_time", count == 0 ? 0 : which == "first" ? firstTime : firstTime + 60);
            Write($"{which}_error_func", lastFunc);
            Write($"{which}_error_line", 1317);
            Write($"{which}_error_ino", 0);
            Write($"{which}_error_block", 0);
            Write($"{which}_error_errcode", code);
        }
    }

    private void SetOptions(string options) => File.WriteAllText(Path.Combine(_root, "proc", Name, "options"), options);

    private (Ext4Health Source, SuperblockWatch Watch) Source(HealthBaseline baseline)
    {
        // The group is never touched by the reconciliation; the watch only carries the read counters.
        var watch = new SuperblockWatch(_sb, null!);
        var source = new Ext4Health(watch, _watcher, baseline, "boot/7:99/1", Serilog.Core.Logger.None,
            Path.Combine(_root, "sys"), Path.Combine(_root, "proc"));
        return (source, watch);
    }

    private static List<HealthFinding> Check(Ext4Health source, HealthTrigger why = HealthTrigger.Periodic)
    {
        var findings = new List<HealthFinding>();
        source.Check(why, findings);
        return findings;
    }

    /// <summary>What the daemon does after a report goes out.</summary>
    private static void Publish(Ext4Health source, IEnumerable<HealthFinding> findings)
    {
        foreach (var f in findings)
            source.Published(Report(f.Source, f.Count));
    }

    private static CorruptionReport Report(string source, ulong count) => new()
    {
        Id = Guid.NewGuid().ToString(),
        Time = DateTimeOffset.UtcNow,
        Host = "test",
        Source = source,
        Category = ErrorCategory.Corruption,
        Severity = Severity.Critical,
        Filesystem = new FilesystemInfo { Device = "/dev/fake", MajorMinor = new DeviceNumber(7, 99), Type = "ext4", Mountpoints = ImmutableArray<FsPath>.Empty, Fsid = "0" },
        Error = new ErrorInfo { Errno = 117, RawErrno = 117, Name = "EUCLEAN", Description = "", Meaning = "", Count = count },
        Object = new ObjectInfo(),
        Decoder = "ext4",
    };

    private static void Announce(SuperblockWatch watch, Ext4Health source, long errors)
    {
        Interlocked.Add(ref watch._errorsRead, errors); // what the read loop does
        source.Published(Report(ReportSource.Fanotify, (ulong)errors));
    }

    [Fact]
    public void A_never_seen_filesystem_with_counted_errors_gets_one_history_report_then_nothing()
    {
        SetCounter(3);
        var (source, _) = Source(HealthBaseline.InMemory());
        var first = Check(source, HealthTrigger.FirstWatch);
        var history = Assert.Single(first);
        Assert.Equal(ReportSource.Ext4Superblock, history.Source);
        Assert.Equal(3UL, history.Count);
        Assert.Equal(117, history.Errno); // EXT4_ERR_EFSCORRUPTED
        Assert.Contains("before ErrorWatch watched it", history.What);
        Assert.Empty(Check(source));
    }

    [Fact]
    public void Growth_announced_by_fanotify_is_not_reported_again_and_the_rest_is()
    {
        var (source, watch) = Source(HealthBaseline.InMemory());
        Assert.Empty(Check(source, HealthTrigger.FirstWatch));

        Announce(watch, source, 2);
        SetCounter(2);
        Assert.Empty(Check(source));

        SetCounter(5); // three errors fanotify never saw (mballoc group errors)
        var sysfs = Assert.Single(Check(source));
        Assert.Equal(ReportSource.Ext4Sysfs, sysfs.Source);
        Assert.Equal(3UL, sysfs.Count);
        var last = Assert.IsType<ReportDetails>(sysfs.Details["last_error"]);
        Assert.Equal("ext4_mb_generate_buddy", last["function"]);
        Assert.Equal(1317L, last["line"]);
    }

    [Fact]
    public void A_counter_lagging_behind_fanotify_never_makes_a_duplicate()
    {
        var (source, watch) = Source(HealthBaseline.InMemory());
        Check(source, HealthTrigger.FirstWatch);

        Announce(watch, source, 2);   // fanotify first; the superblock is written a moment later
        Assert.Empty(Check(source));
        SetCounter(1);
        Assert.Empty(Check(source));
        SetCounter(2);
        Assert.Empty(Check(source));
        SetCounter(3);                // now one more than fanotify announced
        Assert.Equal(1UL, Assert.Single(Check(source)).Count);
    }

    [Fact]
    public void A_restart_reports_only_errors_from_while_it_was_stopped()
    {
        var baseline = HealthBaseline.InMemory();
        var (first, watch) = Source(baseline);
        Check(first, HealthTrigger.FirstWatch);
        Announce(watch, first, 4);
        SetCounter(4);
        Assert.Empty(Check(first));
        first.Dispose();

        var (second, _) = Source(baseline);
        Assert.Empty(Check(second, HealthTrigger.FirstWatch)); // nothing new
        second.Dispose();

        SetCounter(6);
        var (third, _) = Source(baseline);
        var history = Assert.Single(Check(third, HealthTrigger.FirstWatch));
        Assert.Equal(ReportSource.Ext4Superblock, history.Source);
        Assert.Equal(2UL, history.Count);
        Assert.Contains("since ErrorWatch last watched it", history.What);
    }

    [Fact]
    public void Fanotify_reports_published_before_the_first_check_are_matched_once()
    {
        var baseline = HealthBaseline.InMemory();
        var (source, watch) = Source(baseline);
        Announce(watch, source, 1); // read and published before the health thread's first look
        SetCounter(1);
        Assert.Empty(Check(source, HealthTrigger.FirstWatch));
        SetCounter(2);
        Assert.Equal(1UL, Assert.Single(Check(source)).Count);
    }

    [Fact]
    public void Counters_reset_by_e2fsck_count_from_zero()
    {
        var baseline = HealthBaseline.InMemory();
        SetCounter(5, firstTime: 1_600_000_000);
        var (first, _) = Source(baseline);
        Publish(first, Check(first, HealthTrigger.FirstWatch));
        first.Dispose();

        SetCounter(2, firstTime: 1_700_000_000); // e2fsck cleared the record; two new errors since
        var (second, _) = Source(baseline);
        var history = Assert.Single(Check(second, HealthTrigger.FirstWatch));
        Assert.Equal(2UL, history.Count);
    }

    [Fact]
    public void Emergency_read_only_and_shutdown_are_reported_once_each()
    {
        var (source, _) = Source(HealthBaseline.InMemory());
        Assert.Empty(Check(source, HealthTrigger.FirstWatch));

        SetOptions("rw\nerrors=remount-ro\nemergency_ro\n");
        var ro = Assert.Single(Check(source));
        Assert.Equal(ReportSource.Ext4State, ro.Source);
        Assert.Equal(ErrorCategory.ReadOnly, ro.Category);
        Assert.Equal(0UL, ro.Count);
        Assert.Empty(Check(source));

        SetOptions("rw\nshutdown\n");
        var down = Assert.Single(Check(source));
        Assert.Equal(ErrorCategory.Shutdown, down.Category);
        Assert.Equal(108, down.Errno);
    }

    [Fact]
    public void A_state_already_reported_for_this_mount_is_not_reported_again_after_a_restart()
    {
        var baseline = HealthBaseline.InMemory();
        SetOptions("rw\nemergency_ro\n");
        var (first, _) = Source(baseline);
        Assert.Single(Check(first, HealthTrigger.FirstWatch));
        first.Dispose();
        var (second, _) = Source(baseline);
        Assert.Empty(Check(second, HealthTrigger.FirstWatch));
    }

    [Theory]
    [InlineData("rw\nerrors=remount-ro\n", null)]
    [InlineData("ro\nemergency_ro\n", "emergency_ro")]
    [InlineData("rw\nabort\nemergency_ro\n", "emergency_ro")]
    [InlineData("rw\nshutdown\n", "shutdown")]
    [InlineData("rw,errors=remount-ro,emergency_ro", "emergency_ro")]
    public void State_is_read_from_the_options_ext4_shows(string options, string? state) =>
        Assert.Equal(state, Ext4Health.StateOf(options));
}
