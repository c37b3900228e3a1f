using System.Text;
using System.Text.Json;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Reports;
using Serilog;
using static ErrorWatch.Tests.Journal.JournalTestReports;

namespace ErrorWatch.Tests.Journal;

/// <summary>
/// Entries through libsystemd into a real journald, read back with journalctl. Every test tags its
/// entries with a fresh report id or host, so runs and other writers never mix.
/// </summary>
[Collection(EndToEnd.ScratchCollection.Name)]
public class JournaldTests(JournaldFixture journald)
{
    private static string Tag() => "ewtest-" + Guid.NewGuid().ToString("N");

    [JournaldFact]
    public void Report_ArrivesWithEveryFieldByteExact()
    {
        var id = Tag();
        var report = Full(id);
        var journal = new SdJournal();
        Assert.True(journal.IsAvailable, journal.UnavailableReason + "\n" + journald.Output);
        var fallback = new LineWriter();
        new JournalSink(journal, new JournalFallback(fallback)).Publish(report);
        Assert.Equal("", fallback.ToString());

        var entry = Assert.Single(Journalctl.WaitFor(1, "MESSAGE_ID=" + ReportJournal.ReportMessageId, "ERRORWATCH_REPORT_ID=" + id));

        var sent = ReportJournal.ToEntry(report);
        foreach (var field in sent.Fields)
            Assert.True(Journalctl.Values(entry, field.Name) is [var value] && value.AsSpan().SequenceEqual(field.Value),
                $"{field.Name}: sent [{field.Text}], journal has {(entry.TryGetProperty(field.Name, out var v) ? v.ToString() : "nothing")}");

        // The hostile path (newline, ESC, 0xff) is not printable UTF-8: journalctl shows it as byte numbers.
        Assert.Equal(JsonValueKind.Array, entry.GetProperty("ERRORWATCH_PATH").ValueKind);
        Assert.Equal(HostilePath, Journalctl.Bytes(entry.GetProperty("ERRORWATCH_PATH")));
        // Printable UTF-8 with newlines stays a string.
        Assert.Equal(JsonValueKind.String, entry.GetProperty("ERRORWATCH_MOUNTPOINTS").ValueKind);
        Assert.Equal("/srv\n/mnt/bind\nsecond line", Journalctl.Text(entry, "ERRORWATCH_MOUNTPOINTS"));

        Assert.Equal(report.Summary, Journalctl.Text(entry, "MESSAGE"));
        Assert.Equal("2", Journalctl.Text(entry, "PRIORITY"));
        Assert.Equal("errorwatch", Journalctl.Text(entry, "SYSLOG_IDENTIFIER"));
        Assert.Equal("117", Journalctl.Text(entry, "ERRNO"));
        Assert.Equal("journal", Journalctl.Text(entry, "_TRANSPORT"));
        Assert.Equal(Environment.ProcessId.ToString(), Journalctl.Text(entry, "_PID"));
        Assert.Equal("ext4_lookup", Journalctl.Text(entry, "ERRORWATCH_EXT4_FUNCTION"));
        Assert.Equal("1812", Journalctl.Text(entry, "ERRORWATCH_EXT4_LINE"));
        Assert.Equal("0", Journalctl.Text(entry, "ERRORWATCH_EXT4_BLOCK"));
        Assert.Equal("bnobt,cntbt", Journalctl.Text(entry, "ERRORWATCH_XFS_SICK"));
        Assert.Equal("ext4_lookup", Journalctl.Text(entry, "ERRORWATCH_EXT4_LAST_ERROR_FUNCTION"));
        Assert.Equal(Uuid.ToString(), Journalctl.Text(entry, "ERRORWATCH_UUID"));

        // Nothing was dropped: every field sent is there (journald drops invalid names silently).
        var own = entry.EnumerateObject().Select(p => p.Name).Where(n => !n.StartsWith('_')).ToHashSet();
        Assert.Equal(sent.Fields.Select(f => f.Name).ToHashSet(), own);
    }

