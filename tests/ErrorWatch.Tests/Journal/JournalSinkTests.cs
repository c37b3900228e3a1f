using System.Collections.Immutable;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Reports;
using static ErrorWatch.Tests.Journal.JournalTestReports;

namespace ErrorWatch.Tests.Journal;

/// <summary>Storm control arithmetic and the fallback, with a recording journal and a manual clock.</summary>
public class JournalSinkTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 14, 12, 0, 0, TimeSpan.Zero);

    /// <summary>errno and count of report i: mostly EUCLEAN, some EIO and EBADMSG, every 97th folded, counts 0-3.</summary>
    internal static CorruptionReport StormReport(int i, DeviceNumber device, string host = "testhost")
    {
        var id = $"storm-{i:D5}";
        if (i % 97 == 0)
        {
            var folded = new Dictionary<string, ulong> { ["EUCLEAN"] = 2, ["EIO"] = 1 }.ToImmutableDictionary();
            return Small(id, EUCLEAN, 3, device, host, Severity.Critical, folded);
        }
        var errno = i % 7 == 0 ? EIO : i % 5 == 0 ? EBADMSG : EUCLEAN;
        return Small(id, errno, (ulong)(i % 4), device, host, errno == EIO ? Severity.Error : Severity.Critical);
    }

    /// <summary>Errors per errno name over a set of reports, folded ones split out.</summary>
    internal static Dictionary<string, ulong> ErrorsByErrno(IEnumerable<CorruptionReport> reports)
    {
        var result = new Dictionary<string, ulong>();
        foreach (var r in reports)
        {
            var parts = r.Error.Folded.IsEmpty ? new Dictionary<string, ulong> { [r.Error.Name] = r.Error.Count } : r.Error.Folded.ToDictionary();
            foreach (var (name, count) in parts)
                result[name] = result.GetValueOrDefault(name) + count;
        }
        return result;
    }

    [Fact]
    public void TenThousandReports_AreBoundedPerInterval_AndAddUpExactly()
    {
        var clock = new ManualTimeProvider(Start);
        var journal = new RecordingJournal(clock);
        var sink = new JournalSink(journal, new JournalFallback(new LineWriter()), clock);
        var device = new DeviceNumber(8, 17);
        var reports = Enumerable.Range(0, 10_000).Select(i => StormReport(i, device)).ToList();

        // 10 ms apart: 100 s of storm, so two intervals (0-60 s, 60-120 s); the daemon's tick at 120 s ends the second.
        foreach (var report in reports)
        {
            sink.Publish(report);
            clock.Advance(TimeSpan.FromMilliseconds(10));
        }
        clock.Advance(TimeSpan.FromSeconds(20));
        sink.Tick();

        var byInterval = journal.Sent.GroupBy(s => (int)((s.Time - Start).TotalSeconds / 60)).ToDictionary(g => g.Key, g => g.Count());
        Assert.All(byInterval, kv => Assert.True(kv.Value <= 21, $"interval {kv.Key}: {kv.Value} entries"));
        var entries = journal.WithMessageId(ReportJournal.ReportMessageId).ToList();
        var summaries = journal.WithMessageId(ReportJournal.SuppressedMessageId).ToList();
        Assert.Equal(40, entries.Count);
        Assert.Equal(2, summaries.Count);
        Assert.Equal(42, journal.Sent.Count);

        // Which reports got an entry: the first 20 of each interval (6000 reports per 60 s).
        var logged = entries.Select(e => Text(e, "ERRORWATCH_REPORT_ID")).ToHashSet();
        Assert.Equal(reports.Take(20).Concat(reports.Skip(6000).Take(20)).Select(r => r.Id).ToHashSet(), logged);

        var suppressed = reports.Where(r => !logged.Contains(r.Id)).ToList();
        Assert.Equal(suppressed.Count, summaries.Sum(s => long.Parse(Text(s, "ERRORWATCH_SUPPRESSED_REPORTS"))));
        var total = reports.Aggregate(0UL, (sum, r) => sum + r.Error.Count);
        var inEntries = entries.Aggregate(0UL, (sum, e) => sum + ulong.Parse(Text(e, "ERRORWATCH_ERROR_COUNT")));
        var inSummaries = summaries.Aggregate(0UL, (sum, s) => sum + ulong.Parse(Text(s, "ERRORWATCH_SUPPRESSED_ERRORS")));
        Assert.Equal(total, inEntries + inSummaries);

        // Per interval: reports, errors, per-errno errors, first/last id, worst priority.
        var intervals = new[] { reports.Take(6000).Skip(20).ToList(), reports.Skip(6020).ToList() };
        for (var k = 0; k < 2; k++)
        {
            var held = intervals[k];
            var s = summaries[k];
            Assert.Equal(held.Count.ToString(), Text(s, "ERRORWATCH_SUPPRESSED_REPORTS"));
            var errors = held.Aggregate(0UL, (sum, r) => sum + r.Error.Count);
            Assert.Equal(errors.ToString(), Text(s, "ERRORWATCH_SUPPRESSED_ERRORS"));
            var byErrno = ErrorsByErrno(held);
            Assert.Equal(["EBADMSG", "EIO", "EUCLEAN"], byErrno.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, count) in byErrno)
                Assert.Equal(count.ToString(), Text(s, "ERRORWATCH_SUPPRESSED_" + name));
            var perErrnoFields = s.Fields.Where(f => f.Name.StartsWith("ERRORWATCH_SUPPRESSED_") && f.Name is not ("ERRORWATCH_SUPPRESSED_REPORTS" or "ERRORWATCH_SUPPRESSED_ERRORS"));
            Assert.Equal(errors, perErrnoFields.Aggregate(0UL, (sum, f) => sum + ulong.Parse(f.Text)));
            Assert.Equal(held[0].Id, Text(s, "ERRORWATCH_FIRST_REPORT_ID"));
            Assert.Equal(held[^1].Id, Text(s, "ERRORWATCH_LAST_REPORT_ID"));
            Assert.Equal("60", Text(s, "ERRORWATCH_INTERVAL_SEC"));
            Assert.Equal("2", Text(s, "PRIORITY")); // critical reports among them
            Assert.Equal("critical", Text(s, "ERRORWATCH_SEVERITY"));
            Assert.Equal("8:17", Text(s, "ERRORWATCH_MAJOR_MINOR"));
            Assert.Equal("/dev/sdb1", Text(s, "ERRORWATCH_DEVICE"));
            Assert.Equal(Uuid.ToString(), Text(s, "ERRORWATCH_UUID"));
            Assert.Equal("ext4", Text(s, "ERRORWATCH_FSTYPE"));
            Assert.Equal("/srv", Text(s, "ERRORWATCH_MOUNTPOINT"));
            Assert.Equal("errorwatch", Text(s, "SYSLOG_IDENTIFIER"));
            Assert.Equal(
                $"ext4 /dev/sdb1 (/srv): {held.Count} more reports ({errors} errors) in the last 60 s not logged one by one; every report is in the store (errorwatch list)",
                Text(s, "MESSAGE"));
        }
        Assert.Equal(40, sink.ReportEntries);
        Assert.Equal(2, sink.SummaryEntries);
        Assert.Equal(suppressed.Count, sink.SuppressedReports);
    }

    [Fact]
    public void Filesystems_HaveTheirOwnLimits()
    {
        var clock = new ManualTimeProvider(Start);
        var journal = new RecordingJournal(clock);
        var sink = new JournalSink(journal, new JournalFallback(new LineWriter()), clock) { MaxEntriesPerInterval = 3 };
        var a = new DeviceNumber(8, 1);
        var b = new DeviceNumber(8, 2);
        for (var i = 0; i < 10; i++)
        {
            sink.Publish(Small($"a{i}", EIO, 1, a));
            sink.Publish(Small($"b{i}", EIO, 2, b, severity: Severity.Warning));
        }
        sink.Flush();

        var entries = journal.WithMessageId(ReportJournal.ReportMessageId).ToList();
        Assert.Equal(3, entries.Count(e => Text(e, "ERRORWATCH_MAJOR_MINOR") == "8:1"));
        Assert.Equal(3, entries.Count(e => Text(e, "ERRORWATCH_MAJOR_MINOR") == "8:2"));
        var summaries = journal.WithMessageId(ReportJournal.SuppressedMessageId).ToDictionary(s => Text(s, "ERRORWATCH_MAJOR_MINOR"));
        Assert.Equal("7", Text(summaries["8:1"], "ERRORWATCH_SUPPRESSED_ERRORS"));
        Assert.Equal("14", Text(summaries["8:2"], "ERRORWATCH_SUPPRESSED_ERRORS"));
        Assert.Equal("3", Text(summaries["8:1"], "PRIORITY"));
        Assert.Equal("4", Text(summaries["8:2"], "PRIORITY"));
        Assert.Equal("1", Text(summaries["8:1"], "ERRORWATCH_INTERVAL_SEC")); // flushed at once: no time passed
        Assert.Equal("a3", Text(summaries["8:1"], "ERRORWATCH_FIRST_REPORT_ID"));
        Assert.Equal("a9", Text(summaries["8:1"], "ERRORWATCH_LAST_REPORT_ID"));

        // Flush keeps the interval's count: still no more entries for 8:1 until it ends, and nothing to flush twice.
        sink.Publish(Small("a10", EIO, 1, a));
        Assert.Equal(8, journal.Sent.Count);
        clock.Advance(TimeSpan.FromSeconds(60));
        sink.Tick();
        var last = journal.Sent[^1].Entry;
        Assert.Equal("1", Text(last, "ERRORWATCH_SUPPRESSED_REPORTS"));
        Assert.Equal("a10", Text(last, "ERRORWATCH_FIRST_REPORT_ID"));
        Assert.Equal("ext4 /dev/sdb1 (/srv): 1 more report (1 error) in the last 60 s not logged one by one; every report is in the store (errorwatch list)", Text(last, "MESSAGE"));
        sink.Publish(Small("a11", EIO, 1, a));
        Assert.Equal("a11", Text(journal.Sent[^1].Entry, "ERRORWATCH_REPORT_ID"));
    }

    [Fact]
    public void QuietIntervals_SendNoSummary()
    {
        var clock = new ManualTimeProvider(Start);
        var journal = new RecordingJournal(clock);
        var sink = new JournalSink(journal, new JournalFallback(new LineWriter()), clock);
        for (var i = 0; i < 20; i++)
            sink.Publish(Small($"r{i}", EIO, 1));
        clock.Advance(TimeSpan.FromMinutes(5));
        sink.Tick();
        sink.Flush();
        Assert.Equal(20, journal.Sent.Count);
        Assert.Empty(journal.WithMessageId(ReportJournal.SuppressedMessageId));
    }

    [Fact]
    public void NoJournal_WritesTextLines_WithOneNotice()
    {
        var journal = new RecordingJournal { IsAvailable = false };
        var output = new LineWriter();
        var sink = new JournalSink(journal, new JournalFallback(output));
        var reports = Enumerable.Range(0, 3).Select(i => Small($"r{i}", EIO, 1)).ToList();
        foreach (var r in reports)
            sink.Publish(r);

        Assert.Empty(journal.Sent);
        var lines = output.Lines;
        Assert.Equal(4, lines.Length);
        Assert.Equal("errorwatch: journald is not reachable (/run/systemd/journal/socket missing); reports go to stderr", lines[0]);
        Assert.Equal(reports.Select(ReportText.Format), lines.Skip(1));
        Assert.Single(lines, l => l.Contains("not reachable"));
    }

    [Fact]
    public void FailedSend_FallsBack_NamingTheErrno()
    {
        var journal = new RecordingJournal { Result = -111 };
        var output = new LineWriter();
        var sink = new JournalSink(journal, new JournalFallback(output));
        sink.Publish(Small("r0", EIO, 1));
        journal.Throw = true; // a broken IJournal must not take the pipeline down
        sink.Publish(Small("r1", EIO, 1));

        var lines = output.Lines;
        Assert.Equal(3, lines.Length);
        Assert.Equal("errorwatch: journald is not reachable (sd_journal_sendv: ECONNREFUSED); reports go to stderr", lines[0]);
        Assert.EndsWith("id=r0", lines[1]);
        Assert.EndsWith("id=r1", lines[2]);
    }

    [Fact]
    public void Summaries_FallBackToo()
    {
        var journal = new RecordingJournal { IsAvailable = false };
        var output = new LineWriter();
        var sink = new JournalSink(journal, new JournalFallback(output)) { MaxEntriesPerInterval = 1 };
        sink.Publish(Small("r0", EIO, 1));
        sink.Publish(Small("r1", EIO, 5));
        sink.Flush();
        var lines = output.Lines;
        Assert.Equal(3, lines.Length);
        // r0 went to stderr because journald was not there; r1 was over the storm limit.
        Assert.Contains(" ERROR ext4 /dev/sdb1 (/srv): 2 more reports (6 errors) in the last 1 s not logged one by one, 1 of them while journald was unreachable", lines[2]);
    }

    [Fact]
    public void ClosedFallbackWriter_DoesNotThrow()
    {
        var output = new LineWriter();
        output.Dispose();
        var sink = new JournalSink(new RecordingJournal { IsAvailable = false }, new JournalFallback(output));
        sink.Publish(Small("r0", EIO, 1));
    }

    [Fact]
    public void MissingLibsystemd_IsUnavailable_NotAnException()
    {
        var journal = new SdJournal("libsystemd-absent.so.0");
        Assert.False(journal.IsAvailable);
        Assert.Equal("libsystemd-absent.so.0 not found", journal.UnavailableReason);
        Assert.Equal(-38, journal.Send(new JournalEntry().Add("MESSAGE", "x"))); // ENOSYS, without touching native code

        var output = new LineWriter();
        new JournalSink(journal, new JournalFallback(output)).Publish(Small("r0", EIO, 1));
        Assert.Equal("errorwatch: journald is not reachable (libsystemd-absent.so.0 not found); reports go to stderr", output.Lines[0]);
    }

    [Fact]
    public void Reports_journald_refused_are_summed_into_one_entry_as_soon_as_it_takes_entries_again()
    {
        var clock = new ManualTimeProvider(Start);
        var journal = new RecordingJournal(clock);
        var stderr = new LineWriter();
        var sink = new JournalSink(journal, new JournalFallback(stderr), clock);
        var device = new DeviceNumber(8, 17);
        var reports = Enumerable.Range(1, 12).Select(i => StormReport(i, device)).ToList();

        sink.Publish(reports[0]);
        journal.Result = -111; // ECONNREFUSED: journald stopped
        foreach (var r in reports.Skip(1).Take(8))
        {
            clock.Advance(TimeSpan.FromMilliseconds(100));
            sink.Publish(r);
        }
        Assert.Equal(8, sink.UnreachableReports);
        Assert.Contains(stderr.Lines, l => l.Contains("ECONNREFUSED"));
        sink.Tick(); // still down: the summary waits, and is not written to stderr again at every try
        var fallbackLines = stderr.Lines.Length;
        sink.Tick();
        Assert.Equal(fallbackLines, stderr.Lines.Length);

        journal.Result = 0; // back
        clock.Advance(TimeSpan.FromSeconds(5));
        sink.Tick();
        foreach (var r in reports.Skip(9))
            sink.Publish(r);

        var entries = journal.WithMessageId(ReportJournal.ReportMessageId).ToList();
        var summary = Assert.Single(journal.WithMessageId(ReportJournal.SuppressedMessageId));
        Assert.Equal("journald-unreachable", Text(summary, "ERRORWATCH_SUMMARY_REASON"));
        Assert.Equal("8", Text(summary, "ERRORWATCH_UNREACHABLE_REPORTS"));
        Assert.Contains("journald was unreachable (sd_journal_sendv: ECONNREFUSED)", Text(summary, "MESSAGE"));
        var logged = entries.Sum(e => long.Parse(Text(e, "ERRORWATCH_ERROR_COUNT")));
        var counted = long.Parse(Text(summary, "ERRORWATCH_SUPPRESSED_ERRORS"));
        Assert.Equal(reports.Sum(r => (long)r.Error.Count), logged + counted);
        Assert.Equal([reports[0].Id, .. reports.Skip(9).Select(r => r.Id)], entries.Select(e => Text(e, "ERRORWATCH_REPORT_ID")));
    }

    [Fact]
    public void The_first_report_after_journald_returns_brings_the_summary_with_it()
    {
        var clock = new ManualTimeProvider(Start);
        var journal = new RecordingJournal(clock) { IsAvailable = false };
        var sink = new JournalSink(journal, new JournalFallback(new LineWriter()), clock);
        var device = new DeviceNumber(8, 17);
        sink.Publish(StormReport(1, device));
        sink.Publish(StormReport(2, device));
        journal.IsAvailable = true;
        sink.Publish(StormReport(3, device));
        Assert.Single(journal.WithMessageId(ReportJournal.ReportMessageId));
        var summary = Assert.Single(journal.WithMessageId(ReportJournal.SuppressedMessageId));
        Assert.Equal("2", Text(summary, "ERRORWATCH_SUPPRESSED_REPORTS"));
    }

    [Fact]
    public void EmptyEntry_IsRefused()
    {
        Assert.Equal(-22, new SdJournal().Send(new JournalEntry())); // EINVAL, as sd_journal_sendv would say
    }
}
