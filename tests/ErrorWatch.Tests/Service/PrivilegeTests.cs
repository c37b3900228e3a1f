using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Tests.EndToEnd;
using ErrorWatch.Tests.Recovery;

namespace ErrorWatch.Tests.Service;

/// <summary>
/// The real `errorwatch run`, started by this root test process with every capability it has,
/// keeps only what it needs, on every thread (capabilities are per thread), and still watches:
/// the sets are read from /proc/PID/task/*/status, hooks record their own.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed partial class PrivilegeTests : IDisposable
{
    private const int Nobody = 65534;

    private readonly string _dir = Directory.CreateTempSubdirectory("errorwatch-privileges-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The five sets of one thread, as /proc shows them.</summary>
    private sealed record Sets(CapabilitySet Effective, CapabilitySet Permitted, CapabilitySet Inheritable, CapabilitySet Bounding, CapabilitySet Ambient)
    {
        public static Sets Of(string statusFile) => new(
            CapabilitySet.OfStatus(statusFile, "CapEff"), CapabilitySet.OfStatus(statusFile, "CapPrm"), CapabilitySet.OfStatus(statusFile, "CapInh"),
            CapabilitySet.OfStatus(statusFile, "CapBnd"), CapabilitySet.OfStatus(statusFile, "CapAmb"));

        public static Sets OfLines(IEnumerable<string> statusLines)
        {
            CapabilitySet Field(string name) => CapabilitySet.FromHex(statusLines.Single(l => l.StartsWith(name + ":", StringComparison.Ordinal))[(name.Length + 1)..]);
            return new(Field("CapEff"), Field("CapPrm"), Field("CapInh"), Field("CapBnd"), Field("CapAmb"));
        }

        public override string ToString() => $"eff={Effective} prm={Permitted} inh={Inheritable} bnd={Bounding} amb={Ambient}";
    }

    /// <summary>Every thread's sets (a thread that ends while being read is left out).</summary>
    private static List<(string Thread, Sets Sets)> Threads(int pid)
    {
        var threads = new List<(string, Sets)>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                threads.Add((Path.GetFileName(task), Sets.OfLines(File.ReadAllLines(Path.Combine(task, "status")))));
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
            }
        }
        return threads;
    }

    /// <summary>ERRORWATCH_REEXEC_PID in the process's current environment (the re-executed image's), or null.</summary>
    private static string? Marker(int pid) =>
        File.ReadAllText($"/proc/{pid}/environ").Split('\0').FirstOrDefault(e => e.StartsWith(Privileges.ReExecMarker + "=", StringComparison.Ordinal))?[(Privileges.ReExecMarker.Length + 1)..];

    /// <summary>`errorwatch run` (optionally through setpriv), its stdout lines and stderr collected as they come.</summary>
    private sealed class Daemon : IDisposable
    {
        public Process Process { get; }
        public BlockingCollection<string> Stdout { get; } = new();
        public ConcurrentQueue<string> Stderr { get; } = new();

        public Daemon(NotifySocket notify, string config, string state, string output, params string[] setpriv)
        {
            var errorwatch = ErrorWatchBinary.Path;
            var psi = new ProcessStartInfo(setpriv.Length > 0 ? "setpriv" : errorwatch)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (var a in setpriv.Length > 0 ? [.. setpriv, errorwatch] : Array.Empty<string>())
                psi.ArgumentList.Add(a);
            foreach (var a in (string[])["run", "--config", config, "--state-dir", state, "--output", output, "--journal", "no", "--bus", "none", "--metrics-listen", "none"])
                psi.ArgumentList.Add(a);
            psi.Environment["NOTIFY_SOCKET"] = notify.Address;
            psi.Environment.Remove("WATCHDOG_USEC");
            psi.Environment.Remove(Privileges.ReExecMarker);
            Process = Process.Start(psi)!;
            Process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                    Stderr.Enqueue(e.Data);
            };
            Process.OutputDataReceived += (_, e) =>
            {
                if (e.Data is not null)
                    Stdout.Add(e.Data);
            };
            Process.BeginErrorReadLine();
            Process.BeginOutputReadLine();
        }

        public string Log => string.Join('\n', Stderr);

        public void WaitReady(NotifySocket notify)
        {
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                if (notify.Receive(TimeSpan.FromMilliseconds(200)) is { } message && message.Contains("READY=1"))
                    return;
                Assert.False(Process.HasExited, "errorwatch run exited before READY=1: " + Log);
            }
            Assert.Fail("no READY=1 within 30 s: " + Log);
        }

        /// <summary>The next JSON object on stdout matching <paramref name="match"/>.</summary>
        public JsonElement NextJson(Func<JsonElement, bool> match, TimeSpan timeout)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < timeout && Stdout.TryTake(out var line, timeout - clock.Elapsed))
            {
                var json = JsonDocument.Parse(line).RootElement;
                if (match(json))
                    return json;
            }
            throw new Xunit.Sdk.XunitException("no such line on stdout: " + Log);
        }

        public void Stop()
        {
            Assert.True(OwnProcess.Signal(Process.Id, 15));
            Assert.True(Process.WaitForExit(TimeSpan.FromSeconds(5)), "still running 5 s after SIGTERM");
            Process.WaitForExit(); // the asynchronous readers drain
            Assert.Equal(0, Process.ExitCode);
        }

        public void Dispose()
        {
            if (!Process.HasExited)
            {
                Process.Kill();
                Process.WaitForExit(5000);
            }
            Process.Dispose();
        }
    }

    /// <summary>What `errorwatch run` keeps by default: the two, CAP_SYSLOG for /dev/kmsg and CAP_SYS_NICE for PriorityBoost.</summary>
    private static readonly CapabilitySet Kept = Privileges.Daemon | Privileges.KernelLog | Privileges.PriorityBoost;

    [LoopFact]
    public void Started_with_every_capability_it_keeps_only_its_three_on_every_thread_and_still_reports_on_a_filesystem_mounted_later()
    {
        var own = Sets.Of("/proc/self/status");
        Assert.False(own.Permitted.Except(Kept).IsEmpty, $"the test must start the daemon with more than it needs: {own}");
        var kept = Kept & own.Bounding;

        using var scratch = new ScratchDirectory();
        var first = scratch.Ext4("first");
        ulong ino = 0;
        var later = scratch.Ext4("later", prepare: root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "projects", "reports"));
            for (var i = 0; i < 5; i++)
                File.WriteAllText(Path.Combine(root, "projects", "reports", $"q{i}.txt"), "x");
            ino = Ext4ErrorTests.Inode(Path.Combine(root, "projects", "reports"));
        });
        later.Unmount();
        later.Debugfs("zap_block -f /projects/reports -p 0x41 0");
        var config = Path.Combine(_dir, "errorwatch.conf");
        File.WriteAllText(config, $"[Watch]\nFilesystems={first.MountPoint} {later.MountPoint}\n");

        using var notify = new NotifySocket();
        using var daemon = new Daemon(notify, config, Path.Combine(_dir, "state"), "json");
        daemon.WaitReady(notify);
        var pid = daemon.Process.Id;

        // Executed again (same pid, the marker in its environment), and every thread holds the kept ones, nothing else.
        Assert.Equal(pid.ToString(), Marker(pid));
        // Executed by its own path, not /proc/self/exe: ps, top, pidof and the journal's _COMM still name it.
        Assert.Equal(Path.GetFileName(File.ReadAllText($"/proc/{pid}/cmdline").Split('\0')[0]), File.ReadAllText($"/proc/{pid}/comm").TrimEnd('\n'));
        var threads = Threads(pid);
        Assert.True(threads.Count > 1, "the runtime runs several threads");
        foreach (var (thread, sets) in threads)
            Assert.True(sets == new Sets(kept, kept, CapabilitySet.None, kept, CapabilitySet.None), $"thread {thread}: {sets}");
        var report = daemon.NextJson(j => j.GetProperty("type").GetString() == "capabilities", TimeSpan.FromSeconds(10));
        Assert.Equal(kept.ToString(), report.GetProperty("held_capabilities").GetString());
        Assert.Contains($"Capabilities kept: {kept} (the others dropped", daemon.Log);

        // CAP_SYS_ADMIN still marks a filesystem mounted after the drop, CAP_DAC_READ_SEARCH still names the damaged directory.
        later.Mount("errors=continue");
        Assert.True(SpinWait.SpinUntil(() => ServiceTests.HoldsMark(pid, later.Device), TimeSpan.FromSeconds(15)), "no mark on the filesystem mounted later: " + daemon.Log);
        Tool.Run("ls", Path.Combine(later.MountPoint, "projects", "reports"));
        var error = daemon.NextJson(j => j.GetProperty("type").GetString() == "report"
            && j.GetProperty("filesystem").GetProperty("device").GetString() == later.LoopDevice
            && j.GetProperty("object").GetProperty("inode").ValueKind == JsonValueKind.Number, TimeSpan.FromSeconds(20));
        Assert.Equal("fanotify", error.GetProperty("source").GetString());
        Assert.Equal(ino, error.GetProperty("object").GetProperty("inode").GetUInt64());
        Assert.Equal(Path.Combine(later.MountPoint, "projects", "reports"), error.GetProperty("object").GetProperty("path").GetString());

        daemon.Stop();
        Assert.DoesNotContain("WRN Capabilities", daemon.Log);
    }

    /// <summary>
    /// Other ways to be started. <c>unit</c>: the unit's bounding set already, without CAP_SYSLOG (nothing
    /// to drop, so no re-exec; what it would keep but does not hold is not missed). <c>ambient</c>: a non-root user given capabilities by AmbientCapabilities=, one
    /// too many. <c>nobody</c>: no capabilities at all (nothing to do, no warning). <c>no-setpcap</c>:
    /// root that cannot shrink its bounding set (a warning, and it starts anyway).
    /// </summary>
    [LoopTheory]
    [InlineData("unit")]
    [InlineData("ambient")]
    [InlineData("nobody")]
    [InlineData("no-setpcap")]
    public void However_it_is_started_it_keeps_what_it_can_and_always_starts(string how)
    {
        var own = Sets.Of("/proc/self/status");
        // The ambient case is given the daemon's own, CAP_SYSLOG and one too many (not CAP_SYS_NICE): it keeps those it needs.
        var keptHere = Kept & (Privileges.Daemon | Privileges.KernelLog) & own.Bounding;
        var unit = Privileges.Daemon & own.Bounding;
        var setpcap = CapabilitySet.Of(CapabilitySet.NumberOf("CAP_SETPCAP"));
        string[] setpriv = how switch
        {
            "unit" => ["--bounding-set", "-all,+sys_admin,+dac_read_search", "--inh-caps=-all"],
            "ambient" => ["--reuid", $"{Nobody}", "--regid", $"{Nobody}", "--clear-groups",
                "--inh-caps", "+sys_admin,+dac_read_search,+syslog,+net_admin", "--ambient-caps", "+sys_admin,+dac_read_search,+syslog,+net_admin"],
            "nobody" => ["--reuid", $"{Nobody}", "--regid", $"{Nobody}", "--clear-groups"],
            _ => ["--bounding-set", "-setpcap"],
        };
        // Where another user can work: the configuration readable, the state directory its own.
        HookDirectory.Chmod(_dir, "755");
        var config = Path.Combine(_dir, "errorwatch.conf");
        File.WriteAllText(config, "[Watch]\nFilesystems=/nowhere\n");
        var state = Directory.CreateDirectory(Path.Combine(_dir, "state")).FullName;
        if (how is "ambient" or "nobody")
            Assert.Equal(0, Tool.Run("chown", $"{Nobody}:{Nobody}", state).ExitCode);

        using var notify = new NotifySocket(abstractName: true); // any user may send to an abstract socket
        using var daemon = new Daemon(notify, config, state, "none", setpriv);
        daemon.WaitReady(notify);
        var pid = daemon.Process.Id;
        var expected = how switch
        {
            "unit" => new Sets(unit, unit, CapabilitySet.None, unit, CapabilitySet.None),
            // Ambient capabilities need their inheritable bits; without CAP_SETPCAP the bounding set stays as it was.
            "ambient" => new Sets(keptHere, keptHere, keptHere, own.Bounding, keptHere),
            "nobody" => new Sets(CapabilitySet.None, CapabilitySet.None, CapabilitySet.None, own.Bounding, CapabilitySet.None),
            _ => new Sets(own.Bounding.Except(setpcap), own.Bounding.Except(setpcap), CapabilitySet.None, own.Bounding.Except(setpcap), CapabilitySet.None),
        };
        foreach (var (thread, sets) in Threads(pid))
            Assert.True(sets == expected, $"{how}, thread {thread}: {sets}, expected {expected}");
        Assert.Equal(how == "ambient" ? pid.ToString() : null, Marker(pid));
        daemon.Stop();
        var log = daemon.Log;
        Assert.Contains($"Capabilities kept: {expected.Effective}", log);
        if (how == "no-setpcap")
            Assert.Contains("Capabilities: cannot drop", log);
        else
            Assert.DoesNotContain("WRN Capabilities", log);
    }

    /// <summary>
    /// Hooks run as root get the daemon's bounding set as their capabilities: the kept ones (outside the
    /// unit), plus what [Hooks] Capabilities= names; never the rest of what the daemon was started with.
    /// </summary>
    [LoopTheory]
    [InlineData("")]
    [InlineData("CAP_KILL CAP_NET_ADMIN")]
    public void A_hook_holds_only_the_bounding_set_the_daemon_kept(string extra)
    {
        var own = Sets.Of("/proc/self/status");
        var kept = (Kept | CapabilitySet.Named(extra.Split(' ', StringSplitOptions.RemoveEmptyEntries))) & own.Bounding;
        Assert.False(own.Permitted.Except(kept).IsEmpty, $"the test must start the daemon with more than it keeps: {own}");

        using var hooks = new HookDirectory();
        hooks.Write("all-caps", $"""
            #!/bin/sh
            grep '^Cap' /proc/self/status > '{hooks.Out}/caps.tmp'
            mv '{hooks.Out}/caps.tmp' '{hooks.Out}/caps'
            """);
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("hooked");
        var config = Path.Combine(_dir, "errorwatch.conf");
        File.WriteAllText(config, $"[Watch]\nFilesystems={fs.MountPoint}\n[Hooks]\nDirectory={hooks.Hooks}\nRepeat=always\nCapabilities={extra}\n");

        using var notify = new NotifySocket();
        using var daemon = new Daemon(notify, config, hooks.State, "none");
        daemon.WaitReady(notify);
        fs.TriggerFsError("hook capabilities");
        var recorded = Path.Combine(hooks.Out, "caps");
        Assert.True(SpinWait.SpinUntil(() => File.Exists(recorded), TimeSpan.FromSeconds(30)), "the hook did not run: " + daemon.Log);
        var hook = Sets.OfLines(File.ReadAllLines(recorded));
        Assert.Equal(new Sets(kept, kept, CapabilitySet.None, kept, CapabilitySet.None), hook);
        foreach (var (thread, sets) in Threads(daemon.Process.Id))
            Assert.True(sets.Bounding == kept, $"thread {thread}: {sets}");
        daemon.Stop();
        Assert.Contains($"Capabilities kept: {kept}", daemon.Log);
    }
}
