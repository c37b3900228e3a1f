using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Decoding;
using ErrorWatch.Health;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Modules.Xfs;
using ErrorWatch.Reports;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>
/// Native health sources on real filesystems: ext4's error counter and superblock record
/// reconciled with fanotify (history across restarts, errors fanotify never announces, read-only
/// and shutdown states), and XFS sick bits and forced shutdown found by the health checks.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class NativeHealthTests
{
    private static DaemonHarness Daemon(string stateDirectory, double checkSeconds = 30, params string[] mountPoints) =>
        new(new DaemonOptions
        {
            Watch = new WatchOptions { Include = mountPoints },
            StateDirectory = stateDirectory,
            Health = new HealthOptions { CheckInterval = TimeSpan.FromSeconds(checkSeconds) },
        });

    private static ulong Sum(IEnumerable<CorruptionReport> reports) => reports.Aggregate(0UL, (s, r) => s + r.Error.Count);

    /// <summary>Waits a little past the first check, then returns every report collected.</summary>
    private static List<CorruptionReport> Settle(DaemonHarness daemon, TimeSpan quiet)
    {
        var all = new List<CorruptionReport>();
        var deadline = DateTime.UtcNow + quiet;
        while (DateTime.UtcNow < deadline)
            if (daemon.Reports.TryTake(out var r, 100))
                all.Add(r);
        return all;
    }

    [LoopFact]
    public void An_error_while_stopped_is_reported_once_at_the_next_start_and_a_quiet_restart_reports_nothing()
    {
        using var scratch = new ScratchDirectory();
        var state = Path.Combine(scratch.Path, "state");
        var fs = scratch.Ext4("offline");

        // First run: one error through fanotify, accounted in the baseline.
        using (var first = Daemon(state, 30, fs.MountPoint))
        {
            var before = fs.ErrorsCount;
            fs.TriggerFsError("while running");
            var seen = first.CollectMatchingErrorsCount(fs, before, atLeast: 1);
            Assert.All(seen, r => Assert.Equal(ReportSource.Fanotify, r.Source));
        }
        Assert.True(File.Exists(Path.Combine(state, HealthBaseline.FileName)));

        // Two errors while ErrorWatch is not running.
        var stoppedAt = fs.ErrorsCount;
        fs.TriggerFsError("while stopped 1");
        fs.TriggerFsError("while stopped 2");
        Assert.Equal(stoppedAt + 2, fs.ErrorsCountReaching(stoppedAt + 2, TimeSpan.FromSeconds(10)));

        using (var second = Daemon(state, 30, fs.MountPoint))
        {
            var reports = second.Collect(r => r.Any(x => x.Source == ReportSource.Ext4Superblock), TimeSpan.FromSeconds(10));
            reports.AddRange(Settle(second, TimeSpan.FromSeconds(2)));
            var history = Assert.Single(reports, r => r.Source == ReportSource.Ext4Superblock);
            Assert.Equal(2UL, history.Error.Count);
            Assert.Equal(117, history.Error.Errno);
            Assert.Contains("since ErrorWatch last watched it", history.Finding);
            var detail = Assert.IsType<ReportDetails>(history.Details[ReportSource.Ext4Superblock]);
            var last = Assert.IsType<ReportDetails>(detail["last_error"]);
            Assert.Equal("trigger_test_error", last["function"]);
            Assert.Equal(2UL, Sum(reports.Where(r => r.Filesystem.Device == fs.LoopDevice)));
        }

        using (var third = Daemon(state, 30, fs.MountPoint))
        {
            var reports = Settle(third, TimeSpan.FromSeconds(3));
            Assert.True(third.Daemon.Health.Checks > 0, "the first check ran");
            Assert.DoesNotContain(reports, r => r.Filesystem.Device == fs.LoopDevice);
        }
    }

    [LoopFact]
    public void Two_filesystems_with_one_UUID_keep_their_own_baseline_across_restarts()
    {
        // Cloned images (or LVM snapshots) share the UUID. Each must be counted on its own: a shared
        // entry under-counted one and invented "history" for the other at the next start.
        using var scratch = new ScratchDirectory();
        var state = Path.Combine(scratch.Path, "state");
        var (original, clone) = scratch.Ext4Twins("twin");

        using (var first = Daemon(state, 30, original.MountPoint, clone.MountPoint))
        {
            var a0 = original.ErrorsCount;
            var b0 = clone.ErrorsCount;
            for (var i = 0; i < 3; i++)
                original.TriggerFsError($"original {i}");
            clone.TriggerFsError("clone");
            var reports = first.CollectMatchingErrorsCount(original, a0, atLeast: 1);
            reports.AddRange(first.CollectMatchingErrorsCount(clone, b0, atLeast: 1));
            Assert.Equal(3UL, Sum(reports.Where(r => r.Filesystem.Device == original.LoopDevice)));
            Assert.Equal(1UL, Sum(reports.Where(r => r.Filesystem.Device == clone.LoopDevice)));
        }

        // One more error on each while stopped: each is reported once at the next start, as history of its own.
        original.TriggerFsError("original while stopped");
        clone.TriggerFsError("clone while stopped");
        using (var second = Daemon(state, 30, original.MountPoint, clone.MountPoint))
        {
            var reports = second.Collect(r => r.Count(x => x.Source == ReportSource.Ext4Superblock) >= 2, TimeSpan.FromSeconds(10));
            reports.AddRange(Settle(second, TimeSpan.FromSeconds(2)));
            Assert.Equal(1UL, Sum(reports.Where(r => r.Filesystem.Device == original.LoopDevice)));
            Assert.Equal(1UL, Sum(reports.Where(r => r.Filesystem.Device == clone.LoopDevice)));
            Assert.All(reports, r => Assert.Equal(ReportSource.Ext4Superblock, r.Source));
        }

        // A quiet restart reports nothing on either, and no counter reset is taken for e2fsck.
        using (var third = Daemon(state, 30, original.MountPoint, clone.MountPoint))
        {
            var reports = Settle(third, TimeSpan.FromSeconds(3));
            Assert.True(third.Daemon.Health.Checks > 0, "the first check ran");
            Assert.DoesNotContain(reports, r => r.Filesystem.Device == original.LoopDevice || r.Filesystem.Device == clone.LoopDevice);
        }
    }

    [LoopFact]
    public void Errors_recorded_before_the_filesystem_was_ever_watched_are_reported_as_history()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("history");
        fs.TriggerFsError("old 1");
        fs.TriggerFsError("old 2");
        fs.TriggerFsError("old 3");

        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), 30, fs.MountPoint);
        var health = Assert.Single(daemon.Capabilities.Health).Value;
        Assert.StartsWith("errors=continue; ", health);
        Assert.Contains($"/sys/fs/ext4/{fs.KernelName}/errors_count (POLLPRI)", health);
        var reports = daemon.Collect(r => r.Any(x => x.Source == ReportSource.Ext4Superblock), TimeSpan.FromSeconds(10));
        var history = Assert.Single(reports, r => r.Source == ReportSource.Ext4Superblock);
        Assert.Equal(3UL, history.Error.Count);
        Assert.Contains("before ErrorWatch watched it", history.Finding);
        Assert.Equal(Severity.Critical, history.Severity);
    }

    [LoopFact]
    public void Counts_from_fanotify_and_sysfs_add_up_to_the_errors_count_growth_over_a_mixed_run()
    {
        using var scratch = new ScratchDirectory();
        // Group 0's descriptor claims 100 free blocks while its bitmap has thousands: the first
        // allocation there makes mballoc call ext4_grp_locked_error, which bumps errors_count but
        // never reaches fanotify before Linux 7.0. no_prefetch_block_bitmaps keeps that lazy until we write.
        var fs = scratch.Ext4("mixed", "errors=continue,no_prefetch_block_bitmaps");
        fs.CorruptOffline("set_bg 0 free_blocks_count 100", "set_bg 0 checksum calc");

        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), 30, fs.MountPoint);
        var before = fs.ErrorsCount;
        Assert.Equal(0UL, before);
        fs.TriggerFsError("fanotify 1");
        fs.TriggerFsError("fanotify 2");
        using (var file = File.Create(Path.Combine(fs.MountPoint, "data")))
        {
            file.Write(new byte[1 << 20]);
            file.Flush(flushToDisk: true);
        }
        Tool.Check("sync");
        fs.TriggerFsError("fanotify 3");

        var reports = daemon.Collect(r =>
            r.Any(x => x.Source == ReportSource.Ext4Sysfs) && Sum(r) == fs.ErrorsCount - before, TimeSpan.FromSeconds(15));
        var growth = fs.ErrorsCount - before;
        Assert.True(growth >= 4, $"errors_count grew by {growth}; the mballoc error did not happen");
        Assert.Equal(growth, Sum(reports));
        Assert.Equal(3UL, Sum(reports.Where(r => r.Source == ReportSource.Fanotify)));
        var sysfs = Assert.Single(reports, r => r.Source == ReportSource.Ext4Sysfs);
        Assert.Equal(growth - 3, sysfs.Error.Count);
        Assert.Contains("not announced through fanotify", sysfs.Finding);

        // Nothing more arrives later (no double counting after the counter settles).
        var later = Settle(daemon, TimeSpan.FromSeconds(2));
        Assert.Equal(0UL, Sum(later));
    }

    [LoopFact]
    public void Sysfs_only_error_carries_the_last_error_site()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("site", "errors=continue,no_prefetch_block_bitmaps");
        fs.CorruptOffline("set_bg 0 free_blocks_count 100", "set_bg 0 checksum calc");
        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), 30, fs.MountPoint);

        File.WriteAllBytes(Path.Combine(fs.MountPoint, "data"), new byte[1 << 20]);
        Tool.Check("sync");

        var reports = daemon.Collect(r => r.Any(x => x.Source == ReportSource.Ext4Sysfs), TimeSpan.FromSeconds(15));
        var sysfs = Assert.Single(reports, r => r.Source == ReportSource.Ext4Sysfs);
        var detail = Assert.IsType<ReportDetails>(sysfs.Details[ReportSource.Ext4Sysfs]);
        var last = Assert.IsType<ReportDetails>(detail["last_error"]);
        Assert.Equal("ext4_mb_generate_buddy", last["function"]);
        Assert.Equal("EFSCORRUPTED", last["code"]);
        Assert.Equal(117, sysfs.Error.Errno);
        Assert.Equal(ErrorCategory.Corruption, sysfs.Category);
    }

    [LoopFact]
    public void Remount_ro_filesystem_reports_its_first_error_and_the_read_only_transition()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("remountro", "errors=remount-ro");
        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), 30, fs.MountPoint);

        fs.TriggerFsError("first and last", mayShutDown: true);

        var reports = daemon.Collect(r => r.Any(x => x.Source == ReportSource.Fanotify) && r.Any(x => x.Source == ReportSource.Ext4State), TimeSpan.FromSeconds(10));
        var error = Assert.Single(reports, r => r.Source == ReportSource.Fanotify);
        Assert.Equal(117, error.Error.Errno);
        var state = Assert.Single(reports, r => r.Source == ReportSource.Ext4State);
        Assert.Equal(ErrorCategory.ReadOnly, state.Category);
        Assert.Equal(Severity.Critical, state.Severity);
        Assert.Equal(0UL, state.Error.Count);
        Assert.Equal("readonly", state.EventName);
        Assert.Contains("read-only", state.Finding);
        var detail = Assert.IsType<ReportDetails>(state.Details[ReportSource.Ext4State]);
        Assert.Equal("emergency_ro", detail["state"]);
        Assert.Equal("remount-ro", detail["errors_behavior"]);
        Assert.Throws<IOException>(() => File.WriteAllText(Path.Combine(fs.MountPoint, "x"), "x"));

        // The state is reported once, not at every check.
        daemon.Daemon.Health.RequestCheck(daemon.Daemon.Inventory.Watches.Single().Superblock, TimeSpan.Zero, HealthTrigger.Periodic);
        Assert.DoesNotContain(Settle(daemon, TimeSpan.FromSeconds(2)), r => r.Source == ReportSource.Ext4State);
    }

    [LoopFact]
    public void Counter_checks_during_a_storm_never_take_queued_fanotify_events_for_unannounced_errors()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("storm-race");
        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), 30, fs.MountPoint);
        var before = fs.ErrorsCount;
        // The counter notifies (POLLPRI) all through the storm, so checks run while events are still being queued.
        fs.TriggerFsErrors(3000);
        var reports = daemon.CollectMatchingErrorsCount(fs, before, atLeast: 3000);
        reports.AddRange(Settle(daemon, TimeSpan.FromSeconds(1)));
        Assert.True(daemon.Daemon.Health.Checks > 1, "the counter was checked during the storm");
        Assert.DoesNotContain(reports, r => r.Source == ReportSource.Ext4Sysfs);
        Assert.Equal(fs.ErrorsCount - before, Sum(reports));
    }

    [LoopFact]
    public void Unmounting_a_watched_ext4_stops_its_counter_checks_instead_of_spinning()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("gone");
        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), 30, fs.MountPoint);
        Settle(daemon, TimeSpan.FromMilliseconds(500));
        fs.TriggerFsErrors(20);
        fs.Unmount(); // kernfs now answers POLLERR|POLLPRI on the old errors_count fd, forever

        var before = daemon.Daemon.Health.Checks;
        Settle(daemon, TimeSpan.FromSeconds(2));
        var checks = daemon.Daemon.Health.Checks - before;
        Assert.True(checks < 10, $"{checks} health checks in 2 s after the unmount");
        Assert.Empty(daemon.Daemon.Inventory.Watches);
    }

    [LoopFact]
    public void Ext4_shutdown_without_any_error_event_is_reported()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("shutdown");
        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), 30, fs.MountPoint);
        Settle(daemon, TimeSpan.FromMilliseconds(500));

        fs.ShutDown(); // 6.18 sends no FAN_FS_ERROR for this; the kernel log line triggers the check

        var reports = daemon.Collect(r => r.Any(x => x.Source == ReportSource.Ext4State), TimeSpan.FromSeconds(10));
        var state = Assert.Single(reports, r => r.Source == ReportSource.Ext4State);
        Assert.Equal(ErrorCategory.Shutdown, state.Category);
        Assert.Equal(108, state.Error.Errno);
        Assert.Equal("shutdown", Assert.IsType<ReportDetails>(state.Details[ReportSource.Ext4State])["state"]);
    }

    [LoopFact]
    public void Xfs_directory_block_corruption_is_reported_with_the_inode_and_directory_within_the_check_interval()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("xfsdir");
        var dir = Path.Combine(fs.MountPoint, "d");
        Directory.CreateDirectory(dir);
        for (var i = 0; i < 200; i++)
            File.WriteAllText(Path.Combine(dir, $"file_with_a_long_name_{i}"), "");
        var ino = Ext4ErrorTests.Inode(dir);
        fs.Unmount();
        Tool.Check("xfs_db", "-x", "-c", "path /d", "-c", "dblock 0", "-c", "write -d dhdr.hdr.magic 0", fs.Image);
        fs.Mount("");

        var interval = 5.0;
        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), interval, fs.MountPoint);
        Settle(daemon, TimeSpan.FromMilliseconds(500));
        Assert.NotEqual(0, Tool.Run("ls", dir).ExitCode);

        var reports = daemon.Collect(r => r.Any(x => x.Source == ReportSource.XfsHealth && x.Object.Inode == ino), TimeSpan.FromSeconds(interval + 5));
        var sick = Assert.Single(reports, r => r.Source == ReportSource.XfsHealth && r.Object.Inode == ino);
        Assert.Contains($"inode {ino} directory", sick.Finding);
        Assert.Equal(117, sick.Error.Errno);
        Assert.Equal(ErrorCategory.Corruption, sick.Category);
        Assert.Equal("xfs", sick.Decoder);
        var detail = Assert.IsType<ReportDetails>(sick.Details[ReportSource.XfsHealth]);
        Assert.Contains("dir", Assert.IsType<string[]>(detail["sick"]));
        // The XFS decoder's own record: the inode's health bits.
        var xfs = Assert.IsType<ReportDetails>(sick.Details["xfs"]);
        var health = Assert.IsType<ReportDetails>(xfs["health"]);
        var inodeHealth = Assert.IsType<ReportDetails>(health[$"inode_{ino}"]);
        Assert.Equal("unhealthy", inodeHealth["state"]);
    }

    [LoopFact]
    public void Xfs_forced_shutdown_is_reported()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("xfsdown");
        using var daemon = Daemon(Path.Combine(scratch.Path, "state"), 30, fs.MountPoint);
        Settle(daemon, TimeSpan.FromMilliseconds(500));

        fs.ShutDown();

        var reports = daemon.Collect(r => r.Any(x => x.Category == ErrorCategory.Shutdown), TimeSpan.FromSeconds(10));
        var down = Assert.Single(reports, r => r.Category == ErrorCategory.Shutdown);
        Assert.Equal(ReportSource.XfsHealth, down.Source);
        Assert.Equal(108, down.Error.Errno);
        Assert.Equal(Severity.Critical, down.Severity);
        Assert.Contains("shut down", down.Finding);
    }
}
