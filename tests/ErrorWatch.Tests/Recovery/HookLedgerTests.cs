using ErrorWatch.Recovery;
using ErrorWatch.Store;
using ErrorWatch.Tests.Journal;

namespace ErrorWatch.Tests.Recovery;

/// <summary>The ledger: due before start, folds, done after; what is not done is there again at the next open, whatever a kill left.</summary>
public sealed class HookLedgerTests : IDisposable
{
    private readonly HookDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string File => Path.Combine(_dir.State, HookLedger.DirectoryName, HookLedger.FileName);

    private static HookRun Run(string id, string reportId, ulong count, DateTimeOffset time) =>
        new(id, "all-rec", HookFacts.From(HookReports.Corruption(reportId, time, count)), DateTimeOffset.MinValue);

    [Fact]
    public void Unfinished_runs_come_back_with_their_folds_and_done_ones_do_not()
    {
        var t = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero);
        using (var ledger = HookLedger.Open(_dir.State, HookReports.Quiet))
        {
            var done = Run("run-done", "a", 1, t);
            ledger.Due(done);
            ledger.Done(done, new HookOutcome { Result = HookOutcome.Success, Detail = "exited with 0", Started = t, ExitCode = 0 });
            var open = Run("run-open", "b", 2, t.AddSeconds(1));
            ledger.Due(open);
            var facts = HookFacts.From(HookReports.Corruption("c", t.AddSeconds(2), 5, path: [0x2f, 0x0a, 0xff]));
            open.Fold(facts);
            ledger.Folded(open, facts);
            ledger.Started(open, new RunProcess(12345, "999", "boot"));
        }
        // A kill inside the next write leaves half a record: cut off, the rest intact.
        var whole = System.IO.File.ReadAllBytes(File);
        System.IO.File.AppendAllText(File, "EWR1 torn");

        using var reopened = HookLedger.Open(_dir.State, HookReports.Quiet);
        var run = Assert.Single(reopened.Unfinished);
        Assert.Equal("run-open", run.Id);
        Assert.True(run.Replayed);
        Assert.Equal(7UL, run.ErrorCount);
        Assert.Equal(2, run.Reports);
        Assert.Equal("c", run.Latest.ReportId);
        Assert.Equal("b", run.FirstReportId);
        Assert.Equal(t.AddSeconds(1), run.FirstTime);
        Assert.Equal(5UL, run.PreviousCount + 3);
        Assert.Equal([0x2f, 0x0a, 0xff], run.Latest.Get("ERRORWATCH_PATH"));
        Assert.Equal(new RunProcess(12345, "999", "boot"), reopened.Processes["run-open"]);
        var lane = Assert.Single(reopened.History);
        Assert.Equal((1L, t), (lane.Runs, lane.LastStart!.Value));
        Assert.Equal("success", lane.Last!.Outcome);
        // Rewritten compactly: history and the unfinished run, merged; smaller than before.
        Assert.True(new FileInfo(File).Length < whole.Length);
        var records = 0;
        var scan = StoreRecord.Scan(File, (_, _, _) => records++);
        Assert.Empty(scan.Problems);
        Assert.Equal(3, records); // lane, due (folds merged), start
    }

    [Fact]
    public void A_record_that_is_whole_but_not_understood_is_skipped_with_a_warning()
    {
        var capture = new LogCapture();
        Directory.CreateDirectory(Path.GetDirectoryName(File)!);
        System.IO.File.WriteAllBytes(File, [.. StoreRecord.Encode("{\"t\":\"due\"}"u8, DateTimeOffset.UtcNow), .. StoreRecord.Encode("not json"u8, DateTimeOffset.UtcNow)]);
        using var ledger = HookLedger.Open(_dir.State, capture.Logger);
        Assert.Empty(ledger.Unfinished);
        Assert.Equal(2, capture.Messages().Count(m => m.Contains("not understood")));
    }

    [Fact]
    public void The_report_file_directory_is_cleared_at_open()
    {
        var run = Directory.CreateDirectory(Path.Combine(_dir.State, HookLedger.DirectoryName, HookLedger.RunDirectoryName)).FullName;
        System.IO.File.WriteAllText(Path.Combine(run, "stale.json"), "{}");
        using var ledger = HookLedger.Open(_dir.State, HookReports.Quiet);
        Assert.Empty(Directory.EnumerateFiles(run));
    }

    [Fact]
    public void A_long_storm_is_compacted_while_it_folds_and_loses_nothing()
    {
        var catalog = new HookCatalog(_dir.Settings(HookReports.Rule("rule", "interval=1h")), HookReports.Quiet);
        var runner = new RecordingRunner();
        var clock = new ManualTimeProvider(new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero));
        ulong offered = 0;
        using (var ledger = HookLedger.Open(_dir.State, HookReports.Quiet))
        {
            using var dispatcher = new HookDispatcher(catalog, runner, ledger, 1, clock, HookReports.Quiet);
            dispatcher.Start();
            // Each fold record carries the report's JSON (a few KiB): 4000 of them pass the compaction threshold.
            for (var i = 0; i < 4000; i++)
            {
                dispatcher.Offer(HookReports.Corruption($"r{i}", clock.GetUtcNow(), 2));
                offered += 2;
                if (i == 0)
                    Assert.True(dispatcher.WaitIdle(TimeSpan.FromSeconds(10)));
            }
            Assert.True(new FileInfo(File).Length < HookLedger.CompactBytes, "compacted while folding");
            clock.Advance(TimeSpan.FromHours(1));
            dispatcher.Wake();
            Assert.True(dispatcher.WaitIdle(TimeSpan.FromSeconds(10)));
            Assert.Equal(offered, runner.Runs.Aggregate(0UL, (s, r) => s + r.Run.ErrorCount));
            Assert.Equal(2, runner.Runs.Count);
        }
        using var reopened = HookLedger.Open(_dir.State, HookReports.Quiet);
        Assert.Empty(reopened.Unfinished);
        Assert.Equal(2, Assert.Single(reopened.History).Runs);
        Assert.True(new FileInfo(File).Length < 4096, $"{new FileInfo(File).Length} bytes after the compaction at open");
    }
}