    [JournaldFact]
    public void Storm_OfTenThousandReports_GivesBoundedEntriesThatAddUp()
    {
        // journald's own rate limit (RateLimitBurst=10000 per 30 s by default) would drop entries of
        // every service in a real storm; the sink keeps it to 20 + 1 per filesystem per interval.
        var host = Tag();
        var start = DateTimeOffset.UtcNow;
        var clock = new ManualTimeProvider(start);
        var sink = new JournalSink(new SdJournal(), new JournalFallback(new LineWriter()), clock);
        var device = new DeviceNumber(8, 33);
        var reports = Enumerable.Range(0, 10_000).Select(i => JournalSinkTests.StormReport(i, device, host)).ToList();
        foreach (var report in reports)
        {
            sink.Publish(report);
            clock.Advance(TimeSpan.FromMilliseconds(10)); // 100 s: two 60 s intervals
        }
        clock.Advance(TimeSpan.FromSeconds(20));
        sink.Tick();
        Assert.Equal(40, sink.ReportEntries);
        Assert.Equal(2, sink.SummaryEntries);

        var all = Journalctl.WaitFor(42, "ERRORWATCH_HOST=" + host);
        Assert.Equal(42, all.Count);
        var entries = all.Where(e => Journalctl.Text(e, "MESSAGE_ID") == ReportJournal.ReportMessageId).ToList();
        var summaries = all.Where(e => Journalctl.Text(e, "MESSAGE_ID") == ReportJournal.SuppressedMessageId).ToList();
        Assert.Equal(40, entries.Count);
        Assert.Equal(2, summaries.Count);

        var total = reports.Aggregate(0UL, (sum, r) => sum + r.Error.Count);
        var inEntries = entries.Aggregate(0UL, (sum, e) => sum + ulong.Parse(Journalctl.Text(e, "ERRORWATCH_ERROR_COUNT")));
        var inSummaries = summaries.Aggregate(0UL, (sum, e) => sum + ulong.Parse(Journalctl.Text(e, "ERRORWATCH_SUPPRESSED_ERRORS")));
        Assert.Equal(total, inEntries + inSummaries);
        Assert.Equal(reports.Count, entries.Count + summaries.Sum(e => int.Parse(Journalctl.Text(e, "ERRORWATCH_SUPPRESSED_REPORTS"))));

        var logged = entries.Select(e => Journalctl.Text(e, "ERRORWATCH_REPORT_ID")).ToHashSet();
        var byErrno = JournalSinkTests.ErrorsByErrno(reports.Where(r => !logged.Contains(r.Id)));
        foreach (var (name, count) in byErrno)
            Assert.Equal(count, summaries.Aggregate(0UL, (sum, e) => sum + ulong.Parse(Journalctl.Text(e, "ERRORWATCH_SUPPRESSED_" + name))));
        Assert.All(summaries, s =>
        {
            Assert.Equal("2", Journalctl.Text(s, "PRIORITY"));
            Assert.Equal("60", Journalctl.Text(s, "ERRORWATCH_INTERVAL_SEC"));
            Assert.Equal("8:33", Journalctl.Text(s, "ERRORWATCH_MAJOR_MINOR"));
            Assert.Equal("/srv", Journalctl.Text(s, "ERRORWATCH_MOUNTPOINT"));
            Assert.StartsWith("ext4 /dev/sdb1 (/srv): ", Journalctl.Text(s, "MESSAGE"));
        });
    }

    [JournaldFact]
    public void SerilogWarning_ArrivesWithPriorityAndProperties()
    {
        var id = Tag();
        using (var logger = new LoggerConfiguration().WriteTo.Sink(new JournaldLogSink(new SdJournal())).CreateLogger())
            logger.ForContext("SourceContext", "ErrorWatch.Tests.Journal")
                .Warning(new IOException("first line\nsecond line"), "Mount {MountPoint} of {ReportId} went read-only after {Count} errors", "/srv", id, 7);

        var entry = Assert.Single(Journalctl.WaitFor(1, "SYSLOG_IDENTIFIER=errorwatch", "ERRORWATCH_REPORT_ID=" + id));
        Assert.Equal("4", Journalctl.Text(entry, "PRIORITY"));
        Assert.Equal($"Mount \"/srv\" of \"{id}\" went read-only after 7 errors", Journalctl.Text(entry, "MESSAGE"));
        Assert.Equal("/srv", Journalctl.Text(entry, "ERRORWATCH_MOUNT_POINT"));
        Assert.Equal("7", Journalctl.Text(entry, "ERRORWATCH_COUNT"));
        Assert.Equal("ErrorWatch.Tests.Journal", Journalctl.Text(entry, "CODE_FUNC"));
        Assert.StartsWith("System.IO.IOException: first line\nsecond line", Journalctl.Text(entry, "ERRORWATCH_EXCEPTION"));
        Assert.False(entry.TryGetProperty("MESSAGE_ID", out _));
    }
}
