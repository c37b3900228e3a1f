using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Recovery;
using ErrorWatch.Reports;
using ErrorWatch.Tests.EndToEnd;
using ErrorWatch.Tests.Journal;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.Recovery;

/// <summary>
/// Hooks run by the real daemon for real errors on scratch loop filesystems of the test's own
/// (ext4 mounted errors=continue; corruption made with debugfs on the unmounted image).
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed partial class HookEndToEndTests : IDisposable
{
    private const string Pwned = "/tmp/pwned";

    private readonly HookDirectory _dir = new();

    public HookEndToEndTests()
    {
        // A leftover from elsewhere would make the "nothing was executed" check meaningless.
        File.Delete(Pwned);
        File.Delete("/pwned");
    }

    public void Dispose()
    {
        File.Delete(Pwned);
        File.Delete("/pwned");
        _dir.Dispose();
    }

    private DaemonHarness Daemon(ScratchFilesystem fs, HookSink hooks) =>
        new(new DaemonOptions { Watch = new WatchOptions { Include = [fs.MountPoint] }, StateDirectory = _dir.State }, sinks: [hooks]);

    private static string Text(Dictionary<string, byte[]> env, string name) => Encoding.UTF8.GetString(env[name]);

    [LoopFact]
    public void A_real_corruption_runs_the_matching_hooks_once_with_the_right_environment_and_no_other_hook()
    {
        using var scratch = new ScratchDirectory();
        ulong ino = 0;
        var fs = scratch.Ext4("hooked", prepare: root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "projects", "reports"));
            for (var i = 0; i < 5; i++)
                File.WriteAllText(Path.Combine(root, "projects", "reports", $"q{i}.txt"), "x");
            ino = Ext4ErrorTests.Inode(Path.Combine(root, "projects", "reports"));
        });
        var uuid = Tool.Check("blkid", "-p", "-s", "UUID", "-o", "value", fs.Image).Trim();
        fs.CorruptOffline("zap_block -f /projects/reports -p 0x41 0");

        foreach (var name in new[] { "all-rec", "ext4-rec", "corruption-rec", "xfs-rec", "io-rec", "history-rec", "shutdown-rec", "readonly-rec" })
            _dir.Recorder(name);
        var bin = Directory.CreateDirectory(Path.Combine(_dir.Path, "bin")).FullName;
        var ruleHook = _dir.Recorder("rule-rec", directory: bin);
        var otherHook = _dir.Recorder("other-rec", directory: bin);
        // The default repeat policy (interval=1h): later reports of this filesystem wait for the next hour.
        var settings = _dir.Settings(
            HookReports.Rule("by-uuid", exec: ruleHook) with { Repeat = null, Filesystems = [uuid], Errnos = ["EBADMSG", "EUCLEAN"], Types = ["ext4"] },
            HookReports.Rule("other-uuid", exec: otherHook) with { Repeat = null, Filesystems = [Guid.NewGuid().ToString()] },
            HookReports.Rule("other-errno", exec: otherHook) with { Repeat = null, Errnos = ["ENOSPC"] }) with { Repeat = RepeatPolicy.Default };
        var journal = new RecordingJournal();
        using var hooks = new HookSink(settings, _dir.State, journal, HookReports.Quiet);
        using var daemon = Daemon(fs, hooks);
        var baseline = fs.ErrorsCount;

        Tool.Run("ls", Path.Combine(fs.MountPoint, "projects", "reports"));

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 1);
        Assert.True(hooks.WaitIdle(TimeSpan.FromSeconds(30)));
        var ran = new[] { "all-rec", "ext4-rec", "corruption-rec", "rule-rec" };
        foreach (var name in ran)
        {
            var env = Assert.Single(_dir.Runs(name));
            var report = reports.Single(r => r.Id == Text(env, "ERRORWATCH_REPORT_ID"));
            Assert.Equal(fs.LoopDevice, Text(env, "ERRORWATCH_DEVICE"));
            Assert.Equal(fs.Device.ToString(), Text(env, "ERRORWATCH_MAJOR_MINOR"));
            Assert.Equal(uuid, Text(env, "ERRORWATCH_UUID"));
            Assert.Equal("ext4", Text(env, "ERRORWATCH_FSTYPE"));
            Assert.Equal(fs.MountPoint, Text(env, "ERRORWATCH_MOUNTPOINT"));
            Assert.Equal("corruption", Text(env, "ERRORWATCH_EVENT"));
            Assert.Equal(report.Source, Text(env, "ERRORWATCH_SOURCE"));
            Assert.Equal(report.Error.Errno.ToString(), Text(env, "ERRORWATCH_ERRNO"));
            Assert.Equal(report.Error.Name, Text(env, "ERRORWATCH_ERRNO_NAME"));
            Assert.Equal(report.Error.Count.ToString(), Text(env, "ERRORWATCH_ERROR_COUNT"));
            Assert.Equal(report.Summary, Text(env, "ERRORWATCH_MESSAGE"));
            Assert.Equal(report.Object.Inode?.ToString() ?? "", Text(env, "ERRORWATCH_INODE"));
            Assert.Equal(report.Object.Generation?.ToString() ?? "", Text(env, "ERRORWATCH_GENERATION"));
            Assert.Equal(report.Object.Path?.Bytes.ToArray() ?? [], env["ERRORWATCH_PATH"]);
            Assert.Equal(name is "rule-rec" ? "by-uuid" : name, Text(env, "ERRORWATCH_HOOK"));
            using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir.Out, $"{name}.{Text(env, "ERRORWATCH_RUN_ID")}.json")));
            Assert.Equal(report.Id, json.RootElement.GetProperty("id").GetString());
        }
        // The first report is the kernel's, about the directory, found by path.
        var first = reports.Single(r => r.Id == Text(_dir.Runs("all-rec")[0], "ERRORWATCH_REPORT_ID"));
        Assert.Equal(ino, first.Object.Inode);
        Assert.Equal(Path.Combine(fs.MountPoint, "projects", "reports"), Text(_dir.Runs("all-rec")[0], "ERRORWATCH_PATH"));
        foreach (var quiet in new[] { "xfs-rec", "io-rec", "history-rec", "shutdown-rec", "readonly-rec", "other-rec" })
            Assert.Empty(_dir.Runs(quiet));
        Assert.Equal(4, journal.WithMessageId(HookJournal.OutcomeMessageId).Count(e => e.GetText("ERRORWATCH_OUTCOME") == "success"));
    }

    [LibraryImport("libc", EntryPoint = "mkdir", SetLastError = true)]
    private static unsafe partial int Mkdir(byte* path, int mode);

    [LoopFact]
    public unsafe void A_hostile_file_name_reaches_the_hook_byte_for_byte_and_nothing_in_it_is_executed()
    {
        // A name holds no '/': the path /evil\n"name" 'q' $(touch /tmp/pwned) `touch pwned`... is three
        // directories, the last with bytes that are never UTF-8. Any shell evaluating the path would touch a file.
        var outer = "evil\n\"name\" 'q' $(touch ";
        byte[] last = [.. "pwned) `touch pwned`; touch pwned "u8.ToArray(), 0xff, 0xfe, .. "\x1b[0m"u8.ToArray()];
        byte[] name = [.. Encoding.UTF8.GetBytes(outer + "/tmp/"), .. last];
        using var scratch = new ScratchDirectory();
        ulong ino = 0;
        byte[] path;
        var fs = scratch.Ext4("hostile", prepare: root =>
        {
            var tmp = Directory.CreateDirectory(Path.Combine(root, outer, "tmp")).FullName;
            byte[] full = [.. Encoding.UTF8.GetBytes(tmp + "/"), .. last, 0];
            fixed (byte* p = full)
                Assert.True(Mkdir(p, 0x1ed) == 0, $"mkdir: {Interop.ErrnoTable.Name(Marshal.GetLastPInvokeError())}");
            var listing = Tool.Check("ls", "-i1", "--quoting-style=escape", tmp);
            ino = ulong.Parse(Assert.Single(listing.Split('\n', StringSplitOptions.RemoveEmptyEntries)).Trim().Split(' ')[0]);
        });
        path = [.. Encoding.UTF8.GetBytes(fs.MountPoint + "/"), .. name];
        fs.CorruptOffline($"zap_block -f <{ino}> -p 0x41 0");

        _dir.Recorder("all-rec");
        // A hook that uses the path as an admin would (quoted): it must see the name, never run it.
        _dir.Write("corruption-quoted", $"""
            #!/bin/sh
            printf '%s' "$ERRORWATCH_PATH" > '{_dir.Out}/quoted-path'
            ls -d "$ERRORWATCH_PATH" > /dev/null 2>&1 && echo exists > '{_dir.Out}/quoted-exists'
            """);
        using var hooks = new HookSink(_dir.Settings(), _dir.State, new RecordingJournal(), HookReports.Quiet);
        using var daemon = Daemon(fs, hooks);
        var baseline = fs.ErrorsCount;

        Tool.Run("ls", "-R", fs.MountPoint);

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 1);
        var report = Assert.Single(reports, r => r.Object.Inode == ino);
        Assert.Equal(path, report.Object.Path!.Bytes.ToArray());
        Assert.True(hooks.WaitIdle(TimeSpan.FromSeconds(30)));

        var run = _dir.Runs("all-rec").Single(e => Text(e, "ERRORWATCH_REPORT_ID") == report.Id);
        Assert.Equal(path, run["ERRORWATCH_PATH"]);
        using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir.Out, $"all-rec.{Text(run, "ERRORWATCH_RUN_ID")}.json")));
        var o = json.RootElement.GetProperty("object");
        Assert.Equal(path, o.GetProperty("path_base64").GetBytesFromBase64());
        Assert.Equal(FsPathEscaped(path), o.GetProperty("path").GetString());
        Assert.Equal(path, File.ReadAllBytes(Path.Combine(_dir.Out, "quoted-path")));
        Assert.True(File.Exists(Path.Combine(_dir.Out, "quoted-exists")));
        Assert.False(File.Exists(Pwned), "something evaluated the file name");
        Assert.False(File.Exists("/pwned"), "something evaluated the file name");
    }

    private static string FsPathEscaped(byte[] path) => ErrorWatch.Filesystems.FsPath.Escape(path);

    [LoopFact]
    public void A_storm_of_1000_errors_never_runs_a_hook_twice_at_once_for_one_filesystem_keeps_the_limit_and_counts_exactly()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("storm");
        var log = Path.Combine(_dir.Out, "log");
        foreach (var name in new[] { "all-slow-a", "all-slow-b", "all-slow-c" })
            _dir.Write(name, $"""
                #!/bin/sh
                echo "B {name} $ERRORWATCH_ERROR_COUNT $ERRORWATCH_REPORT_COUNT" >> '{log}'
                sleep 0.3
                echo "E {name}" >> '{log}'
                """);
        var settings = _dir.Settings() with { MaxConcurrent = 2, Repeat = RepeatPolicy.Always };
        using var hooks = new HookSink(settings, _dir.State, new RecordingJournal(), HookReports.Quiet);
        using var daemon = Daemon(fs, hooks);
        var baseline = fs.ErrorsCount;

        fs.TriggerFsErrors(1000);

        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 1000);
        Assert.Equal(1000UL, fs.ErrorsCount - baseline);
        Assert.Equal(1000UL, reports.Aggregate(0UL, (s, r) => s + r.Error.Count));
        Assert.True(hooks.WaitIdle(TimeSpan.FromSeconds(120)));

        var running = new HashSet<string>();
        var peak = 0;
        var errors = new Dictionary<string, ulong>();
        var runs = new Dictionary<string, int>();
        var folded = new Dictionary<string, int>();
        foreach (var line in File.ReadAllLines(log))
        {
            var parts = line.Split(' ');
            if (parts[0] == "B")
            {
                Assert.True(running.Add(parts[1]), $"{parts[1]} started while it was running for this filesystem");
                peak = Math.Max(peak, running.Count);
                errors[parts[1]] = errors.GetValueOrDefault(parts[1]) + ulong.Parse(parts[2]);
                runs[parts[1]] = runs.GetValueOrDefault(parts[1]) + 1;
                folded[parts[1]] = folded.GetValueOrDefault(parts[1]) + int.Parse(parts[3]);
            }
            else
                Assert.True(running.Remove(parts[1]));
        }
        Assert.Empty(running);
        Assert.True(peak <= 2, $"{peak} hooks ran at once with MaxConcurrent=2");
        Assert.True(hooks.Dispatcher!.PeakRunning <= 2);
        foreach (var name in new[] { "all-slow-a", "all-slow-b", "all-slow-c" })
        {
            Assert.Equal(1000UL, errors[name]);
            Assert.Equal(reports.Count, folded[name]);
            Assert.True(runs[name] < reports.Count || reports.Count == 1, $"{name}: {runs[name]} runs for {reports.Count} reports");
        }
    }

    [LoopFact]
    public void Kill_9_while_hooks_are_due_runs_each_once_more_after_the_restart_and_ends_the_orphaned_run_first()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("kill9");
        var log = Path.Combine(_dir.Out, "log");
        _dir.Write("corruption-a-slow", $"""
            #!/bin/sh
            echo "start a $ERRORWATCH_RUN_ID $ERRORWATCH_REPLAYED $$" >> '{log}'
            [ "$ERRORWATCH_REPLAYED" = 1 ] || sleep 120
            echo "end a $ERRORWATCH_RUN_ID" >> '{log}'
            """);
        _dir.Write("corruption-b-fast", $"""
            #!/bin/sh
            echo "start b $ERRORWATCH_RUN_ID $ERRORWATCH_REPLAYED $$" >> '{log}'
            echo "end b $ERRORWATCH_RUN_ID" >> '{log}'
            """);
        var config = Path.Combine(_dir.Path, "errorwatch.conf");
        File.WriteAllText(config, $"[Hooks]\nDirectory={_dir.Hooks}\nMaxConcurrent=1\nRepeat=always\n");
        string[] Log() => File.Exists(log) ? File.ReadAllLines(log) : [];

        int orphan;
        using (var first = Cli(config, fs))
        {
            try
            {
                ReadLine(first); // capabilities
                fs.TriggerFsError("hooks due");
                Assert.Equal("report", JsonDocument.Parse(ReadLine(first)).RootElement.GetProperty("type").GetString());
                Assert.True(SpinWait.SpinUntil(() => Log().Any(l => l.StartsWith("start a ", StringComparison.Ordinal)), TimeSpan.FromSeconds(20)));
                Thread.Sleep(300);
                // a runs (and sleeps); b is due and waits for the one slot.
                Assert.DoesNotContain(Log(), l => l.StartsWith("start b", StringComparison.Ordinal));
            }
            finally
            {
                first.Kill(); // SIGKILL
                first.WaitForExit(5000);
            }
        }
        orphan = int.Parse(Log().Single(l => l.StartsWith("start a ", StringComparison.Ordinal)).Split(' ')[4]);
        Assert.True(OwnProcess.Alive(orphan), "the hook outlives a daemon killed with SIGKILL (no systemd here to kill its cgroup)");

        using (var second = Cli(config, fs))
        {
            try
            {
                ReadLine(second);
                Assert.True(SpinWait.SpinUntil(() => Log().Count(l => l.StartsWith("end ", StringComparison.Ordinal)) >= 2, TimeSpan.FromSeconds(30)),
                    string.Join('\n', Log()));
                Thread.Sleep(500);
                Assert.False(OwnProcess.Alive(orphan), "the run left over from before the kill must end before it runs again");
            }
            finally
            {
                Stop(second);
            }
        }
        using (var third = Cli(config, fs))
        {
            try
            {
                ReadLine(third);
                Thread.Sleep(1500);
            }
            finally
            {
                Stop(third);
            }
        }

        var lines = Log();
        var starts = lines.Where(l => l.StartsWith("start ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        var ends = lines.Where(l => l.StartsWith("end ", StringComparison.Ordinal)).Select(l => l.Split(' ')).ToList();
        // a's run that was running at the kill: started twice (the second time replayed), ended once.
        var aRun = starts.First(s => s[1] == "a")[2];
        Assert.Equal(["0", "1"], starts.Where(s => s[1] == "a" && s[2] == aRun).Select(s => s[3]));
        // Every run (b's, recorded as due but never started, included) ended exactly once; nothing after that.
        foreach (var run in starts.Select(s => (s[1], s[2])).Distinct())
            Assert.Single(ends, e => (e[1], e[2]) == run);
        Assert.All(starts.Where(s => s[2] != aRun), s => Assert.Equal("1", s[3]));
        Assert.Single(starts.Where(s => s[1] == "b").Select(s => s[2]).Distinct());
    }

    private Process Cli(string config, ScratchFilesystem fs)
    {
        return Process.Start(ErrorWatchBinary.StartInfo(["run", "--config", config, "--state-dir", _dir.State, "--filesystem", fs.MountPoint,
            "--output", "json", "--journal", "no", "--bus", "none", "--log-level", "Warning"]))!;
    }

    private static void Stop(Process process)
    {
        if (!process.HasExited)
        {
            _ = OwnProcess.Signal(process.Id, 15);
            if (!process.WaitForExit(5000))
                process.Kill();
        }
        process.WaitForExit(5000);
    }

    private static string ReadLine(Process process)
    {
        var line = process.StandardOutput.ReadLineAsync();
        Assert.True(line.Wait(TimeSpan.FromSeconds(20)), "no output line within 20 s");
        return line.Result ?? throw new Xunit.Sdk.XunitException("errorwatch closed its output: " + process.StandardError.ReadToEnd());
    }
}
