using ErrorWatch.Cli.Demo;
using ErrorWatch.Decoding;
using ErrorWatch.Reports;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>
/// Real ext4 errors on scratch loop devices, read by the real daemon: the kinds of error LTP
/// fanotify22 and the shared fixtures cover, each checked for attribution and for counts that
/// equal the growth of /sys/fs/ext4/&lt;dev&gt;/errors_count.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class Ext4ErrorTests
{
    [LoopFact]
    public void Trigger_fs_error_is_a_whole_filesystem_corruption_report_with_the_right_identity()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("fswide");
        var uuid = Guid.Parse(Tool.Check("blkid", "-p", "-s", "UUID", "-o", "value", fs.Image).Trim());
        using var daemon = DaemonHarness.Watching(fs.MountPoint);
        var baseline = fs.ErrorsCount;

        for (var i = 0; i < 3; i++)
            fs.TriggerFsError();

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 3);
        Assert.Equal(3UL, fs.ErrorsCount - baseline);
        Assert.Equal(3UL, reports.Aggregate(0UL, (s, r) => s + r.Error.Count));
        Assert.All(reports, r =>
        {
            Assert.Equal("fanotify", r.Source);
            Assert.Equal(117, r.Error.Errno);
            Assert.Equal("EUCLEAN", r.Error.Name);
            Assert.Equal(ErrorCategory.Corruption, r.Category);
            Assert.Equal(Severity.Critical, r.Severity);
            Assert.Equal("filesystem", r.Object.Scope);
            Assert.Null(r.Object.Path);
            Assert.Equal(fs.LoopDevice, r.Filesystem.Device);
            Assert.Equal(fs.Device, r.Filesystem.MajorMinor);
            Assert.Equal(uuid, r.Filesystem.Uuid);
            Assert.Equal("ext4", r.Filesystem.Type);
            Assert.Contains(fs.MountPoint, r.Filesystem.Mountpoints.Select(m => m.Text));
            Assert.False(r.RaisedByErrorWatch);
            var ext4 = Assert.IsType<ReportDetails>(r.Details["ext4"]);
            Assert.Equal("continue", ext4["errors_behavior"]);
        });
        // ext4 writes its last-error record (sysfs) from deferred work, so the first report may be
        // decoded before it exists; a later one carries it.
        Assert.Contains(reports, r => r.Details["ext4"] is ReportDetails ext4 && ext4["last_error"] is ReportDetails last
            && (string?)last["function"] == "trigger_test_error");
    }

    [LoopFact]
    public void Zeroed_extent_header_reports_the_inode_and_records_why_no_path_was_found()
    {
        using var scratch = new ScratchDirectory();
        ulong ino = 0;
        var fs = scratch.Ext4("extent", prepare: root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "dir", "broken"));
            ino = Inode(Path.Combine(root, "dir", "broken"));
        });
        fs.CorruptOffline($"sif <{ino}> block[0] 0");
        using var daemon = DaemonHarness.Watching(fs.MountPoint);
        var baseline = fs.ErrorsCount;

        Tool.Run("ls", Path.Combine(fs.MountPoint, "dir", "broken"));

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 1);
        var first = reports.First(r => !r.RaisedByErrorWatch);
        Assert.Equal(117, first.Error.Errno);
        Assert.Equal(ino, first.Object.Inode);
        Assert.Equal("inode", first.Object.Scope);
        Assert.NotNull(first.Object.Generation);
        Assert.Equal(fs.LoopDevice, first.Filesystem.Device);
        // The inode cannot be read, so there is no path; the failure says why instead
        // (6.18 answers ESTALE: ext4's handle decoding maps the failed iget to it).
        Assert.Null(first.Object.Path);
        Assert.Matches("ESTALE|EUCLEAN", first.Object.PathError);
        Assert.Equal(fs.ErrorsCount - baseline, reports.Aggregate(0UL, (s, r) => s + r.Error.Count));
    }

    [LoopFact]
    public void Directory_block_checksum_failure_names_the_directory_by_path()
    {
        using var scratch = new ScratchDirectory();
        ulong ino = 0;
        var fs = scratch.Ext4("dirblock", prepare: root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "projects", "reports"));
            for (var i = 0; i < 5; i++)
                File.WriteAllText(Path.Combine(root, "projects", "reports", $"q{i}.txt"), "x");
            ino = Inode(Path.Combine(root, "projects", "reports"));
        });
        fs.CorruptOffline("zap_block -f /projects/reports -p 0x41 0");
        using var daemon = DaemonHarness.Watching(fs.MountPoint);
        var baseline = fs.ErrorsCount;

        Tool.Run("ls", Path.Combine(fs.MountPoint, "projects", "reports"));

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 1);
        var report = Assert.Single(reports, r => r.Object.Inode == ino);
        Assert.Contains(report.Error.Errno, new[] { 74, 117 });
        Assert.Equal(ErrorCategory.Corruption, report.Category);
        Assert.Equal(Path.Combine(fs.MountPoint, "projects", "reports"), report.Object.Path?.Text);
        Assert.Null(report.Object.PathError);
        Assert.Equal(fs.ErrorsCount - baseline, reports.Aggregate(0UL, (s, r) => s + r.Error.Count));
    }

    [LoopFact]
    public void Corrupted_inode_checksum_is_reported_as_EBADMSG_on_that_inode()
    {
        using var scratch = new ScratchDirectory();
        ulong ino = 0;
        var fs = scratch.Ext4("badcrc", prepare: root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "photos"));
            File.WriteAllText(Path.Combine(root, "photos", "cat.jpg"), "meow");
            ino = Inode(Path.Combine(root, "photos"));
        });
        fs.CorruptOffline($"sif <{ino}> checksum 0x1234");
        using var daemon = DaemonHarness.Watching(fs.MountPoint);
        var baseline = fs.ErrorsCount;

        Tool.Run("stat", Path.Combine(fs.MountPoint, "photos", "cat.jpg"));

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 1);
        var report = reports.First(r => !r.RaisedByErrorWatch);
        Assert.Equal(74, report.Error.Errno);
        Assert.Equal("EBADMSG", report.Error.Name);
        Assert.Equal("EFSBADCRC", report.Error.Alias);
        Assert.Equal(ino, report.Object.Inode);
        Assert.Equal(fs.ErrorsCount - baseline, reports.Aggregate(0UL, (s, r) => s + r.Error.Count));
    }

    [LoopFact]
    public void Remount_abort_is_a_shutdown_report()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("abort");
        using var daemon = DaemonHarness.Watching(fs.MountPoint);
        var baseline = fs.ErrorsCount;

        fs.Remount("abort");

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 1);
        var report = Assert.Single(reports);
        Assert.Equal(108, report.Error.Errno);
        Assert.Equal("ESHUTDOWN", report.Error.Name);
        Assert.Equal(ErrorCategory.Shutdown, report.Category);
        Assert.Equal(Severity.Critical, report.Severity);
        Assert.Equal("filesystem", report.Object.Scope);
        Assert.Equal(1UL, fs.ErrorsCount - baseline);
    }

    [LoopFact]
    public void Errors_from_many_processes_are_all_counted()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("many");
        using var daemon = DaemonHarness.Watching(fs.MountPoint);
        var baseline = fs.ErrorsCount;

        // Each trigger comes from its own tee process: events do not merge across pids.
        for (var i = 0; i < 40; i++)
            fs.TriggerFsError();

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 40);
        Assert.Equal(40UL, fs.ErrorsCount - baseline);
        Assert.Equal(40UL, reports.Aggregate(0UL, (s, r) => s + r.Error.Count));
        Assert.Equal(reports.Count, reports.Select(r => r.Id).Distinct().Count());
    }

    internal static ulong Inode(string path) => ulong.Parse(Tool.Check("stat", "-c", "%i", path).Trim());
}
