using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using ErrorWatch.Cli.Demo;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>The errorwatch executable itself, as an admin runs it.</summary>
[Collection(ScratchCollection.Name)]
public sealed partial class CliTests : IDisposable
{
    /// <summary>Every `run` here gets its own state directory: never the machine's /var/lib/errorwatch.</summary>
    private readonly string _state = Directory.CreateTempSubdirectory("errorwatch-cli-state-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [LoopFact]
    public void Run_with_json_output_prints_capabilities_then_one_report_per_event_and_stops_on_sigterm_within_two_seconds()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("cli");
        using var process = Start("run", "--output", "json", "--filesystem", fs.MountPoint, "--log-level", "Warning");
        try
        {
            using var capabilities = JsonDocument.Parse(ReadLine(process));
            Assert.Equal("capabilities", capabilities.RootElement.GetProperty("type").GetString());
            Assert.Equal("accepted", capabilities.RootElement.GetProperty("fs_error_marks").GetString());
            var watched = Assert.Single(capabilities.RootElement.GetProperty("watched").EnumerateArray());
            Assert.Equal(fs.LoopDevice, watched.GetProperty("device").GetString());

            fs.TriggerFsError();
            using var report = JsonDocument.Parse(ReadLine(process));
            var r = report.RootElement;
            Assert.Equal("report", r.GetProperty("type").GetString());
            Assert.True(Guid.TryParse(r.GetProperty("id").GetString(), out _));
            Assert.True(DateTimeOffset.TryParse(r.GetProperty("time").GetString(), out _));
            Assert.Equal("fanotify", r.GetProperty("source").GetString());
            Assert.Equal(fs.LoopDevice, r.GetProperty("filesystem").GetProperty("device").GetString());
            Assert.True(Guid.TryParse(r.GetProperty("filesystem").GetProperty("uuid").GetString(), out _));
            Assert.Equal("ext4", r.GetProperty("filesystem").GetProperty("type").GetString());
            Assert.Equal(fs.MountPoint, r.GetProperty("filesystem").GetProperty("mountpoints")[0].GetString());
            Assert.Equal(117, r.GetProperty("error").GetProperty("errno").GetInt32());
            Assert.Equal("EUCLEAN", r.GetProperty("error").GetProperty("name").GetString());
            Assert.Equal(1, r.GetProperty("error").GetProperty("count").GetInt32());
            Assert.Equal(JsonValueKind.Null, r.GetProperty("object").GetProperty("inode").ValueKind);
            Assert.Equal(JsonValueKind.Null, r.GetProperty("object").GetProperty("generation").ValueKind);
            Assert.Equal(JsonValueKind.Null, r.GetProperty("object").GetProperty("path").ValueKind);
            Assert.Equal(JsonValueKind.Object, r.GetProperty("details").ValueKind);
            // ext4 writes its last-error record from deferred work: a report decoded first may not have it yet.
            if (r.GetProperty("details").GetProperty("ext4").TryGetProperty("last_error", out var last))
                Assert.Equal("trigger_test_error", last.GetProperty("function").GetString());

            var clock = Stopwatch.StartNew();
            Assert.True(OwnProcess.Signal(process.Id, 15));
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(2)), "errorwatch run must exit within 2 s of SIGTERM");
            Assert.Equal(0, process.ExitCode);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2));
        }
        finally
        {
            if (!process.HasExited)
                process.Kill();
        }
    }

    /// <summary>
    /// --filesystem and --exclude take a mount point, device, major:minor, UUID or label
    /// (docs/configuration.md): each form, end to end on the shipped binary. Only the chosen
    /// filesystem is watched and reported; excluded, it is the one left out.
    /// </summary>
    [LoopTheory]
    [InlineData("mount point")]
    [InlineData("device")]
    [InlineData("major:minor")]
    [InlineData("uuid")]
    [InlineData("label")]
    public void Filesystem_and_exclude_select_by_each_form_the_docs_name(string form)
    {
        using var scratch = new ScratchDirectory();
        var chosen = scratch.Ext4("chosen", mkfs: ["-O", "metadata_csum", "-L", "ew-chosen"]);
        var other = scratch.Ext4("other", mkfs: ["-O", "metadata_csum", "-L", "ew-other"]);
        var selector = form switch
        {
            "mount point" => chosen.MountPoint,
            "device" => chosen.LoopDevice,
            "major:minor" => chosen.Device.ToString(),
            "uuid" => Tool.Check("blkid", "-p", "-s", "UUID", "-o", "value", chosen.Image).Trim(),
            _ => "ew-chosen",
        };
        Selects(["--filesystem", selector], watched: chosen, left: other);
        Selects(["--filesystem", chosen.MountPoint, "--filesystem", other.MountPoint, "--exclude", selector], watched: other, left: chosen);
    }

    /// <summary>
    /// The startup report names why a filesystem that cannot be marked is not watched, for the kinds
    /// this kernel refuses (docs/configuration.md, kernel-support.md): overlayfs cannot encode file
    /// handles (EOPNOTSUPP), a FUSE filesystem has no fsid (ENODEV), a btrfs subvolume mounted alone
    /// has an fsid of its own (EXDEV). tmpfs is marked. Real mounts of the test's own, all undone.
    /// </summary>
    [LoopFact]
    public void Startup_names_why_each_filesystem_this_kernel_refuses_is_not_watched()
    {
        using var scratch = new ScratchDirectory();
        string Dir(string name) => Directory.CreateDirectory(Path.Combine(scratch.Path, name)).FullName;
        var mounted = new List<string>();
        string? loop = null;
        Process? fuse = null;
        try
        {
            var tmpfs = Dir("tmpfs");
            Tool.Check("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", tmpfs);
            mounted.Add(tmpfs);

            var overlay = Dir("overlay");
            Tool.Check("mount", "-t", "overlay", "overlay", "-o", $"lowerdir={Dir("lower")},upperdir={Dir("upper")},workdir={Dir("work")}", overlay);
            mounted.Add(overlay);

            var image = Path.Combine(scratch.Path, "fuse.img");
            Tool.Check("truncate", "-s", "8M", image);
            Tool.Check("mkfs.ext4", "-q", "-F", image);
            var fuseDir = Dir("fuse");
            fuse = Process.Start(new ProcessStartInfo("fuse2fs", ["-f", image, fuseDir, "-o", "fakeroot"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            var clock = Stopwatch.StartNew();
            while (!File.ReadAllText("/proc/self/mountinfo").Contains($" {fuseDir} ") && clock.Elapsed < TimeSpan.FromSeconds(10))
                Thread.Sleep(50);
            mounted.Add(fuseDir);

            var btrfsImage = Path.Combine(scratch.Path, "btrfs.img");
            Tool.Check("truncate", "-s", "128M", btrfsImage);
            Tool.Check("mkfs.btrfs", "-q", btrfsImage);
            loop = Tool.Check("losetup", "-f", "--show", btrfsImage).Trim();
            var top = Dir("btrfs-top");
            Tool.Check("mount", loop, top);
            Tool.Check("btrfs", "subvolume", "create", Path.Combine(top, "sub"));
            var subvolume = Dir("btrfs-sub");
            Tool.Check("mount", "-o", "subvol=sub", loop, subvolume);
            mounted.Add(subvolume);
            Tool.Check("umount", top); // only the subvolume is left

            using var process = Start("run", "--output", "json", "--log-level", "Error", "--fs-type", "tmpfs", "--fs-type", "overlay", "--fs-type", "fuse", "--fs-type", "btrfs",
                "--filesystem", tmpfs, "--filesystem", overlay, "--filesystem", fuseDir, "--filesystem", subvolume);
            try
            {
                using var capabilities = JsonDocument.Parse(ReadLine(process));
                var watched = capabilities.RootElement.GetProperty("watched").EnumerateArray().ToList();
                var only = Assert.Single(watched);
                Assert.Equal(("tmpfs", tmpfs), (only.GetProperty("type").GetString(), only.GetProperty("mountpoints")[0].GetString()));
                var skipped = capabilities.RootElement.GetProperty("skipped").EnumerateArray()
                    .Where(e => e.GetProperty("reason").GetString() != "not selected by --filesystem")
                    .ToDictionary(e => e.GetProperty("mountpoint").GetString()!, e => (Reason: e.GetProperty("reason").GetString()!, Errno: e.TryGetProperty("errno", out var n) ? n.GetString() : null));
                Assert.Equal(("the filesystem cannot encode file handles (EOPNOTSUPP)", "EOPNOTSUPP"), skipped[overlay]);
                Assert.Equal(("the filesystem has no fsid, so fanotify cannot identify it (ENODEV)", "ENODEV"), skipped[fuseDir]);
                Assert.Equal(("the filesystem's fsid differs from its root's (a btrfs subvolume?) (EXDEV)", "EXDEV"), skipped[subvolume]);
                Assert.True(OwnProcess.Signal(process.Id, 15));
                Assert.True(process.WaitForExit(TimeSpan.FromSeconds(5)));
            }
            finally
            {
                if (!process.HasExited)
                    process.Kill();
            }
        }
        finally
        {
            foreach (var dir in Enumerable.Reverse(mounted))
                if (Tool.Run("umount", dir).ExitCode != 0)
                    Tool.Run("umount", "-l", dir);
            if (fuse is not null && !fuse.WaitForExit(TimeSpan.FromSeconds(5)))
                fuse.Kill();
            fuse?.Dispose();
            if (loop is not null)
                Tool.Run("losetup", "-d", loop);
        }
    }

    /// <summary>Runs with <paramref name="selection"/>: exactly <paramref name="watched"/> is watched, and of one error on each only its own is reported.</summary>
    private void Selects(string[] selection, ScratchFilesystem watched, ScratchFilesystem left)
    {
        using var process = Start(["run", "--output", "json", "--log-level", "Warning", .. selection]);
        try
        {
            using var capabilities = JsonDocument.Parse(ReadLine(process));
            var devices = capabilities.RootElement.GetProperty("watched").EnumerateArray().Select(w => w.GetProperty("device").GetString()).ToList();
            Assert.Equal([watched.LoopDevice], devices);
            left.TriggerFsError("left alone");
            watched.TriggerFsError("selected");
            using var report = JsonDocument.Parse(ReadLine(process));
            Assert.Equal(watched.LoopDevice, report.RootElement.GetProperty("filesystem").GetProperty("device").GetString());
            Assert.True(OwnProcess.Signal(process.Id, 15));
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(5)));
            Assert.DoesNotContain(left.LoopDevice, process.StandardOutput.ReadToEnd());
        }
        finally
        {
            if (!process.HasExited)
                process.Kill();
        }
    }

    [LoopFact]
    public void Run_marks_the_error_its_own_path_lookup_raises_as_raised_by_errorwatch()
    {
        using var scratch = new ScratchDirectory();
        ulong ino = 0;
        var fs = scratch.Ext4("own", prepare: root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "dir", "broken"));
            ino = Ext4ErrorTests.Inode(Path.Combine(root, "dir", "broken"));
        });
        fs.CorruptOffline($"sif <{ino}> block[0] 0");
        using var process = Start("run", "--output", "json", "--filesystem", fs.MountPoint, "--log-level", "Warning");
        try
        {
            ReadLine(process); // capabilities
            Tool.Run("ls", Path.Combine(fs.MountPoint, "dir", "broken"));

            // ls's lookup fails first; resolving that inode's path (open_by_handle_at) fails again, in the daemon.
            var seen = new List<string>();
            JsonElement own;
            do
            {
                var line = ReadLine(process);
                seen.Add(line);
                own = JsonDocument.Parse(line).RootElement;
            }
            while (!(own.TryGetProperty("process", out var p) && p.GetProperty("errorwatch").GetBoolean()) && seen.Count < 20);
            Assert.True(own.GetProperty("process").GetProperty("errorwatch").GetBoolean(), "no report raised by errorwatch itself:\n" + string.Join('\n', seen));
            Assert.Equal(process.Id, own.GetProperty("process").GetProperty("pid").GetInt32());
            Assert.Equal((long)ino, own.GetProperty("object").GetProperty("inode").GetInt64());
            Assert.All(seen[..^1], l => Assert.NotEqual(process.Id, JsonDocument.Parse(l).RootElement.GetProperty("process").GetProperty("pid").GetInt32()));
        }
        finally
        {
            OwnProcess.Stop(process);
        }
    }

    [Fact]
    public void Decode_prints_the_same_json_reports_for_a_captured_buffer()
    {
        var file = Path.Combine(TestPaths.FixturesDir, "ext4-three-events-two-objects.bin");
        using var process = Start("decode", file, "--output", "json");
        var lines = process.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, process.ExitCode);
        Assert.Equal(3, lines.Length);
        var reports = lines.Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal([12, 0, 12], reports.Select(r => r.GetProperty("object").GetProperty("inode").ValueKind == JsonValueKind.Null ? 0 : r.GetProperty("object").GetProperty("inode").GetInt32()));
        Assert.All(reports, r => Assert.Equal(117, r.GetProperty("error").GetProperty("errno").GetInt32()));
        Assert.Equal(0xa2a0ce80u, reports[0].GetProperty("object").GetProperty("generation").GetUInt32());
        Assert.Equal("ext4", reports[0].GetProperty("decoder").GetString());
    }

    [Fact]
    public void Decode_never_marks_a_capture_as_raised_by_errorwatch_even_when_its_pid_is_the_decoders_own()
    {
        var buffer = TestPaths.ReadFixture("ext4-three-events-two-objects.bin");
        using var decode = DecodeStandardInput.Start();
        // Each event names the decoding process itself: fanotify_event_metadata.pid is at offset 20.
        for (var offset = 0; offset < buffer.Length; offset += (int)BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(offset)))
            BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(offset + 20), decode.Process.Id);

        var (exitCode, stdout, stderr) = decode.Finish(buffer);

        Assert.True(exitCode == 0, $"decode exited {exitCode}: {stderr}");
        var reports = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("process")).ToList();
        Assert.Equal(3, reports.Count);
        Assert.All(reports, p => Assert.Equal(decode.Process.Id, p.GetProperty("pid").GetInt32()));
        Assert.All(reports, p => Assert.False(p.GetProperty("errorwatch").GetBoolean()));
    }

    [Fact]
    public void Decode_names_the_offset_and_problem_of_a_malformed_buffer_and_exits_nonzero()
    {
        var good = File.ReadAllBytes(Path.Combine(TestPaths.FixturesDir, "ext4-fswide-x3.bin"));
        var bad = good.Concat(good).ToArray();
        bad[good.Length + 4] = 9; // metadata version of the second event
        var file = Path.Combine(Path.GetTempPath(), $"errorwatch-bad-{Environment.ProcessId}.bin");
        File.WriteAllBytes(file, bad);
        try
        {
            using var process = Start("decode", file, "--output", "json");
            var stdout = process.StandardOutput.ReadToEnd();
            var stderr = process.StandardError.ReadToEnd();
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)));
            Assert.Equal(1, process.ExitCode);
            Assert.Single(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // the good first event is still decoded
            Assert.Contains($"offset {good.Length}", stderr);
            Assert.Contains("version 9", stderr);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("Argument 'xml' not recognized", "run", "--output", "xml")]
    [InlineData("Required argument missing for option: '--mount-tracking'", "run", "--mount-tracking")]
    [InlineData("Required argument missing for option: '--output'", "run", "--output")]
    [InlineData("--check-interval must be between 0.1 and 86400 seconds", "run", "--check-interval", "0")]
    [InlineData("Cannot parse argument 'soon'", "run", "--check-interval", "soon")]
    public void Run_refuses_bad_options_with_a_clear_message_and_no_stack_trace(string message, params string[] args)
    {
        using var process = Start(args);
        var stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.NotEqual(0, process.ExitCode);
        Assert.Contains(message, stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    [LoopFact]
    public void Kill_9_during_a_storm_loses_no_report_that_was_out_and_leaves_the_store_readable()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("kill9");
        var printed = new List<string>();
        using (var process = Start("run", "--output", "json", "--filesystem", fs.MountPoint, "--log-level", "Warning"))
        {
            Assert.Equal("capabilities", JsonDocument.Parse(ReadLine(process)).RootElement.GetProperty("type").GetString());
            using var stopStorm = new CancellationTokenSource();
            var storm = Task.Run(() => fs.TriggerFsErrors(20_000, stopStorm.Token));
            while (printed.Count < 300)
                printed.Add(JsonDocument.Parse(ReadLine(process)).RootElement.GetProperty("id").GetString()!);
            process.Kill(); // SIGKILL, in the middle of the storm
            // Whatever it printed before dying is "out" too.
            string? line;
            while ((line = process.StandardOutput.ReadLine()) is not null)
                if (line.StartsWith('{') && line.EndsWith('}'))
                    printed.Add(JsonDocument.Parse(line).RootElement.GetProperty("id").GetString()!);
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(5)));
            stopStorm.Cancel();
            storm.Wait();
        }

        var stored = ListIds(out var listErrors);
        Assert.Empty(listErrors);
        Assert.Empty(printed.Except(stored));

        // A restart opens the store (cutting a torn tail, if the kill left one) and appends after it.
        using (var again = Start("run", "--output", "json", "--filesystem", fs.MountPoint, "--log-level", "Warning"))
        {
            ReadLine(again);
            fs.TriggerFsError("after restart");
            var after = JsonDocument.Parse(ReadLine(again)).RootElement;
            while (after.GetProperty("source").GetString() != "fanotify")
                after = JsonDocument.Parse(ReadLine(again)).RootElement;
            Assert.True(OwnProcess.Signal(again.Id, 15));
            Assert.True(again.WaitForExit(TimeSpan.FromSeconds(5)));
            var final = ListIds(out listErrors);
            Assert.Empty(listErrors);
            Assert.Empty(printed.Except(final));
            Assert.Contains(after.GetProperty("id").GetString(), final);
        }
    }

    [LoopFact]
    public void Run_sends_every_report_to_journald_by_default_and_its_own_log_too()
    {
        Assert.True(Journal.JournaldFixture.IsListening(), "the scratch collection starts a journald when none runs");
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("journal");
        using var process = Start("run", "--output", "json", "--filesystem", fs.MountPoint);
        JsonElement report;
        try
        {
            ReadLine(process);
            fs.TriggerFsError("to the journal");
            report = JsonDocument.Parse(ReadLine(process)).RootElement;
        }
        finally
        {
            OwnProcess.Signal(process.Id, 15);
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(5)));
        }
        var entry = Assert.Single(Journal.Journalctl.WaitFor(1, "MESSAGE_ID=bd42365c534f459287726f415119295b", "ERRORWATCH_REPORT_ID=" + report.GetProperty("id").GetString()));
        Assert.Equal("2", Journal.Journalctl.Text(entry, "PRIORITY"));
        Assert.Equal(fs.LoopDevice, Journal.Journalctl.Text(entry, "ERRORWATCH_DEVICE"));
        Assert.Equal(fs.MountPoint, Journal.Journalctl.Text(entry, "ERRORWATCH_MOUNTPOINT"));
        // The ext4 detail, as the report had it: the kernel queues the fanotify event before its deferred
        // work writes the last-error record to sysfs, so a loaded machine may decode before that record exists.
        var ext4 = report.GetProperty("details").GetProperty("ext4");
        Assert.Equal(ext4.GetProperty("errors_behavior").GetString(), Journal.Journalctl.Text(entry, "ERRORWATCH_EXT4_ERRORS_BEHAVIOR"));
        if (ext4.TryGetProperty("last_error", out _))
            Assert.Equal("trigger_test_error", Journal.Journalctl.Text(entry, "ERRORWATCH_EXT4_FUNCTION"));
        else
            Assert.Empty(Journal.Journalctl.Values(entry, "ERRORWATCH_EXT4_FUNCTION"));
        Assert.Contains("reports metadata corruption", Journal.Journalctl.Text(entry, "MESSAGE"));
        // The daemon's own "Watching ..." line went to the journal with its properties as fields.
        var own = Journal.Journalctl.WaitFor(1, "SYSLOG_IDENTIFIER=errorwatch", "_PID=" + process.Id, "PRIORITY=6");
        Assert.Contains(own, e => Journal.Journalctl.Text(e, "MESSAGE").StartsWith("Watching ", StringComparison.Ordinal));
    }

    private List<string> ListIds(out string errors)
    {
        using var list = Start("list", "--json");
        var ids = new List<string>();
        string? line;
        while ((line = list.StandardOutput.ReadLine()) is not null)
            ids.Add(JsonDocument.Parse(line).RootElement.GetProperty("id").GetString()!);
        errors = list.StandardError.ReadToEnd();
        Assert.True(list.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Equal(0, list.ExitCode);
        return ids;
    }

    [LoopFact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public void Started_with_umask_0022_everything_it_creates_in_its_state_directory_is_private()
    {
        // As `sudo errorwatch run`, a container or nohup start it: only the unit sets UMask=0077.
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("umask");
        var state = Path.Combine(_state, "made-by-the-daemon");
        using var process = StartThroughShell("umask 0022", "run", "--output", "json", "--filesystem", fs.MountPoint, "--state-dir", state, "--log-level", "Warning");
        try
        {
            ReadLine(process);
            fs.TriggerFsError("private state");
            ReadLine(process);
        }
        finally
        {
            OwnProcess.Signal(process.Id, 15);
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(5)));
        }
        var made = Directory.EnumerateFileSystemEntries(state, "*", SearchOption.AllDirectories).Prepend(state)
            .ToDictionary(p => Path.GetRelativePath(state, p), p => File.GetUnixFileMode(p));
        // What the check rests on: the store, its lock, the baseline and the hook ledger were made.
        Assert.Contains("reports", made.Keys);
        Assert.Contains(made.Keys, p => p.StartsWith("reports/", StringComparison.Ordinal) && p.EndsWith(".log", StringComparison.Ordinal));
        Assert.Contains("health-baseline.json", made.Keys);
        Assert.Contains("hooks/runs.log", made.Keys);
        const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
            | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        var open = made.Where(kv => (kv.Value & others) != 0).Select(kv => $"{kv.Key} {Convert.ToString((int)kv.Value, 8)}").ToList();
        Assert.True(open.Count == 0, "readable by others: " + string.Join(", ", open));
    }

    [LoopFact]
    public void Started_with_SIGHUP_ignored_as_nohup_leaves_it_SIGHUP_still_reloads_the_configuration()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("nohup");
        var stderr = new System.Text.StringBuilder();
        using var process = StartThroughShell("trap '' HUP", "run", "--output", "json", "--filesystem", fs.MountPoint, "--journal", "no", "--log-level", "Information");
        process.ErrorDataReceived += (_, e) => { lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginErrorReadLine();
        try
        {
            ReadLine(process); // the capabilities: the handler is in
            string Err() { lock (stderr) return stderr.ToString(); }
            Assert.Contains("SIGHUP was ignored when this started", Err());
            Assert.True(OwnProcess.Signal(process.Id, 1));
            var deadline = Stopwatch.StartNew();
            while (!Err().Contains("Configuration reloaded") && !process.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(10))
                Thread.Sleep(50);
            Assert.False(process.HasExited, "SIGHUP ended the daemon: " + Err());
            Assert.Contains("Configuration reloaded", Err());
        }
        finally
        {
            OwnProcess.Signal(process.Id, 15);
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(5)));
        }
    }

    private Process Start(params string[] args) => Process.Start(StartInfo(args))!;

    /// <summary>Started by /bin/sh after <paramref name="setup"/> (a umask, a trap), as a login shell, sudo or nohup would leave it.</summary>
    private Process StartThroughShell(string setup, params string[] args)
    {
        var psi = StartInfo(args);
        var shell = new ProcessStartInfo("/bin/sh") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["-c", setup + " && exec \"$0\" \"$@\"", psi.FileName, .. psi.ArgumentList])
            shell.ArgumentList.Add(a);
        return Process.Start(shell)!;
    }

    private ProcessStartInfo StartInfo(params string[] args)
    {
        var psi = ErrorWatchBinary.StartInfo(args);
        if (args.Length > 0 && args[0] is "run" or "list" && !args.Contains("--state-dir"))
        {
            // Right after the command: appended last it would become the value of a trailing option.
            psi.ArgumentList.Insert(1, "--state-dir");
            psi.ArgumentList.Insert(2, _state);
        }
        if (args.Length > 0 && args[0] == "run")
        {
            // Not the machine's system bus nor the default metrics port: tests run side by side.
            if (!args.Contains("--bus"))
            {
                psi.ArgumentList.Insert(1, "--bus");
                psi.ArgumentList.Insert(2, "none");
            }
            if (!args.Contains("--metrics-listen"))
            {
                psi.ArgumentList.Insert(1, "--metrics-listen");
                psi.ArgumentList.Insert(2, "none");
            }
        }
        return psi;
    }

    private static string ReadLine(Process process)
    {
        var line = process.StandardOutput.ReadLineAsync();
        Assert.True(line.Wait(TimeSpan.FromSeconds(15)), "no output line within 15 s");
        return line.Result ?? throw new Xunit.Sdk.XunitException("errorwatch closed its output: " + process.StandardError.ReadToEnd());
    }
}
