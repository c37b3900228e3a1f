using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ErrorWatch.Bus;
using ErrorWatch.Cli.Clients;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Tests.EndToEnd;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// The client commands (status, watch, list --live, notify) as subprocesses against `errorwatch run`
/// on a private bus, with scratch ext4 filesystems mounted errors=continue.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed partial class ClientCommandTests : IDisposable
{
    private static readonly TimeSpan LineTimeout = TimeSpan.FromSeconds(15);
    private readonly string _state = Directory.CreateTempSubdirectory("errorwatch-client-state-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    [LoopFact]
    public void Status_json_lists_the_scratch_filesystem_with_health_errors_and_its_error_count_after_a_trigger()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("status");
        using var bus = new SessionBus();
        using var daemon = StartDaemon(bus, fs);

        using (var before = JsonDocument.Parse(RunToEnd(0, "status", "--bus", bus.Address, "--json")))
        {
            var root = before.RootElement;
            Assert.False(string.IsNullOrEmpty(root.GetProperty("version").GetString()));
            Assert.True(root.GetProperty("kernel_supports_fs_error").GetBoolean());
            Assert.Equal(1, root.GetProperty("watched_filesystems").GetInt32());
            Assert.Equal(0, root.GetProperty("report_count").GetInt32());
            Assert.Equal(JsonValueKind.Null, root.GetProperty("last_report_id").ValueKind);
            var entry = Assert.Single(root.GetProperty("filesystems").EnumerateArray());
            Assert.Equal(fs.LoopDevice, entry.GetProperty("device").GetString());
            Assert.Equal("ok", entry.GetProperty("health").GetString());
            Assert.Equal(0, entry.GetProperty("error_count").GetInt32());
            Assert.Equal(JsonValueKind.Null, entry.GetProperty("last_error_time").ValueKind);
        }

        fs.TriggerFsError("status test");
        JsonElement after = default;
        var deadline = DateTime.UtcNow + LineTimeout;
        JsonDocument? doc = null;
        try
        {
            do
            {
                doc?.Dispose();
                doc = JsonDocument.Parse(RunToEnd(0, "status", "--bus", bus.Address, "--json"));
                after = doc.RootElement;
            }
            while (after.GetProperty("report_count").GetInt32() == 0 && DateTime.UtcNow < deadline && Sleep(100));
            Assert.Equal(1, after.GetProperty("report_count").GetInt32());
            var entry = Assert.Single(after.GetProperty("filesystems").EnumerateArray());
            Assert.Equal(fs.LoopDevice, entry.GetProperty("device").GetString());
            Assert.Equal("ext4", entry.GetProperty("type").GetString());
            Assert.Equal([fs.MountPoint], entry.GetProperty("mountpoints").EnumerateArray().Select(m => m.GetString()));
            Assert.Equal("errors", entry.GetProperty("health").GetString());
            Assert.Equal(1, entry.GetProperty("health_code").GetInt32());
            Assert.Equal(1, entry.GetProperty("error_count").GetInt32());
            Assert.True(DateTimeOffset.TryParse(entry.GetProperty("last_error_time").GetString(), out var last));
            Assert.InRange(last, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddMinutes(1));
            Assert.Equal(after.GetProperty("last_report_id").GetString(), entry.GetProperty("last_report_id").GetString());
            Assert.True(Guid.TryParse(entry.GetProperty("uuid").GetString(), out _));
        }
        finally
        {
            doc?.Dispose();
        }

        // The same in words: one line for the filesystem, with its health word and count.
        var text = RunToEnd(0, "status", "--bus", bus.Address);
        var line = Assert.Single(text.Split('\n'), l => l.StartsWith(fs.LoopDevice + " ", StringComparison.Ordinal));
        Assert.Matches($@"^{Regex.Escape(fs.LoopDevice)}\s+ext4\s+{Regex.Escape(fs.MountPoint)}\s+errors\s+1\s+\d{{4}}-\d\d-\d\dT", line);
        Assert.Contains("Last report: ", text);
    }

    [Fact]
    public void Status_and_watch_without_the_service_exit_3_saying_it_is_not_running_and_an_unreachable_bus_names_address_and_errno()
    {
        using var bus = new SessionBus();
        foreach (var command in new[] { "status", "watch" })
        {
            var (code, stdout, stderr) = RunWithCode(command, "--bus", bus.Address);
            Assert.Equal(3, code);
            Assert.Equal("", stdout);
            Assert.Contains($"ErrorWatch is not running on {bus.Address} (io.github.errorwatch.ErrorWatch1 has no owner)", stderr);
            Assert.DoesNotContain("   at ", stderr);
        }

        var missing = "unix:path=" + Path.Combine(bus.Directory, "no-such-socket");
        var (code2, _, stderr2) = RunWithCode("status", "--bus", missing);
        Assert.Equal(3, code2);
        Assert.Contains($"cannot connect to {missing}: ENOENT (No such file or directory)", stderr2);
        Assert.DoesNotContain("   at ", stderr2);
    }

    [LoopFact]
    public void Watch_json_prints_one_line_per_error_list_live_the_same_and_both_exit_0_within_a_second_of_sigterm()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("watch");
        using var bus = new SessionBus();
        using var daemon = StartDaemon(bus, fs);
        using var watch = CliProcess.Start("watch", "--json", "--bus", bus.Address);
        using var live = CliProcess.Start("list", "--live", "--json", "--bus", bus.Address, "--since", "1h");
        watch.WaitForStderr("Following the reports of ErrorWatch", LineTimeout);
        live.WaitForStderr("Following the reports of ErrorWatch", LineTimeout);
        Assert.Contains("--since is ignored with --live", live.Stderr);

        var ids = new List<string>();
        for (var i = 0; i < 2; i++)
        {
            fs.TriggerFsError($"watch test {i}");
            using var report = JsonDocument.Parse(watch.NextLine(LineTimeout));
            var r = report.RootElement;
            Assert.Equal("report", r.GetProperty("type").GetString());
            Assert.Equal("corruption", r.GetProperty("event").GetString());
            Assert.Equal("fanotify", r.GetProperty("source").GetString());
            Assert.Equal(fs.LoopDevice, r.GetProperty("filesystem").GetProperty("device").GetString());
            Assert.Equal(fs.MountPoint, r.GetProperty("filesystem").GetProperty("mountpoints")[0].GetString());
            Assert.Equal(1, r.GetProperty("error").GetProperty("count").GetInt32());
            Assert.Equal("EUCLEAN", r.GetProperty("error").GetProperty("name").GetString());
            // (details.ext4.last_error may not exist yet for the first error: ext4 writes it from deferred work.)
            Assert.Equal("continue", r.GetProperty("details").GetProperty("ext4").GetProperty("errors_behavior").GetString());
            ids.Add(r.GetProperty("id").GetString()!);
            using var same = JsonDocument.Parse(live.NextLine(LineTimeout));
            Assert.Equal(ids[^1], same.RootElement.GetProperty("id").GetString());
        }
        Assert.Equal(2, ids.Distinct().Count());
        Assert.Null(watch.TryNextLine(TimeSpan.FromSeconds(1))); // one line per error, nothing else

        foreach (var process in new[] { watch, live })
        {
            var clock = Stopwatch.StartNew();
            process.Signal(15);
            Assert.True(process.Process.WaitForExit(TimeSpan.FromSeconds(1)), "must exit within 1 s of SIGTERM: " + process.Stderr);
            Assert.Equal(0, process.Process.ExitCode);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"exited after {clock.Elapsed}");
        }
    }

    /// <summary>
    /// `watch` follows the service through a restart and the bus through one, saying so on stderr
    /// (README: "follows the service through restarts and reconnects to a restarted bus").
    /// </summary>
    [LoopFact]
    public void Watch_follows_the_service_through_a_restart_and_reconnects_to_a_restarted_bus()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("follow");
        using var bus = new BusDaemon();
        var daemon = StartDaemon(bus.Address, fs);
        try
        {
            using var watch = CliProcess.Start("watch", "--json", "--bus", bus.Address);
            watch.WaitForStderr("Following the reports of ErrorWatch", LineTimeout);
            string Device(string line)
            {
                using var doc = JsonDocument.Parse(line);
                return doc.RootElement.GetProperty("filesystem").GetProperty("device").GetString()!;
            }
            fs.TriggerFsError("before any restart");
            Assert.Equal(fs.LoopDevice, Device(watch.NextLine(LineTimeout)));

            // The service stops and starts again: watch says so and follows the new one.
            daemon.Dispose();
            watch.WaitForStderr("ErrorWatch left", LineTimeout);
            daemon = StartDaemon(bus.Address, fs);
            watch.WaitForStderr("ErrorWatch is back", LineTimeout);
            fs.TriggerFsError("after the service restart");
            Assert.Equal(fs.LoopDevice, Device(watch.NextLine(LineTimeout)));

            // The bus itself restarts: both reconnect (with backoff), and reports reach watch again.
            bus.Restart();
            string? line = null;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (line is null && DateTime.UtcNow < deadline)
            {
                fs.TriggerFsError("after the bus restart");
                line = watch.TryNextLine(TimeSpan.FromSeconds(1));
            }
            Assert.True(line is not null, "no report reached watch after the bus restarted; its stderr: " + watch.Stderr);
            Assert.Equal(fs.LoopDevice, Device(line));
            Assert.False(watch.Process.HasExited);
        }
        finally
        {
            daemon.Dispose();
        }
    }

    /// <summary>
    /// `notify` started before the service and before any notification server (README: "Waits for the
    /// service, the session bus and the notification server when they are missing"): it waits, follows
    /// the service once it comes, and a report made while no server answers is shown once one does.
    /// </summary>
    [LoopFact]
    public void Notify_waits_for_the_service_and_the_notification_server_and_shows_what_came_in_between()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("notify-wait");
        using var system = new SessionBus();
        using var session = new SessionBus();
        using var notify = CliProcess.Start("notify", "--bus", system.Address, "--session-bus", session.Address, "--interval", "2s");
        notify.WaitForStderr("waiting for it", LineTimeout);
        using var daemon = StartDaemon(system, fs);
        notify.WaitForStderr("ErrorWatch is back", LineTimeout);

        fs.TriggerFsError("no notification server yet");
        notify.WaitForStderr("they are kept and shown once a notification server answers", LineTimeout);
        using var server = new NotificationServer(session.Directory, session.Address);
        using var shown = server.Next(TimeSpan.FromSeconds(30)) ?? throw new Xunit.Sdk.XunitException("the kept notification was never shown: " + notify.Stderr);
        Assert.Equal($"Filesystem errors on {fs.MountPoint} (ext4 {fs.LoopDevice})", shown.RootElement.GetProperty("summary").GetString());
        notify.WaitForStderr("Desktop notifications are shown again", LineTimeout);
        Assert.False(notify.Process.HasExited);
    }

    [LoopFact]
    public void Notify_shows_a_critical_notification_at_once_then_one_follow_up_counting_five_more_errors_replacing_it()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("notify");
        using var system = new SessionBus();
        using var session = new SessionBus();
        using var server = new NotificationServer(session.Directory, session.Address);
        using var daemon = StartDaemon(system, fs);
        using var notify = CliProcess.Start("notify", "--bus", system.Address, "--session-bus", session.Address, "--interval", "2s");
        notify.WaitForStderr("Following the reports of ErrorWatch", LineTimeout);

        fs.TriggerFsError("notify test");
        using var first = server.Next(LineTimeout) ?? throw new Xunit.Sdk.XunitException("no Notify call: " + notify.Stderr);
        var shown = Stopwatch.StartNew();
        var n = first.RootElement;
        Assert.Equal("ErrorWatch", n.GetProperty("app_name").GetString());
        Assert.Equal(0u, n.GetProperty("replaces_id").GetUInt32());
        Assert.Equal("drive-harddisk", n.GetProperty("app_icon").GetString());
        Assert.Equal($"Filesystem errors on {fs.MountPoint} (ext4 {fs.LoopDevice})", n.GetProperty("summary").GetString());
        Assert.Contains("reports metadata corruption", n.GetProperty("body").GetString());
        Assert.Equal(2, n.GetProperty("hints").GetProperty("urgency").GetInt32());
        Assert.Equal("Byte", n.GetProperty("hint_types").GetProperty("urgency").GetString());
        Assert.Equal("errorwatch", n.GetProperty("hints").GetProperty("desktop-entry").GetString());
        Assert.Equal("device.error", n.GetProperty("hints").GetProperty("category").GetString());
        Assert.Equal(0, n.GetProperty("expire_timeout").GetInt32());
        Assert.Empty(n.GetProperty("actions").EnumerateArray());
        var firstId = n.GetProperty("id").GetUInt32();

        for (var i = 0; i < 5; i++)
            fs.TriggerFsError($"notify burst {i}");
        using var followUp = server.Next(TimeSpan.FromSeconds(8)) ?? throw new Xunit.Sdk.XunitException("no follow-up: " + notify.Stderr);
        Assert.True(shown.Elapsed > TimeSpan.FromSeconds(1.5), $"the follow-up came {shown.Elapsed} after the first, inside the interval");
        var f = followUp.RootElement;
        Assert.Equal($"5 more errors on {fs.MountPoint} (ext4 {fs.LoopDevice})", f.GetProperty("summary").GetString());
        Assert.Equal(firstId, f.GetProperty("replaces_id").GetUInt32());
        Assert.Equal(2, f.GetProperty("hints").GetProperty("urgency").GetInt32());
        Assert.StartsWith("Latest: ", f.GetProperty("body").GetString());
        using (var extra = server.Next(TimeSpan.FromSeconds(3)))
            Assert.True(extra is null, "exactly one follow-up, but also: " + extra?.RootElement.GetRawText());

        var clock = Stopwatch.StartNew();
        notify.Signal(15);
        Assert.True(notify.Process.WaitForExit(TimeSpan.FromSeconds(1)), "notify must exit within 1 s of SIGTERM");
        Assert.Equal(0, notify.Process.ExitCode);
        Assert.DoesNotContain("Cannot show desktop notifications", notify.Stderr);
    }

    // ---- helpers ----

    private static bool Sleep(int ms)
    {
        Thread.Sleep(ms);
        return true;
    }

    /// <summary>`errorwatch run` on <paramref name="bus"/>, watching only <paramref name="fs"/>; returns once its Filesystem object is on the bus.</summary>
    private CliProcess StartDaemon(SessionBus bus, Cli.Demo.ScratchFilesystem fs) => StartDaemon(bus.Address, fs);

    private CliProcess StartDaemon(string busAddress, Cli.Demo.ScratchFilesystem fs)
    {
        var daemon = CliProcess.Start("run", "--bus", busAddress, "--filesystem", fs.MountPoint, "--state-dir", _state,
            "--journal", "no", "--output", "none", "--metrics-listen", "none", "--log-level", "Warning");
        try
        {
            var deadline = DateTime.UtcNow + LineTimeout;
            while (true)
            {
                try
                {
                    using var client = ErrorWatchClient.Connect(busAddress);
                    if (client.NameOwner(BusNames.Service) is not null && client.GetFilesystems().Any(f => f.Device == fs.LoopDevice))
                        return daemon;
                }
                catch (Exception e) when (e is ServiceUnavailableException or BusException)
                {
                }
                if (daemon.Process.HasExited || DateTime.UtcNow > deadline)
                    throw new Xunit.Sdk.XunitException("errorwatch run did not come onto the bus: " + daemon.Stderr);
                Thread.Sleep(100);
            }
        }
        catch
        {
            daemon.Dispose();
            throw;
        }
    }

    private static string RunToEnd(int expectedCode, params string[] args)
    {
        var (code, stdout, stderr) = RunWithCode(args);
        Assert.True(code == expectedCode, $"errorwatch {string.Join(' ', args)} exited {code}: {stderr}");
        return stdout;
    }

    private static (int Code, string Stdout, string Stderr) RunWithCode(params string[] args)
    {
        using var process = CliProcess.Start(args);
        Assert.True(process.Process.WaitForExit(TimeSpan.FromSeconds(30)), $"errorwatch {string.Join(' ', args)} did not finish");
        process.Process.WaitForExit(); // and its output is read to the end
        return (process.Process.ExitCode, process.Stdout, process.Stderr);
    }

    /// <summary>The errorwatch executable as a subprocess, its output read line by line as it comes; stopped by PID on dispose.</summary>
    private sealed partial class CliProcess : IDisposable
    {
        private readonly BlockingCollection<string> _lines = new();
        private readonly StringBuilder _stdout = new();
        private readonly StringBuilder _stderr = new();

        private CliProcess(Process process) => Process = process;

        public Process Process { get; }

        public static CliProcess Start(params string[] args)
        {
            var cli = new CliProcess(Process.Start(ErrorWatchBinary.StartInfo(args))!);
            cli.Process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null)
                {
                    cli._lines.CompleteAdding();
                    return;
                }
                lock (cli._stdout)
                    cli._stdout.AppendLine(e.Data);
                cli._lines.Add(e.Data);
            };
            cli.Process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                    lock (cli._stderr)
                        cli._stderr.AppendLine(e.Data);
            };
            cli.Process.BeginOutputReadLine();
            cli.Process.BeginErrorReadLine();
            return cli;
        }

        public string Stdout
        {
            get
            {
                lock (_stdout)
                    return _stdout.ToString();
            }
        }

        public string Stderr
        {
            get
            {
                lock (_stderr)
                    return _stderr.ToString();
            }
        }

        public string? TryNextLine(TimeSpan timeout)
        {
            try
            {
                return _lines.TryTake(out var line, timeout) ? line : null;
            }
            catch (InvalidOperationException)
            {
                return null;
            }
        }

        public string NextLine(TimeSpan timeout) =>
            TryNextLine(timeout) ?? throw new Xunit.Sdk.XunitException($"no output line within {timeout}; stderr: {Stderr}");

        public void WaitForStderr(string text, TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (!Stderr.Contains(text, StringComparison.Ordinal))
            {
                if (Process.HasExited || DateTime.UtcNow > deadline)
                    throw new Xunit.Sdk.XunitException($"'{text}' not on stderr; stderr: {Stderr}");
                Thread.Sleep(20);
            }
        }

        public void Signal(int signal) => Assert.True(OwnProcess.Signal(Process.Id, signal));
        public void Dispose() => OwnProcess.Stop(Process);
    }
}
