using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.Metrics;
using ErrorWatch.Recovery;
using ErrorWatch.Tests.Journal;

namespace ErrorWatch.Tests.Recovery;

/// <summary>
/// The hooks output with real hook processes and reports built field by field: which hooks run,
/// what they are given, and where each outcome is recorded (journal, ledger, metrics); runs left
/// unfinished by a stop run once more at the next start.
/// </summary>
public sealed class HookSinkTests : IDisposable
{
    private readonly HookDirectory _dir = new();
    private readonly RecordingJournal _journal = new();

    public void Dispose() => _dir.Dispose();

    private HookSink Sink(HooksSettings settings) => new(settings, _dir.State, _journal, HookReports.Quiet);

    private static string Text(Dictionary<string, byte[]> env, string name) =>
        env.TryGetValue(name, out var value) ? Encoding.UTF8.GetString(value) : throw new Xunit.Sdk.XunitException($"{name} not in the hook's environment");

    [RootFact]
    public void Only_matching_hooks_run_once_with_every_report_field_and_the_outcome_reaches_journal_ledger_and_metrics()
    {
        foreach (var name in new[] { "all-rec", "ext4-rec", "corruption-rec", "io-rec", "xfs-rec", "history-rec", "shutdown-rec", "readonly-rec" })
            _dir.Recorder(name);
        var elsewhere = Directory.CreateDirectory(Path.Combine(_dir.Path, "bin")).FullName;
        var ruleHook = _dir.Recorder("rule-rec", directory: elsewhere);
        var otherHook = _dir.Recorder("other-rec", directory: elsewhere);
        var settings = _dir.Settings(
            HookReports.Rule("by-uuid", exec: ruleHook) with { Filesystems = [JournalTestReports.Uuid.ToString()], Errnos = ["EFSCORRUPTED"], Severities = ["critical"] },
            HookReports.Rule("by-errno", exec: otherHook) with { Errnos = ["EIO"] },
            HookReports.Rule("by-mount", exec: otherHook) with { Filesystems = ["/elsewhere"] },
            HookReports.Rule("by-source", exec: otherHook) with { Sources = ["xfs-health"] });

        var runs = new List<(string Hook, string Outcome, TimeSpan Duration)>();
        using var meterListener = new MeterListener();
        var measured = new List<(long Value, string Hook, string Outcome)>();
        meterListener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter.Name == ErrorWatchMetrics.MeterName && instrument.Name == "errorwatch.hooks.runs")
                listener.EnableMeasurementEvents(instrument);
        };
        meterListener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var t = tags.ToArray().ToDictionary(k => k.Key, k => (string)k.Value!);
            lock (measured) measured.Add((value, t["errorwatch.hook"], t["errorwatch.outcome"]));
        });
        meterListener.Start();
        using var metrics = new ErrorWatchMetrics(() => [], () => 0);

        using (var sink = Sink(settings))
        {
            sink.Ran += (hook, outcome, duration) => { lock (runs) runs.Add((hook, outcome, duration)); };
            sink.Ran += metrics.HookRan;
            var report = JournalTestReports.Full("report-1") with { Time = new DateTimeOffset(2026, 11, 21, 10, 0, 0, TimeSpan.Zero) };
            sink.Publish(report);
            Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));

            Assert.Equal(["all-rec", "by-uuid", "corruption-rec", "ext4-rec"], runs.Select(r => r.Hook).Order(StringComparer.Ordinal));
            Assert.All(runs, r => Assert.Equal(HookOutcome.Success, r.Outcome));
            foreach (var quiet in new[] { "io-rec", "xfs-rec", "history-rec", "shutdown-rec", "readonly-rec", "other-rec" })
                Assert.Empty(_dir.Runs(quiet));

            var env = Assert.Single(_dir.Runs("all-rec"));
            Assert.Equal("report-1", Text(env, "ERRORWATCH_REPORT_ID"));
            Assert.Equal("corruption", Text(env, "ERRORWATCH_EVENT"));
            Assert.Equal("/dev/sdb1", Text(env, "ERRORWATCH_DEVICE"));
            Assert.Equal("8:17", Text(env, "ERRORWATCH_MAJOR_MINOR"));
            Assert.Equal(JournalTestReports.Uuid.ToString(), Text(env, "ERRORWATCH_UUID"));
            Assert.Equal("data", Text(env, "ERRORWATCH_LABEL"));
            Assert.Equal("ext4", Text(env, "ERRORWATCH_FSTYPE"));
            Assert.Equal("/srv", Text(env, "ERRORWATCH_MOUNTPOINT"));
            Assert.Equal("/srv\n/mnt/bind\nsecond line", Text(env, "ERRORWATCH_MOUNTPOINTS"));
            Assert.Equal("117", Text(env, "ERRORWATCH_ERRNO"));
            Assert.Equal("EUCLEAN", Text(env, "ERRORWATCH_ERRNO_NAME"));
            Assert.Equal("3", Text(env, "ERRORWATCH_ERROR_COUNT"));
            Assert.Equal("0", Text(env, "ERRORWATCH_PREVIOUS_COUNT"));
            Assert.Equal("1", Text(env, "ERRORWATCH_REPORT_COUNT"));
            Assert.Equal("2026-11-21T10:00:00.000000Z", Text(env, "ERRORWATCH_FIRST_TIME"));
            Assert.Equal("report-1", Text(env, "ERRORWATCH_FIRST_REPORT_ID"));
            Assert.Equal("0", Text(env, "ERRORWATCH_PREVIOUS_RUNS"));
            Assert.Equal("0", Text(env, "ERRORWATCH_REPLAYED"));
            Assert.Equal("12", Text(env, "ERRORWATCH_INODE"));
            Assert.Equal("4660", Text(env, "ERRORWATCH_GENERATION"));
            Assert.Equal(JournalTestReports.HostilePath, env["ERRORWATCH_PATH"]);
            Assert.Equal("fanotify", Text(env, "ERRORWATCH_SOURCE"));
            Assert.Equal("critical", Text(env, "ERRORWATCH_SEVERITY"));
            Assert.Equal("all-rec", Text(env, "ERRORWATCH_HOOK"));
            Assert.Equal(report.Summary.Replace("\n", "\\n"), Text(env, "ERRORWATCH_MESSAGE"));
            Assert.Equal("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PATH=" + Text(env, "PATH"));
            Assert.Equal("C.UTF-8", Text(env, "LANG"));
            // Nothing of the test runner's own environment reaches a hook.
            Assert.DoesNotContain(env.Keys, k => k.StartsWith("DOTNET", StringComparison.Ordinal) || k == "USER" || k == "TERM");
            var jsonPath = Text(env, "ERRORWATCH_REPORT_JSON");
            Assert.StartsWith(Path.Combine(_dir.State, "hooks", "run") + "/", jsonPath);
            Assert.False(File.Exists(jsonPath)); // removed when the run ended
            var runId = Text(env, "ERRORWATCH_RUN_ID");
            using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir.Out, $"all-rec.{runId}.json")));
            Assert.Equal("report-1", json.RootElement.GetProperty("id").GetString());
            Assert.Equal(JournalTestReports.HostilePath, json.RootElement.GetProperty("object").GetProperty("path_base64").GetBytesFromBase64());

            // The journal: one outcome entry per run with the catalogued MESSAGE_ID, one entry per line of output.
            var outcomes = _journal.WithMessageId(HookJournal.OutcomeMessageId).ToList();
            Assert.Equal(4, outcomes.Count);
            var entry = outcomes.Single(e => e.GetText("ERRORWATCH_HOOK") == "all-rec");
            Assert.Equal("success", entry.GetText("ERRORWATCH_OUTCOME"));
            Assert.Equal("0", entry.GetText("ERRORWATCH_EXIT_CODE"));
            Assert.Equal("report-1", entry.GetText("ERRORWATCH_REPORT_ID"));
            Assert.Equal(runId, entry.GetText("ERRORWATCH_RUN_ID"));
            Assert.Equal("6", entry.GetText("PRIORITY"));
            Assert.True(double.Parse(entry.GetText("ERRORWATCH_DURATION_SEC")!, System.Globalization.CultureInfo.InvariantCulture) > 0);
            var output = $"ran all-rec {runId}\n";
            Assert.Equal(output.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), entry.GetText("ERRORWATCH_OUTPUT_BYTES"));
            Assert.StartsWith("Hook all-rec for ext4 /dev/sdb1 (/srv): exited with 0 after ", entry.GetText("MESSAGE"));
            var line = Assert.Single(_journal.Sent.Select(s => s.Entry), e => e.GetText("ERRORWATCH_HOOK") == "all-rec" && e.GetText("MESSAGE_ID") is null);
            Assert.Equal("all-rec: " + output.TrimEnd('\n'), line.GetText("MESSAGE"));
            Assert.Equal("report-1", line.GetText("ERRORWATCH_REPORT_ID"));
            Assert.Equal("stdout", line.GetText("ERRORWATCH_HOOK_STREAM"));
        }

        // The ledger has every outcome (errorwatch hooks list reads it without the daemon).
        var last = HookLedger.LastRuns(_dir.State);
        Assert.Equal(["all-rec", "by-uuid", "corruption-rec", "ext4-rec"], last.Select(l => l.Hook).Order(StringComparer.Ordinal));
        Assert.All(last, l => Assert.Equal(("success", "exited with 0", $"uuid:{JournalTestReports.Uuid}"), (l.Outcome, l.Detail, l.Filesystem)));
        // And the hook metrics: one run each, by hook and outcome.
        meterListener.RecordObservableInstruments();
        Assert.Equal(["all-rec", "by-uuid", "corruption-rec", "ext4-rec"], measured.Where(m => m.Outcome == "success").Select(m => m.Hook).Order(StringComparer.Ordinal));
    }

    [RootFact]
    public void History_reports_run_history_hooks_and_event_hooks_only_for_their_event()
    {
        foreach (var name in new[] { "history-rec", "corruption-rec", "io-rec", "readonly-rec" })
            _dir.Recorder(name);
        using var sink = Sink(_dir.Settings());
        sink.Publish(JournalTestReports.Full("old") with { Source = "ext4-superblock" });
        sink.Publish(JournalTestReports.Small("io", JournalTestReports.EIO, 1) with { Filesystem = JournalTestReports.Filesystem() with { Uuid = Guid.NewGuid() } });
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        Assert.Equal("history", Text(Assert.Single(_dir.Runs("history-rec")), "ERRORWATCH_EVENT"));
        Assert.Equal("io", Text(Assert.Single(_dir.Runs("io-rec")), "ERRORWATCH_EVENT"));
        Assert.Empty(_dir.Runs("corruption-rec"));
        Assert.Empty(_dir.Runs("readonly-rec"));
    }

    [RootFact]
    public void A_run_cut_short_by_the_stop_runs_once_more_at_the_next_start_with_the_same_run_id()
    {
        var marks = Path.Combine(_dir.Out, "marks");
        _dir.Write("all-slow", $"""
            #!/bin/sh
            echo "start $ERRORWATCH_RUN_ID $ERRORWATCH_REPLAYED $ERRORWATCH_ERROR_COUNT" >> '{marks}'
            sleep "$(cat '{_dir.Out}/sleep' 2>/dev/null || echo 60)"
            echo "end $ERRORWATCH_RUN_ID" >> '{marks}'
            """);
        string[] Marks() => File.Exists(marks) ? File.ReadAllLines(marks) : [];

        using (var first = Sink(_dir.Settings()))
        {
            first.Publish(HookReports.Corruption("r1", DateTimeOffset.UtcNow, count: 5));
            Assert.True(SpinWait.SpinUntil(() => Marks().Length == 1, TimeSpan.FromSeconds(20)));
            first.BeginStop();
            first.Publish(HookReports.Corruption("r2", DateTimeOffset.UtcNow, count: 2)); // published while stopping: recorded, not run
            first.Stop(TimeSpan.FromSeconds(2));
        }
        var startLine = Assert.Single(Marks()).Split(' ');
        var interrupted = _journal.WithMessageId(HookJournal.OutcomeMessageId).Single();
        Assert.Contains("stopped with ErrorWatch", interrupted.GetText("MESSAGE"));
        Assert.Empty(HookLedger.LastRuns(_dir.State));

        File.WriteAllText(Path.Combine(_dir.Out, "sleep"), "0");
        using (var second = Sink(_dir.Settings()))
        {
            second.Start();
            Assert.True(SpinWait.SpinUntil(() => Marks().Count(l => l.StartsWith("end", StringComparison.Ordinal)) == 2, TimeSpan.FromSeconds(20)));
            Assert.True(second.WaitIdle(TimeSpan.FromSeconds(20)));
        }
        var lines = Marks();
        Assert.Equal($"start {startLine[1]} 1 5", lines[1]);      // the same run, replayed
        Assert.Equal($"end {startLine[1]}", lines[2]);
        Assert.StartsWith("start ", lines[3]);                     // the one recorded during the stop
        Assert.EndsWith(" 1 2", lines[3]);
        Assert.Equal(5, lines.Length);

        using (var third = Sink(_dir.Settings()))
        {
            third.Start();
            Assert.True(third.WaitIdle(TimeSpan.FromSeconds(5)));
        }
        Assert.Equal(5, Marks().Length); // done is done
        Assert.Equal("success", Assert.Single(HookLedger.LastRuns(_dir.State)).Outcome);
    }

    [RootFact]
    public void A_hook_file_added_later_runs_without_a_restart_and_a_reload_replaces_rules_and_limits()
    {
        using var sink = Sink(_dir.Settings());
        sink.Publish(HookReports.Corruption("r1", DateTimeOffset.UtcNow));
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        Assert.Empty(sink.Catalog.Hooks);

        _dir.Recorder("all-new");
        sink.Publish(HookReports.Corruption("r2", DateTimeOffset.UtcNow));
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        Assert.Equal("r2", Text(Assert.Single(_dir.Runs("all-new")), "ERRORWATCH_REPORT_ID"));

        var bin = Directory.CreateDirectory(Path.Combine(_dir.Path, "bin")).FullName;
        sink.Reload(_dir.Settings(HookReports.Rule("added", exec: _dir.Recorder("rule-rec", directory: bin))) with { MaxConcurrent = 1 });
        Assert.Equal(1, sink.Dispatcher!.MaxConcurrent);
        sink.Publish(HookReports.Corruption("r3", DateTimeOffset.UtcNow, uuid: Guid.NewGuid()));
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        Assert.Equal("r3", Text(Assert.Single(_dir.Runs("rule-rec")), "ERRORWATCH_REPORT_ID"));
        Assert.Equal(2, _dir.Runs("all-new").Count);
    }

    [RootFact]
    public void Output_beyond_the_per_run_limit_is_counted_not_logged()
    {
        _dir.Write("all-chatty", "#!/bin/sh\nseq 1 250\n");
        using var sink = Sink(_dir.Settings());
        sink.Publish(HookReports.Corruption("r1", DateTimeOffset.UtcNow));
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        var lines = _journal.Sent.Select(s => s.Entry).Where(e => e.GetText("ERRORWATCH_HOOK_STREAM") == "stdout").ToList();
        Assert.Equal(200, lines.Count);
        Assert.Equal("all-chatty: 200", lines[^1].GetText("MESSAGE"));
        var outcome = _journal.WithMessageId(HookJournal.OutcomeMessageId).Single();
        Assert.Equal("250", outcome.GetText("ERRORWATCH_OUTPUT_LINES"));
        Assert.Equal("50", outcome.GetText("ERRORWATCH_OUTPUT_LINES_DROPPED"));
        Assert.Contains("(50 line(s) not logged)", outcome.GetText("MESSAGE"));
    }
}
