using System.Text.Json;
using ErrorWatch.Bus;
using ErrorWatch.Cli.Clients;

namespace ErrorWatch.Tests.DBus;

/// <summary>A clock the test moves by hand.</summary>
internal sealed class ManualClock : TimeProvider
{
    public DateTimeOffset Now { get; set; } = new(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);

    public override DateTimeOffset GetUtcNow() => Now;

    public void Advance(TimeSpan span) => Now += span;
}

/// <summary>errorwatch notify's coalescing: at most one notification per filesystem per interval, follow-ups counting the rest.</summary>
public sealed class NotificationThrottleTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(60);
    private readonly ManualClock _clock = new();
    private readonly NotificationThrottle<string> _throttle;

    public NotificationThrottleTests() => _throttle = new NotificationThrottle<string>(Interval, _clock);

    [Fact]
    public void The_first_report_is_shown_at_once_and_nothing_follows_a_quiet_interval()
    {
        var n = _throttle.Offer("fs-a", "report 1", errors: 1, urgent: true);

        Assert.NotNull(n);
        Assert.False(n.FollowUp);
        Assert.Equal("fs-a", n.Key);
        Assert.Equal("report 1", n.Latest);
        Assert.Equal(1, n.Reports);
        Assert.Equal(1UL, n.Errors);
        Assert.True(n.Urgent);
        Assert.Equal(0u, n.ReplacesId);
        Assert.Null(_throttle.NextDue);
        _clock.Advance(Interval * 3);
        Assert.Empty(_throttle.TakeDue());
    }

    [Fact]
    public void Ten_more_within_the_interval_give_exactly_one_follow_up_counting_ten_at_its_end()
    {
        Assert.NotNull(_throttle.Offer("fs-a", "report 0", 1, urgent: false));
        for (var i = 1; i <= 10; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(5));
            Assert.Null(_throttle.Offer("fs-a", $"report {i}", 1, urgent: i == 3));
        }
        Assert.Equal(_clock.Now - TimeSpan.FromSeconds(50) + Interval, _throttle.NextDue);

        _clock.Advance(TimeSpan.FromSeconds(9)); // 59 s after the first
        Assert.Empty(_throttle.TakeDue());
        _clock.Advance(TimeSpan.FromSeconds(1));
        var followUp = Assert.Single(_throttle.TakeDue());
        Assert.True(followUp.FollowUp);
        Assert.Equal(10, followUp.Reports);
        Assert.Equal(10UL, followUp.Errors);
        Assert.Equal("report 10", followUp.Latest);
        Assert.True(followUp.Urgent); // one of them was
        Assert.Empty(_throttle.TakeDue());
        Assert.Null(_throttle.NextDue);
        _clock.Advance(Interval * 2);
        Assert.Empty(_throttle.TakeDue());
    }

    [Fact]
    public void Errors_are_summed_as_weighed_not_reports_counted()
    {
        _throttle.Offer("fs-a", "first", 1, false);
        _throttle.Offer("fs-a", "folded", 4, false);
        _throttle.Offer("fs-a", "one more", 1, false);
        _clock.Advance(Interval);
        var followUp = Assert.Single(_throttle.TakeDue());
        Assert.Equal(2, followUp.Reports);
        Assert.Equal(5UL, followUp.Errors);
    }

    [Fact]
    public void A_follow_up_opens_the_next_interval_so_there_is_at_most_one_per_interval()
    {
        _throttle.Offer("fs-a", "r0", 1, false);
        _clock.Advance(TimeSpan.FromSeconds(30));
        _throttle.Offer("fs-a", "r1", 1, false);
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Single(_throttle.TakeDue());

        // Right after the follow-up: counted, not shown.
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Null(_throttle.Offer("fs-a", "r2", 1, false));
        _clock.Advance(TimeSpan.FromSeconds(58));
        Assert.Empty(_throttle.TakeDue());
        _clock.Advance(TimeSpan.FromSeconds(1));
        var second = Assert.Single(_throttle.TakeDue());
        Assert.Equal("r2", second.Latest);
        Assert.Equal(1UL, second.Errors);

        // A whole quiet interval later, the next report is shown at once again.
        _clock.Advance(Interval);
        Assert.Empty(_throttle.TakeDue());
        var fresh = _throttle.Offer("fs-a", "r3", 1, false);
        Assert.NotNull(fresh);
        Assert.False(fresh.FollowUp);
    }

    [Fact]
    public void A_report_after_an_overdue_follow_up_goes_out_with_it_at_once()
    {
        _throttle.Offer("fs-a", "r0", 1, false);
        _throttle.Offer("fs-a", "r1", 1, false);
        _clock.Advance(Interval + TimeSpan.FromSeconds(1)); // nobody asked TakeDue yet
        var n = _throttle.Offer("fs-a", "r2", 1, false);
        Assert.NotNull(n);
        Assert.True(n.FollowUp);
        Assert.Equal(2UL, n.Errors);
        Assert.Equal("r2", n.Latest);
        Assert.Empty(_throttle.TakeDue());
    }

    [Fact]
    public void Different_filesystems_are_throttled_independently()
    {
        Assert.NotNull(_throttle.Offer("fs-a", "a0", 1, false));
        _clock.Advance(TimeSpan.FromSeconds(10));
        var b = _throttle.Offer("fs-b", "b0", 1, true);
        Assert.NotNull(b); // fs-a's interval does not hold fs-b back
        Assert.False(b.FollowUp);
        Assert.Null(_throttle.Offer("fs-a", "a1", 1, false));
        Assert.Null(_throttle.Offer("fs-b", "b1", 1, false));
        Assert.Null(_throttle.Offer("fs-b", "b2", 1, false));

        _clock.Advance(TimeSpan.FromSeconds(50)); // fs-a's interval ends; fs-b's has 10 s to go
        var a = Assert.Single(_throttle.TakeDue());
        Assert.Equal(("fs-a", 1UL, "a1"), (a.Key, a.Errors, a.Latest));
        Assert.Equal(_clock.Now + TimeSpan.FromSeconds(10), _throttle.NextDue);
        _clock.Advance(TimeSpan.FromSeconds(10));
        var bFollowUp = Assert.Single(_throttle.TakeDue());
        Assert.Equal(("fs-b", 2UL, "b2"), (bFollowUp.Key, bFollowUp.Errors, bFollowUp.Latest));
    }

    [Fact]
    public void Each_notification_replaces_the_previous_one_of_its_filesystem()
    {
        var first = _throttle.Offer("fs-a", "a0", 1, true)!;
        Assert.Equal(0u, first.ReplacesId);
        _throttle.Delivered("fs-a", 41);
        Assert.NotNull(_throttle.Offer("fs-b", "b0", 1, true));
        _throttle.Delivered("fs-b", 42);

        _throttle.Offer("fs-a", "a1", 1, true);
        _clock.Advance(Interval);
        var followUp = Assert.Single(_throttle.TakeDue());
        Assert.Equal(41u, followUp.ReplacesId);
        _throttle.Delivered("fs-a", 41); // servers answer with the id they replaced

        // Long after: still the same desktop notification, updated rather than stacked.
        _clock.Advance(Interval * 10);
        Assert.Equal(41u, _throttle.Offer("fs-a", "a2", 1, true)!.ReplacesId);
        Assert.Equal(42u, _throttle.Offer("fs-b", "b1", 1, true)!.ReplacesId);
    }

    [Fact]
    public void An_unshown_notification_folds_into_the_next_of_its_filesystem()
    {
        var first = new ThrottledNotification<string>("fs-a", "a0", 1, 1, Urgent: true, FollowUp: false, ReplacesId: 0);
        var followUp = new ThrottledNotification<string>("fs-a", "a5", 5, 5, Urgent: false, FollowUp: true, ReplacesId: 0);
        var both = followUp.Including(first);
        Assert.Equal(("a5", 6, 6UL, true, false), (both.Latest, both.Reports, both.Errors, both.Urgent, both.FollowUp));
    }

    [Fact]
    public void A_non_positive_interval_is_refused() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new NotificationThrottle<string>(TimeSpan.Zero, _clock));
}

