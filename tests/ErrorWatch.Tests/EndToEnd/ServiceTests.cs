using System.Diagnostics;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>
/// `errorwatch run` as systemd runs it: a notify socket of the test's own receives READY=1 (only once
/// the marks are placed), STATUS=, WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1/READY=1 on
/// SIGHUP and STOPPING=1 on SIGTERM, and the process exits within 2 s.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class ServiceTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("errorwatch-service-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private Process Start(NotifySocket notify, string config, params string[] args)
    {
        var psi = ErrorWatchBinary.StartInfo(["run", "--config", config, "--state-dir", Path.Combine(_dir, "state"), "--output", "none", "--journal", "no", "--bus", "none", "--metrics-listen", "none", .. args]);
        psi.Environment["NOTIFY_SOCKET"] = notify.Address;
        psi.Environment["WATCHDOG_USEC"] = "1000000"; // ping every 0.5 s
        psi.Environment.Remove("WATCHDOG_PID");
        return Process.Start(psi)!;
    }

    /// <summary>True when the process holds a FAN_MARK_FILESYSTEM mark on <paramref name="device"/> (fdinfo "sdev:").</summary>
    internal static bool HoldsMark(int pid, ErrorWatch.Filesystems.DeviceNumber device)
    {
        var sdev = $"sdev:{((ulong)device.Major << 20) | device.Minor:x}";
        foreach (var fdinfo in Directory.EnumerateFiles($"/proc/{pid}/fdinfo"))
        {
            try
            {
                if (File.ReadLines(fdinfo).Any(l => l.StartsWith("fanotify ", StringComparison.Ordinal) && l.Contains(sdev)))
                    return true;
            }
            catch (IOException)
            {
            }
        }
        return false;
    }

    [LoopFact]
    public void Ready_after_the_marks_watchdog_at_half_the_interval_reload_and_stopping_within_two_seconds()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("service");
        var other = scratch.Ext4("other");
        var config = Path.Combine(_dir, "errorwatch.conf");
        File.WriteAllText(config, $"[Watch]\nFilesystems={fs.MountPoint} {other.MountPoint}\n");
        using var notify = new NotifySocket();
        using var process = Start(notify, config);
        try
        {
            // STATUS= goes out as the last stage starts, READY=1 (the host's systemd lifetime) right after.
            var ready = notify.UntilReady();
            Assert.Contains("READY=1", ready);
            Assert.Contains("STATUS=Watching 2 filesystem(s)", ready);
            Assert.True(HoldsMark(process.Id, fs.Device), "READY=1 came before the mark was placed");
            Assert.True(HoldsMark(process.Id, other.Device));

            var pings = notify.ReceiveFor(TimeSpan.FromSeconds(3)).Where(m => m.Message.Contains("WATCHDOG=1")).ToList();
            Assert.InRange(pings.Count, 4, 8); // 0.5 s apart over 3 s

            // A broken file at reload is refused; the service keeps running with the old one.
            File.WriteAllText(config, "[Watch]\nFilesystemz=/nowhere\n");
            Assert.True(OwnProcess.Signal(process.Id, 1));
            var messages = notify.ReceiveFor(TimeSpan.FromSeconds(2)).Select(m => m.Message).Where(m => !m.Contains("WATCHDOG")).ToList();
            Assert.Contains(messages, m => m.Contains("RELOADING=1"));
            Assert.Contains(messages, m => m.Contains("READY=1"));
            Assert.False(process.HasExited);
            Assert.True(HoldsMark(process.Id, other.Device));

            // A good one applies: the filesystem no longer listed is unwatched.
            File.WriteAllText(config, $"[Watch]\nFilesystems={fs.MountPoint}\n");
            Assert.True(OwnProcess.Signal(process.Id, 1));
            messages = notify.ReceiveFor(TimeSpan.FromSeconds(2)).Select(m => m.Message).Where(m => !m.Contains("WATCHDOG")).ToList();
            Assert.Contains(messages, m => m.Contains("READY=1") && m.Contains("Watching 1 filesystem(s)"));
            Assert.True(HoldsMark(process.Id, fs.Device));
            Assert.False(HoldsMark(process.Id, other.Device));

            notify.Drain();
            var clock = Stopwatch.StartNew();
            Assert.True(OwnProcess.Signal(process.Id, 15));
            Assert.True(process.WaitForExit(TimeSpan.FromSeconds(2)), "still running 2 s after SIGTERM");
            Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(2));
            Assert.Equal(0, process.ExitCode);
            var last = notify.ReceiveFor(TimeSpan.FromMilliseconds(300)).Select(m => m.Message).ToList();
            Assert.Contains(last, m => m.Contains("STOPPING=1"));
        }
        finally
        {
            if (!process.HasExited)
                process.Kill();
        }
    }

    /// <summary>[Log] Level applies at a reload, at once (docs/configuration.md): the reload's own Information line shows it.</summary>
    [LoopFact]
    public void A_reload_applies_the_new_log_level_at_once()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("loglevel");
        var config = Path.Combine(_dir, "errorwatch.conf");
        void Level(string level) => File.WriteAllText(config, $"[Watch]\nFilesystems={fs.MountPoint}\n[Log]\nLevel={level}\n");
        Level("warning");
        using var notify = new NotifySocket();
        var stderr = new System.Text.StringBuilder();
        var psi = ErrorWatchBinary.StartInfo(["run", "--config", config, "--state-dir", Path.Combine(_dir, "state"), "--output", "none", "--journal", "no", "--bus", "none", "--metrics-listen", "none"]);
        psi.Environment["NOTIFY_SOCKET"] = notify.Address;
        using var process = ErrorWatchBinary.StartCollecting(psi, stderr);
        try
        {
            Assert.Contains("READY=1", notify.UntilReady());
            int Reloaded()
            {
                notify.Drain();
                Assert.True(OwnProcess.Signal(process.Id, 1));
                Assert.Contains(notify.ReceiveFor(TimeSpan.FromSeconds(2)), m => m.Message.Contains("READY=1"));
                Thread.Sleep(100); // the line is written before READY=1; give the stderr reader a moment
                lock (stderr)
                    return System.Text.RegularExpressions.Regex.Count(stderr.ToString(), "Configuration reloaded");
            }
            Assert.Equal(0, Reloaded());           // still warning: the reload's Information line is not logged
            Level("information");
            Assert.Equal(1, Reloaded());           // info from this reload on, its own line included
            Level("error");
            Assert.Equal(1, Reloaded());           // and back
            Assert.False(process.HasExited);
        }
        finally
        {
            if (!process.HasExited)
                process.Kill();
        }
    }

    [LoopFact]
    public void A_bad_configuration_at_start_is_a_clear_error_and_a_non_zero_exit()
    {
        var config = Path.Combine(_dir, "errorwatch.conf");
        File.WriteAllText(config, "[Health]\nCheckInterval=soon\n");
        using var notify = new NotifySocket();
        using var process = Start(notify, config);
        var stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(20)));
        Assert.Equal(1, process.ExitCode);
        Assert.Contains($"{config}:2: [Health] CheckInterval:", stderr);
        Assert.Contains("not starting", stderr);
        Assert.Null(notify.Receive(TimeSpan.Zero)); // never READY
    }
}
