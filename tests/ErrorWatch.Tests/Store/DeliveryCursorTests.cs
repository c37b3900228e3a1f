using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Reports;
using ErrorWatch.Store;
using ErrorWatch.Tests.Journal;
using static ErrorWatch.Tests.Journal.JournalTestReports;

namespace ErrorWatch.Tests.Store;

/// <summary>
/// The journal's at-least-once delivery from the store: positions in append order, a durable cursor,
/// the records after it, and the journal sink moving it only past what journald has.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class DeliveryCursorTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("errorwatch-cursor-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static readonly Serilog.ILogger Quiet = Serilog.Core.Logger.None;

    [Fact]
    public void Appends_return_growing_positions_and_the_records_after_one_are_exactly_the_later_ones()
    {
        var positions = new List<StorePosition>();
        using (var store = ReportStore.Open(_state, new StoreOptions { SegmentRecords = 4 }, Quiet))
        {
            for (var i = 0; i < 10; i++)
                positions.Add(Assert.NotNull(store.Append(ReportStoreTests.Report(i))));
            Assert.Equal(positions[^1], store.End);
        }
        Assert.Equal(positions.Order(), positions);
        Assert.True(positions.Select(p => p.Segment).Distinct().Count() >= 3, "the test meant to cross segments");

        for (var from = 0; from < positions.Count; from++)
        {
            var seen = new List<(ulong Inode, StorePosition End)>();
            var problems = StoredReports.ReadAfter(_state, positions[from], (in StoredRecord r) =>
            {
                seen.Add((r.Report().Object.Inode!.Value, r.End));
                return true;
            });
            Assert.Empty(problems);
            Assert.Equal(Enumerable.Range(from + 1, positions.Count - from - 1).Select(i => ((ulong)i, positions[i])), seen);
        }
    }

    [Fact]
    public void A_cursor_remembers_where_it_was_moved_never_moves_back_and_is_private()
    {
        using (var cursor = DeliveryCursor.Open(_state, "journal", Quiet))
        {
            Assert.Null(cursor.Position);
            cursor.Advance(new StorePosition(2, 4096));
            cursor.Advance(new StorePosition(1, 9999)); // behind: ignored
        }
        using (var again = DeliveryCursor.Open(_state, "journal", Quiet))
            Assert.Equal(new StorePosition(2, 4096), again.Position);

        var path = Path.Combine(_state, DeliveryCursor.DirectoryName, "journal");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(AtomicFile.PrivateDirectory, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
    }

    [Fact]
    public void A_damaged_cursor_is_named_and_read_as_new()
    {
        var path = Path.Combine(_state, DeliveryCursor.DirectoryName, "journal");
        using (var cursor = DeliveryCursor.Open(_state, "journal", Quiet))
            cursor.Advance(new StorePosition(3, 100));
        var bytes = File.ReadAllBytes(path);
        bytes[5] ^= 0x40;
        File.WriteAllBytes(path, bytes);

        var log = new ErrorWatch.Tests.Recovery.LogCapture();
        using var damaged = DeliveryCursor.Open(_state, "journal", log.Logger);
        Assert.Null(damaged.Position);
        Assert.Contains(log.Messages(), m => m.Contains("damaged") && m.Contains(path));
    }

    [Fact]
    public void The_journal_moves_its_cursor_past_what_journald_has_and_holds_it_while_a_summary_is_pending()
    {
        var clock = new ManualTimeProvider(new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));
        var journal = new RecordingJournal(clock);
        using var cursor = DeliveryCursor.Open(_state, "journal", Quiet);
        var sink = new JournalSink(journal, new JournalFallback(new LineWriter()), clock) { MaxEntriesPerInterval = 2, Interval = TimeSpan.FromSeconds(60), Cursor = cursor };
        var device = new DeviceNumber(8, 17);

        sink.Publish(JournalSinkTests.StormReport(1, device), new StorePosition(1, 100));
        sink.Publish(JournalSinkTests.StormReport(2, device), new StorePosition(1, 200));
        Assert.Equal(new StorePosition(1, 200), cursor.Position);
        // The third is only counted for the summary: the cursor must not pass it.
        sink.Publish(JournalSinkTests.StormReport(3, device), new StorePosition(1, 300));
        sink.Publish(JournalSinkTests.StormReport(4, device), new StorePosition(1, 400));
        Assert.Equal(new StorePosition(1, 200), cursor.Position);

        clock.Advance(TimeSpan.FromSeconds(61));
        sink.Tick();
        Assert.Single(journal.WithMessageId(ReportJournal.SuppressedMessageId));
        Assert.Equal(new StorePosition(1, 400), cursor.Position);

        // A report journald refuses holds it too, until the summary of what it missed goes out.
        journal.Result = -111;
        sink.Publish(JournalSinkTests.StormReport(5, device), new StorePosition(1, 500));
        Assert.Equal(new StorePosition(1, 400), cursor.Position);
        journal.Result = 0;
        clock.Advance(sink.RetryInterval);
        sink.Tick();
        Assert.Equal(new StorePosition(1, 500), cursor.Position);
    }

    [Fact]
    public void A_replay_logs_entries_within_the_limit_marked_replayed_and_one_summary_per_filesystem_that_adds_up()
    {
        var clock = new ManualTimeProvider(new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));
        var journal = new RecordingJournal(clock);
        using var cursor = DeliveryCursor.Open(_state, "journal", Quiet);
        cursor.Advance(new StorePosition(1, 10));
        var sink = new JournalSink(journal, new JournalFallback(new LineWriter()), clock) { MaxEntriesPerInterval = 3, Cursor = cursor };
        var a = new DeviceNumber(8, 17);
        var b = new DeviceNumber(8, 33);
        var missed = Enumerable.Range(1, 10).Select(i => JournalSinkTests.StormReport(i, a))
            .Concat(Enumerable.Range(11, 5).Select(i => JournalSinkTests.StormReport(i, b))).ToList();

        foreach (var report in missed)
            sink.Replay(report);
        sink.Replayed(new StorePosition(2, 77));

        var entries = journal.WithMessageId(ReportJournal.ReportMessageId).ToList();
        Assert.Equal(6, entries.Count);
        Assert.All(entries, e => Assert.Equal("1", e.GetText("ERRORWATCH_REPLAYED")));
        var summaries = journal.WithMessageId(ReportJournal.SuppressedMessageId).ToList();
        Assert.Equal(2, summaries.Count);
        Assert.All(summaries, s => Assert.Equal("replay", s.GetText("ERRORWATCH_SUMMARY_REASON")));
        Assert.All(summaries, s => Assert.Contains("replayed from the store", s.GetText("MESSAGE")));
        var logged = entries.Sum(e => (decimal)ulong.Parse(e.GetText("ERRORWATCH_ERROR_COUNT")!))
            + summaries.Sum(s => (decimal)ulong.Parse(s.GetText("ERRORWATCH_SUPPRESSED_ERRORS")!));
        Assert.Equal(missed.Sum(r => (decimal)r.Error.Count), logged);
        Assert.Equal(new StorePosition(2, 77), cursor.Position);
        Assert.Equal(15, sink.ReplayedReports);
    }
}