/// <summary>What a desktop notification says for a report, and how a ReportAdded a{sv} becomes JSON.</summary>
public sealed class DesktopNotificationTests
{
    private static AddedReport Report(string reportEvent, params string[] mountpoints) => new("/io/github/errorwatch/ErrorWatch1/filesystems/sdb1",
        new Dictionary<string, object?>
        {
            ["id"] = "01a1fe06-c39f-78c5-8b3f-673774ed2497",
            ["event"] = reportEvent,
            ["summary"] = "ext4 /dev/sdb1 (/srv) reports metadata corruption (EUCLEAN/EFSCORRUPTED) in inode 12, 1 error",
            ["filesystem"] = new Dictionary<string, object?>
            {
                ["device"] = "/dev/sdb1",
                ["major_minor"] = "8:17",
                ["uuid"] = "c5fb39c0-2627-420d-9de6-cc73e599ba07",
                ["type"] = "ext4",
                ["mountpoints"] = mountpoints.Cast<object?>().ToList(),
            },
            ["error"] = new Dictionary<string, object?> { ["errno"] = 117L, ["count"] = 3L },
        });

    [Theory]
    [InlineData("corruption", true)]
    [InlineData("shutdown", true)]
    [InlineData("readonly", true)]
    [InlineData("io", false)]
    [InlineData("other", false)]
    [InlineData("events-lost", false)]
    public void Corruption_shutdown_and_readonly_are_critical(string reportEvent, bool critical) =>
        Assert.Equal(critical, DesktopNotification.IsCritical(reportEvent));

