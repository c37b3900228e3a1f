using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Store;
using ErrorWatch.Tests.Journal;

namespace ErrorWatch.Tests.Health;

public sealed class HealthBaselineTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("errorwatch-baseline-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Survives_a_restart()
    {
        var first = new HealthBaseline(_dir);
        first.Load();
        first.Ext4("uuid-a", b => b.Reported = 7);
        first.Xfs("uuid-b", b => { b.Instance = "i"; b.GroupSick[3] = 0x40; return b.InodeSick[131] = 0x10; });
        first.MarkDirty();
        Assert.True(first.Save());
        Assert.False(File.Exists(Path.Combine(_dir, HealthBaseline.FileName + ".tmp")));

        var second = new HealthBaseline(_dir);
        second.Load();
        Assert.Null(second.Problem);
        Assert.True(second.HasExt4("uuid-a"));
        Assert.Equal(7UL, second.Ext4("uuid-a", b => b.Reported));
        Assert.Equal(0x40u, second.Xfs("uuid-b", b => b.GroupSick[3]));
        Assert.Equal(0x10u, second.Xfs("uuid-b", b => b.InodeSick[131]));
    }

    [Theory]
    [InlineData("{ not json")]
    [InlineData("{\"version\": 99}")]
    [InlineData("")]
    public void An_unreadable_file_is_set_aside_and_named_never_fatal(string content)
    {
        File.WriteAllText(Path.Combine(_dir, HealthBaseline.FileName), content);
        var baseline = new HealthBaseline(_dir);
        baseline.Load();
        Assert.NotNull(baseline.Problem);
        Assert.Contains(HealthBaseline.FileName, baseline.Problem);
        Assert.False(baseline.HasExt4("anything"));
        Assert.Single(Directory.GetFiles(_dir, HealthBaseline.FileName + ".unreadable-*"));
        baseline.Ext4("x", b => b.Reported = 1);
        baseline.MarkDirty();
        Assert.True(baseline.Save());
    }

    [Fact]
    public void An_unwritable_directory_is_reported_and_kept_dirty_for_a_retry()
    {
        var file = Path.Combine(_dir, "not-a-directory");
        File.WriteAllText(file, "");
        var log = new Recovery.LogCapture();
        var baseline = new HealthBaseline(file, log.Logger);
        baseline.Ext4("x", b => b.Reported = 1);
        baseline.MarkDirty();
        Assert.False(baseline.Save());
        Assert.NotNull(baseline.Problem);
        Assert.True(baseline.IsDirty);

        // Retried (the health loop saves every second): said once, not at each retry; its end said too.
        for (var i = 0; i < 5; i++)
            Assert.False(baseline.Save());
        Assert.Single(log.Messages(Serilog.Events.LogEventLevel.Error), m => m.Contains("Cannot save the health baseline"));
        File.Delete(file);
        Directory.CreateDirectory(file);
        Assert.True(baseline.Save());
        Assert.Null(baseline.Problem);
        Assert.Contains(log.Messages(Serilog.Events.LogEventLevel.Information), m => m.Contains("Saved the health baseline") && m.Contains("again"));
    }

    [Theory]
    [InlineData("/var/lib/errorwatch-a:/var/lib/other", "/var/lib/errorwatch-a")]
    [InlineData("/run/state", "/run/state")]
    [InlineData("", "/var/lib/errorwatch")]
    [InlineData(null, "/var/lib/errorwatch")]
    public void State_directory_follows_systemd(string? variable, string expected) =>
        Assert.Equal(expected, HealthBaseline.DefaultDirectory(variable));
    /// <summary>Two ext4 reports of one filesystem in the store, 3 and 5 errors; returns their ids.</summary>
    private string[] StoreTwoReports()
    {
        using var store = ReportStore.Open(_dir, new StoreOptions(), Serilog.Core.Logger.None);
        string[] ids = ["01935f2a-0000-7000-8000-000000000001", "01935f2a-0000-7000-8000-000000000002"];
        store.Append(JournalTestReports.Full(ids[0]) with { Time = DateTimeOffset.UtcNow });
        var second = JournalTestReports.Full(ids[1]);
        store.Append(second with { Time = DateTimeOffset.UtcNow, Error = second.Error with { Count = 5 } });
        return ids;
    }

    /// <summary>The entry of the filesystem the stored reports are about (UUID and device, as the daemon names it).</summary>
    private static string Key => $"{JournalTestReports.Uuid}@8:17";

    [Theory]
    [InlineData(null)]           // deleted
    [InlineData("{ not json")]   // corrupt: set aside
    public void Without_its_file_the_baseline_is_rebuilt_from_the_store_so_stored_errors_are_not_reported_again(string? content)
    {
        StoreTwoReports();
        if (content is not null)
            File.WriteAllText(Path.Combine(_dir, HealthBaseline.FileName), content);
        var baseline = new HealthBaseline(_dir);
        baseline.Load();
        Assert.Equal(2, baseline.CatchUp(new ReportHistory(_dir)));
        Assert.True(baseline.HasExt4(Key));
        Assert.Equal(8UL, baseline.Ext4(Key, b => b.Reported));
        Assert.True(baseline.Save());

        // Saved, it says which stored reports it holds: the next start counts nothing twice.
        var next = new HealthBaseline(_dir);
        next.Load();
        Assert.Equal(0, next.CatchUp(new ReportHistory(_dir)));
        Assert.Equal(8UL, next.Ext4(Key, b => b.Reported));
    }

    [Fact]
    public void A_baseline_saved_between_two_stored_reports_counts_in_only_the_later_one()
    {
        var ids = StoreTwoReports();
        var first = new HealthBaseline(_dir);
        first.Load();
        first.Ext4(Key, b => b.Reported = 3, ids[0]);
        first.MarkDirty();
        Assert.True(first.Save());

        var next = new HealthBaseline(_dir);
        next.Load();
        Assert.Equal(1, next.CatchUp(new ReportHistory(_dir)));
        Assert.Equal(8UL, next.Ext4(Key, b => b.Reported));
    }

    [Fact]
    public void Filesystems_with_one_UUID_get_an_entry_each_and_one_moved_to_another_device_keeps_its_own()
    {
        var uuid = Guid.NewGuid();
        var (a, b, c) = (new DeviceNumber(7, 1), new DeviceNumber(7, 2), new DeviceNumber(7, 3));
        var first = new HealthBaseline(_dir);
        first.Present(uuid, a);
        first.Present(uuid, b);
        first.Ext4(first.Ext4Key(uuid, a), e => e.Reported = 3);
        first.Ext4(first.Ext4Key(uuid, b), e => e.Reported = 1);
        Assert.NotEqual(first.Ext4Key(uuid, a), first.Ext4Key(uuid, b));
        first.MarkDirty();
        Assert.True(first.Save());

        // Next boot: the first twin's loop device is now 7:3, the second is still 7:2 and watched.
        var second = new HealthBaseline(_dir);
        second.Load();
        second.Present(uuid, c);
        second.Present(uuid, b);
        Assert.Equal(3UL, second.Ext4(second.Ext4Key(uuid, c), e => e.Reported));
        Assert.Equal(1UL, second.Ext4(second.Ext4Key(uuid, b), e => e.Reported));
        // Its old entry moved, not copied.
        Assert.False(second.HasExt4($"{uuid}@{a}"));
        // An entry that names another first error is another filesystem's: never taken over.
        second.Ext4(second.Ext4Key(uuid, c), e => e.FirstErrorTime = 1000);
        second.Absent(uuid, c);
        Assert.False(second.HasExt4(second.Ext4Key(uuid, new DeviceNumber(7, 4), firstErrorTime: 2000)));
        Assert.True(second.HasExt4(second.Ext4Key(uuid, new DeviceNumber(7, 5), firstErrorTime: 1000)));
    }

    [Fact]
    public void An_entry_from_before_devices_were_in_the_key_is_taken_over_by_its_filesystem()
    {
        var uuid = Guid.NewGuid();
        File.WriteAllText(Path.Combine(_dir, HealthBaseline.FileName),
            $$$"""{"version":1,"ext4":{"{{{uuid}}}":{"reported":5,"first_error_time":0,"error_state_reported":false,"updated":"2026-12-01T00:00:00+00:00"}},"xfs":{},"last_report_id":""}""");
        var baseline = new HealthBaseline(_dir);
        baseline.Load();
        var key = baseline.Ext4Key(uuid, new DeviceNumber(8, 17));
        Assert.Equal($"{uuid}@8:17", key);
        Assert.Equal(5UL, baseline.Ext4(key, e => e.Reported));
        Assert.False(baseline.HasExt4(uuid.ToString()));
        Assert.Equal("dev-8:18", baseline.Ext4Key(null, new DeviceNumber(8, 18)));
    }
}