/// <summary>The daemon's side of the journal's cursor: the replay at start, and a cursor the store fell behind.</summary>
[Collection(ErrorWatch.Tests.EndToEnd.ScratchCollection.Name)]
public sealed class JournalReplayTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("errorwatch-replay-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition() && clock.Elapsed < Patience)
            Thread.Sleep(20);
        Assert.True(condition(), what);
    }

    private ErrorWatch.Tests.EndToEnd.DaemonHarness Start(ErrorWatch.Cli.Demo.ScratchFilesystem fs, RecordingJournal journal) =>
        new(new ErrorWatch.Daemon.DaemonOptions { Watch = new ErrorWatch.Watching.WatchOptions { Include = [fs.MountPoint] }, StateDirectory = _state },
            sinks: [new JournalSink(journal, new JournalFallback(new LineWriter()))]);

    [ErrorWatch.Tests.EndToEnd.LoopFact]
    public void At_start_the_reports_stored_after_the_cursor_reach_the_journal_marked_replayed_before_anything_new()
    {
        var positions = new List<StorePosition>();
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
            for (var i = 1; i <= 3; i++)
                positions.Add(store.Append(ReportStoreTests.Report(i))!.Value);
        using (var cursor = DeliveryCursor.Open(_state, "journal", Serilog.Core.Logger.None))
            cursor.Advance(positions[0]);

        using var scratch = new ErrorWatch.Tests.EndToEnd.ScratchDirectory();
        var fs = scratch.Ext4("replay");
        var journal = new RecordingJournal();
        using (var harness = Start(fs, journal))
        {
            WaitUntil(() => journal.WithMessageId(ReportJournal.ReportMessageId).Count() >= 2, "the two reports after the cursor were not replayed");
            fs.TriggerFsErrors(1);
            Assert.NotNull(harness.Collect(r => r.Count >= 1).FirstOrDefault());
            WaitUntil(() => journal.WithMessageId(ReportJournal.ReportMessageId).Count() >= 3, "the new report was not logged");
        }

        var entries = journal.WithMessageId(ReportJournal.ReportMessageId).ToList();
        Assert.Equal(["2", "3"], entries.Take(2).Select(e => e.GetText("ERRORWATCH_INODE")));
        Assert.All(entries.Take(2), e => Assert.Equal("1", e.GetText("ERRORWATCH_REPLAYED")));
        Assert.Null(entries[2].GetText("ERRORWATCH_REPLAYED"));
        using var after = DeliveryCursor.Open(_state, "journal", Serilog.Core.Logger.None);
        Assert.True(after.Position > positions[2], $"the cursor stands at {after.Position}, not past the new report");
    }

    [ErrorWatch.Tests.EndToEnd.LoopFact]
    public void A_cursor_past_the_end_of_an_emptied_store_starts_again_at_its_end_and_follows_new_reports()
    {
        using (var cursor = DeliveryCursor.Open(_state, "journal", Serilog.Core.Logger.None))
            cursor.Advance(new StorePosition(9, 999));

        using var scratch = new ErrorWatch.Tests.EndToEnd.ScratchDirectory();
        var fs = scratch.Ext4("restart");
        var journal = new RecordingJournal();
        using (var harness = Start(fs, journal))
        {
            fs.TriggerFsErrors(1);
            Assert.NotNull(harness.Collect(r => r.Count >= 1).FirstOrDefault());
            WaitUntil(() => journal.WithMessageId(ReportJournal.ReportMessageId).Any(), "the report was not logged");
        }

        StorePosition? end;
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
            end = store.End;
        using var after = DeliveryCursor.Open(_state, "journal", Serilog.Core.Logger.None);
        Assert.Equal(end, after.Position);
        Assert.True(after.Position < new StorePosition(9, 999));
    }
}