    [Fact]
    public void The_first_notification_names_the_mount_point_type_and_device_and_carries_the_report_summary()
    {
        var report = Report("corruption", "/srv", "/mnt/other");
        var n = DesktopNotification.For(new ThrottledNotification<AddedReport>(report.FilesystemKey, report, 1, 3, true, false, 7));
        Assert.Equal("Filesystem errors on /srv (ext4 /dev/sdb1)", n.Summary);
        Assert.Equal(report.Summary, n.Body);
        Assert.True(n.Critical);
        Assert.Equal(7u, n.ReplacesId);
        Assert.Equal("c5fb39c0-2627-420d-9de6-cc73e599ba07/8:17", n.Key);
        Assert.Equal(3UL, report.ErrorCount);
    }

    [Fact]
    public void A_follow_up_says_how_many_more_errors()
    {
        var report = Report("io", "/srv");
        var n = DesktopNotification.For(new ThrottledNotification<AddedReport>("k", report, 5, 5, false, true, 9));
        Assert.Equal("5 more errors on /srv (ext4 /dev/sdb1)", n.Summary);
        Assert.Equal("Latest: " + report.Summary, n.Body);
        Assert.False(n.Critical);
        Assert.Equal("1 more error on /srv (ext4 /dev/sdb1)", DesktopNotification.For(new ThrottledNotification<AddedReport>("k", report, 1, 1, false, true, 9)).Summary);
    }

    [Fact]
    public void Without_a_mount_point_the_device_is_named_and_state_changes_have_their_own_words()
    {
        Assert.Equal("Filesystem errors on /dev/sdb1 (ext4)", DesktopNotification.For(new ThrottledNotification<AddedReport>("k", Report("corruption"), 1, 1, true, false, 0)).Summary);
        Assert.Equal("Filesystem shut down: /srv (ext4 /dev/sdb1)", DesktopNotification.For(new ThrottledNotification<AddedReport>("k", Report("shutdown", "/srv"), 1, 1, true, false, 0)).Summary);
        Assert.Equal("Filesystem now read-only: /srv (ext4 /dev/sdb1)", DesktopNotification.For(new ThrottledNotification<AddedReport>("k", Report("readonly", "/srv"), 1, 1, true, false, 0)).Summary);
    }

    [Fact]
    public void Markup_in_report_text_is_escaped_for_servers_that_read_the_body_as_markup() =>
        Assert.Equal("/mnt/&lt;b&gt;x&amp;y", DesktopNotifier.EscapeMarkup("/mnt/<b>x&y"));

    [Fact]
    public void Bus_values_become_json_with_nested_dictionaries_as_objects_and_lists_as_arrays()
    {
        var report = Report("corruption", "/srv");
        using var doc = JsonDocument.Parse(report.ToJson());
        var r = doc.RootElement;
        Assert.Equal(["id", "event", "summary", "filesystem", "error"], r.EnumerateObject().Select(p => p.Name));
        Assert.Equal("/srv", r.GetProperty("filesystem").GetProperty("mountpoints")[0].GetString());
        Assert.Equal(117, r.GetProperty("error").GetProperty("errno").GetInt32());
        Assert.Equal("[1,true,\"é\",null,[2.5]]", System.Text.Encoding.UTF8.GetString(
            BusValueJson.ToUtf8(new List<object?> { (byte)1, true, "é", null, new object?[] { 2.5 } })));
    }
}
