using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.EndToEnd;
using ErrorWatch.Tests.Service;
using ErrorWatch.Watching;
using Xunit.Abstractions;

namespace ErrorWatch.Tests.Install;

/// <summary>
/// The package installed into a real systemd: a Debian 12 root made by debootstrap (cached), booted
/// with systemd-nspawn (systemd as PID 1, its own journald and system bus), the .deb installed with
/// apt, and a scratch ext4 the test loop-mounts on the host bound in at /mnt/scratch. Errors are
/// injected from the host through /sys/fs/ext4/loopN/trigger_fs_error (the container shares the
/// kernel), and everything is checked the way an administrator would, with the system's own tools
/// inside the container. Only the scratch filesystem this test made is ever corrupted.
/// </summary>
[Collection(InstallCollection.Name)]
public sealed partial class NspawnInstallTests(PackageBuild package, ITestOutputHelper output)
{
    private const string ReportMessageId = "bd42365c534f459287726f415119295b";
    private const string Bus = "io.github.errorwatch.ErrorWatch1";
    private const string ManagerPath = "/io/github/errorwatch/ErrorWatch1";
    private const string ManagerInterface = "io.github.errorwatch.ErrorWatch1.Manager";

    /// <summary>
    /// The ceiling for <c>systemd-analyze security --offline=true</c> on the installed unit: 2.5 since the
    /// kernel's lines come from the journal (ProtectKernelLogs=yes, no CAP_SYSLOG, no /dev/kmsg in the
    /// device list; 2.7 before), after the NativeAOT build allowed MemoryDenyWriteExecute=yes and
    /// SystemCallFilter=~@resources (2.9 before that). What is left is what the daemon needs: root,
    /// CAP_SYS_ADMIN and CAP_DAC_READ_SEARCH, AF_INET for the endpoint, block devices, /tmp and /home
    /// visible (docs/security.md).
    /// </summary>
    private const double MaxExposure = 2.5;

    /// <summary>Where the packages are bound into the container.</summary>
    private string PackageInside => "/srv/" + Path.GetFileName(package.Deb);

    private string DbgsymInside => "/srv/" + Path.GetFileName(package.Dbgsym);

    [InstallFact]
    public void Installed_from_the_package_it_runs_hardened_and_reports_everywhere_then_remove_and_purge_leave_the_system_clean()
    {
        var clock = Stopwatch.StartNew();
        var deb = Phase("build the package (packaging/build-deb.sh)", () => package.Deb);
        var root = Phase("Debian root (tests/install/debian-root.sh, cached)", () => package.DebianRoot);
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("nspawn");
        var xfs = scratch.Xfs("nspawn-xfs");
        using var machine = Phase("boot with systemd-nspawn -b", () => Boot(root, fs, deb, xfs));
        var dev = fs.LoopDevice;
        var clean = FileList(machine);

        Phase("apt install", () => Install(machine, withSymbols: true));
        Assert.Equal("ii", machine.Exec("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "errorwatch-dbgsym").StdOut.Trim());

        // --- the service: enabled, started by the postinst, ready only once it watches (Type=notify).
        Assert.Equal("active", machine.Exec("systemctl", "is-active", "errorwatch").StdOut.Trim());
        Assert.Equal("enabled", machine.Exec("systemctl", "is-enabled", "errorwatch").StdOut.Trim());
        var show = Show(machine, "Type", "StatusText", "WatchdogUSec", "FragmentPath");
        Assert.Equal("notify", show["Type"]);
        Assert.EndsWith("/lib/systemd/system/errorwatch.service", show["FragmentPath"]); // /lib is /usr/lib on bookworm
        // The host's own filesystems are visible in the container too (nspawn's /run/host mounts):
        // only the form is certain, not the counts.
        Assert.Matches(@"^Watching \d+ filesystem\(s\); \d+ report\(s\) so far$", show["StatusText"]);
        // READY=1 (systemd's "Started") came after the scratch filesystem was marked, not before.
        var log = machine.Check("journalctl", "-u", "errorwatch", "-b", "--no-pager", "-o", "cat").Split('\n').ToList();
        var marked = log.FindIndex(l => l.StartsWith("Watching", StringComparison.Ordinal) && l.Contains($"ext4 {dev} (") && l.Contains("/mnt/scratch"));
        var started = log.FindIndex(l => l.StartsWith("Started errorwatch.service", StringComparison.Ordinal));
        Assert.True(marked >= 0 && started > marked, "the scratch filesystem was not watched before the service was started:\n" + string.Join('\n', log));

        // --- hardening, as systemd judges the installed unit: the file (offline, as in the unit's
        // header) and the running service (with what the manager adds).
        foreach (var analyze in new[] { new[] { "--offline=true", "/usr/lib/systemd/system/errorwatch.service" }, new[] { "errorwatch" } })
        {
            var security = machine.Check(["systemd-analyze", "security", "--no-pager", .. analyze]);
            var exposure = double.Parse(OverallExposure().Match(security).Groups[1].Value, CultureInfo.InvariantCulture);
            Assert.True(exposure <= MaxExposure, $"exposure {exposure} > {MaxExposure}:\n{security}");
            output.WriteLine($"systemd-analyze security {string.Join(' ', analyze)}: {exposure}");
        }
        // No JIT: the kernel forbids the daemon writable executable memory (systemd 252 does it with a
        // seccomp filter; mode 2 is "filter"), and everything below runs under it.
        Assert.Equal("yes", Show(machine, "MemoryDenyWriteExecute")["MemoryDenyWriteExecute"]);
        var mainPid = Show(machine, "MainPID")["MainPID"];
        var status = machine.Check("cat", $"/proc/{mainPid}/status");
        Assert.Matches(@"(?m)^Seccomp:\s+2$", status);
        Assert.Matches(@"(?m)^NoNewPrivs:\s+1$", status);

        // --- what the package registered: the catalog is compiled, the name is activatable.
        Assert.Contains(ReportMessageId, machine.Check("journalctl", "--list-catalog", "--no-pager"));
        Assert.Contains(Bus, machine.Check("busctl", "--system", "list", "--activatable", "--no-pager"));

        // --- an error in the scratch filesystem, seen in every output.
        using (var monitor = machine.StartBackground("busctl", "--system", "monitor", "--json=short", Bus))
        {
            // The monitor is listening once it sees our own call to the service.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
            while (!monitor.Output.Contains("\"Version\"", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
            {
                machine.Exec("busctl", "--system", "get-property", Bus, ManagerPath, ManagerInterface, "Version");
                monitor.WaitFor("\"Version\"", TimeSpan.FromMilliseconds(500));
            }
            Assert.True(monitor.Output.Contains("\"Version\"", StringComparison.Ordinal), "busctl monitor saw nothing:\n" + monitor.Output);

            var errorsBefore = fs.ErrorsCount;
            fs.TriggerFsError("errorwatch install test");
            var entry = WaitForJournalEntry(machine, dev);
            var reportId = entry.GetProperty("ERRORWATCH_REPORT_ID").GetString()!;
            Assert.Equal(ReportMessageId, entry.GetProperty("MESSAGE_ID").GetString());
            Assert.Equal("errorwatch.service", entry.GetProperty("_SYSTEMD_UNIT").GetString());
            Assert.Equal("/mnt/scratch", entry.GetProperty("ERRORWATCH_MOUNTPOINT").GetString());
            Assert.Equal("EUCLEAN", entry.GetProperty("ERRORWATCH_ERRNO_NAME").GetString());
            Assert.Equal("corruption", entry.GetProperty("ERRORWATCH_EVENT").GetString());
            Assert.Equal("2", entry.GetProperty("PRIORITY").GetString());
            Assert.Equal("1", entry.GetProperty("ERRORWATCH_ERROR_COUNT").GetString());
            // The kernel's own count agrees.
            Assert.Equal(errorsBefore + 1, fs.ErrorsCountReaching(errorsBefore + 1, TimeSpan.FromSeconds(10)));

            // journalctl -x: the catalog's explanation, its fields filled in from the entry.
            var explained = machine.Check("journalctl", "-x", "--no-pager", "-u", "errorwatch", "ERRORWATCH_REPORT_ID=" + reportId);
            Assert.Contains($"Subject: Filesystem error on {dev} (ext4): EUCLEAN", explained);
            Assert.Contains("Defined-By: ErrorWatch", explained);
            Assert.Contains($"e2fsck -f {dev}", explained);

            // D-Bus: the ReportAdded signal, then the stored report by id.
            Assert.True(monitor.WaitFor(reportId, TimeSpan.FromSeconds(10)), "no ReportAdded with the report on the bus:\n" + monitor.Output);
            Assert.Contains(monitor.Output.Split('\n'), l => l.Contains("\"ReportAdded\"") && l.Contains(reportId));
            var stored = machine.Check("busctl", "--system", "--json=short", "call", Bus, ManagerPath, ManagerInterface, "GetReport", "s", reportId);
            Assert.Contains(dev, stored);
            Assert.Contains(reportId, stored);
        }

        // An unprivileged user sees the filesystem's health through the installed bus policy.
        var userStatus = machine.Check("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "errorwatch", "status", "--json");
        using (var doc = JsonDocument.Parse(userStatus))
        {
            var scratchStatus = doc.RootElement.GetProperty("filesystems").EnumerateArray().Single(f => f.GetProperty("device").GetString() == dev);
            Assert.Equal("errors", scratchStatus.GetProperty("health").GetString());
            Assert.True(scratchStatus.GetProperty("error_count").GetInt64() >= 1, userStatus);
        }

        // Prometheus: curl on the container's loopback, as a scraper on the host would.
        var metrics = machine.Check("curl", "-sf", "http://127.0.0.1:9464/metrics");
        var errorsSeries = metrics.Split('\n').FirstOrDefault(l => l.StartsWith("errorwatch_filesystem_errors_total{", StringComparison.Ordinal)
            && l.Contains($"system_device=\"{dev}\"") && l.Contains("errorwatch_source=\"fanotify\""));
        Assert.True(errorsSeries is not null, "no errorwatch_filesystem_errors_total for the scratch filesystem:\n" + metrics);
        Assert.True(double.Parse(errorsSeries.Split(' ')[^1], CultureInfo.InvariantCulture) >= 1, errorsSeries);
        Assert.Contains(metrics.Split('\n'), l => l.StartsWith("errorwatch_filesystem_health{", StringComparison.Ordinal) && l.Contains($"system_device=\"{dev}\"") && l.EndsWith(" 1"));

        // After all of that (journal, bus calls and signals, the endpoint), the same process, and not
        // one page of it both writable and executable.
        Assert.Equal(mainPid, Show(machine, "MainPID")["MainPID"]);
        var maps = machine.Check("cat", $"/proc/{mainPid}/maps");
        Assert.DoesNotContain(maps.Split('\n'), l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries) is [_, ['r' or '-', 'w', 'x', _], ..]);

        // --- the kernel log without /dev/kmsg: ProtectKernelLogs=yes and no CAP_SYSLOG, so the kernel's
        // lines come from the container's journal (its journald reads /dev/kmsg, as a host's does), and
        // they still make the daemon look at once. XFS before Linux 7.0 says nothing but its log line.
        Phase("kernel log from the journal", () => KernelLogFromTheJournal(machine, xfs));
        Phase("priority boost: refused by the unit, allowed by the documented drop-in", () => PriorityBoostUnderTheUnit(machine));

        // --- the watchdog restarts a hung daemon. A drop-in shortens WatchdogSec=30s to 5 s, so
        // the test waits seconds, not half a minute; the daemon pings at half of whatever is set.
        Phase("watchdog", () =>
        {
            machine.Check("mkdir", "-p", "/etc/systemd/system/errorwatch.service.d");
            machine.Check("sh", "-c", "printf '[Service]\\nWatchdogSec=5s\\n' > /etc/systemd/system/errorwatch.service.d/50-install-test.conf");
            machine.Check("systemctl", "daemon-reload");
            machine.Check("systemctl", "restart", "errorwatch");
            var before = Show(machine, "MainPID", "NRestarts", "WatchdogUSec");
            Assert.Equal("5s", before["WatchdogUSec"]);
            machine.Check("sh", "-c", "kill -STOP " + before["MainPID"]);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(45);
            Dictionary<string, string> after;
            do
            {
                Thread.Sleep(500);
                after = Show(machine, "MainPID", "NRestarts", "ActiveState", "SubState");
            }
            while ((after["MainPID"] == before["MainPID"] || after["MainPID"] == "0" || after["SubState"] != "running") && DateTime.UtcNow < deadline);
            Assert.True(after["MainPID"] != before["MainPID"] && after["SubState"] == "running",
                $"not restarted after SIGSTOP: {string.Join(", ", after)}\n" + machine.Exec("journalctl", "-u", "errorwatch", "-n", "30", "--no-pager").StdOut);
            Assert.Equal(int.Parse(before["NRestarts"], CultureInfo.InvariantCulture) + 1, int.Parse(after["NRestarts"], CultureInfo.InvariantCulture));
            Assert.Contains("Watchdog timeout", machine.Check("journalctl", "-u", "errorwatch", "-b", "--no-pager", "-o", "cat"));
            machine.Check("rm", "-r", "/etc/systemd/system/errorwatch.service.d");
            machine.Check("systemctl", "daemon-reload");
            machine.Check("systemctl", "restart", "errorwatch");
            Assert.Equal("30s", Show(machine, "WatchdogUSec")["WatchdogUSec"]);
        });

        // --- systemctl stop completes within 2 s, cleanly.
        var stop = Stopwatch.StartNew();
        machine.Check("systemctl", "stop", "errorwatch");
        stop.Stop();
        output.WriteLine($"systemctl stop: {stop.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(stop.Elapsed < TimeSpan.FromSeconds(2), $"systemctl stop took {stop.Elapsed.TotalSeconds:0.00} s");
        var stopped = Show(machine, "ActiveState", "Result", "ExecMainStatus");
        Assert.Equal("inactive", stopped["ActiveState"]);
        Assert.Equal("success", stopped["Result"]);
        Assert.Equal("0", stopped["ExecMainStatus"]);

        // Bus activation: a call to the name starts the stopped service through systemd.
        machine.Check("busctl", "--system", "call", Bus, ManagerPath, "org.freedesktop.DBus.Peer", "Ping");
        Assert.Equal("active", machine.Exec("systemctl", "is-active", "errorwatch").StdOut.Trim());

        // --- remove: program gone, configuration and reports kept, nothing registered any more.
        Phase("apt remove", () => machine.Check(TimeSpan.FromMinutes(3), "apt-get", "remove", "-y", "errorwatch"));
        Assert.Equal("rc", machine.Exec("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "errorwatch").StdOut.Trim());
        // Its symbols depend on exactly this errorwatch, so they went with it.
        Assert.NotEqual("ii", machine.Exec("dpkg-query", "-W", "-f=${db:Status-Abbrev}", "errorwatch-dbgsym").StdOut.Trim());
        Assert.Equal("", machine.Exec("sh", "-c", "find /usr/lib/debug -name '*.debug' 2>/dev/null").StdOut);
        Assert.NotEqual("active", machine.Exec("systemctl", "is-active", "errorwatch").StdOut.Trim());
        // Masked while only its configuration is left, as dh_installsystemd does it; purge unmasks.
        Assert.Equal("masked", machine.Exec("systemctl", "is-enabled", "errorwatch").StdOut.Trim());
        Assert.NotEqual(0, machine.Exec("pgrep", "-x", "errorwatch").ExitCode);
        Assert.NotEqual(0, machine.Exec("test", "-e", "/usr/lib/errorwatch").ExitCode);
        Assert.NotEqual(0, machine.Exec("test", "-e", "/usr/lib/systemd/system/errorwatch.service").ExitCode);
        Assert.Equal(0, machine.Exec("test", "-f", "/etc/errorwatch/errorwatch.conf").ExitCode);
        Assert.NotEqual("", machine.Check("find", "/var/lib/errorwatch/reports", "-type", "f").Trim());
        Assert.DoesNotContain(ReportMessageId, machine.Check("journalctl", "--list-catalog", "--no-pager"));
        Assert.DoesNotContain(Bus, machine.Check("busctl", "--system", "list", "--activatable", "--no-pager"));

        // --- purge: nothing of it left, the file tree as before the installation.
        Phase("apt purge", () => machine.Check(TimeSpan.FromMinutes(3), "apt-get", "purge", "-y", "errorwatch"));
        Assert.NotEqual(0, machine.Exec("dpkg-query", "-W", "errorwatch").ExitCode);
        Assert.NotEqual(0, machine.Exec("test", "-e", "/etc/errorwatch").ExitCode);
        Assert.NotEqual(0, machine.Exec("test", "-e", "/var/lib/errorwatch").ExitCode);
        var after = FileList(machine);
        Assert.True(clean.SequenceEqual(after),
            "the purged system differs from the one before installation:\n  added: " + string.Join("\n    ", after.Except(clean))
            + "\n  removed: " + string.Join("\n    ", clean.Except(after)));
        output.WriteLine($"whole test: {clock.Elapsed.TotalSeconds:0} s");
    }

    /// <summary>
    /// install.sh's layout for a prefix other than /usr, on a real systemd: the unit, catalog, bus
    /// policy and activation file are found where it puts them, and the service runs from /usr/local.
    /// install.sh writes into the container's root from the host (--destdir), then the container is
    /// told what install.sh itself would tell a live system.
    /// </summary>
    [InstallFact]
    public void Install_sh_with_prefix_usr_local_gives_the_same_running_service_and_uninstalls()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("nspawn-local");
        using var machine = Boot(package.DebianRoot, fs, package.Deb);
        var script = Path.Combine(ServicePaths.RepositoryRoot, "packaging", "install.sh");
        var r = Tool.RunWithTimeout(TimeSpan.FromMinutes(2), script, "--prefix", "/usr/local", "--destdir", machine.Root, "--from", package.PublishDirectory);
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        machine.Check("systemctl", "daemon-reload");
        machine.Check("journalctl", "--update-catalog");
        machine.Check("busctl", "--system", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "ReloadConfig");
        machine.Check("systemctl", "enable", "--now", "errorwatch");

        Assert.Equal("active", machine.Exec("systemctl", "is-active", "errorwatch").StdOut.Trim());
        var show = Show(machine, "FragmentPath", "ExecStart");
        Assert.Equal("/usr/local/lib/systemd/system/errorwatch.service", show["FragmentPath"]);
        Assert.Contains("path=/usr/local/lib/errorwatch/errorwatch ;", show["ExecStart"]);
        Assert.Contains(ReportMessageId, machine.Check("journalctl", "--list-catalog", "--no-pager"));
        Assert.Contains(Bus, machine.Check("busctl", "--system", "list", "--activatable", "--no-pager"));
        var status = machine.Check("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/local/bin/errorwatch", "status", "--json");
        using (var doc = JsonDocument.Parse(status))
            Assert.Contains(doc.RootElement.GetProperty("filesystems").EnumerateArray(), f => f.GetProperty("device").GetString() == fs.LoopDevice);

        machine.Check("systemctl", "disable", "--now", "errorwatch");
        r = Tool.RunWithTimeout(TimeSpan.FromMinutes(1), script, "--prefix", "/usr/local", "--destdir", machine.Root, "--uninstall");
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        machine.Check("systemctl", "daemon-reload");
        Assert.Equal("", machine.Check("find", "/usr/local", "-type", "f").Trim());
        Assert.NotEqual(0, machine.Exec("systemctl", "cat", "errorwatch").ExitCode);
    }

    /// <summary>
    /// Hooks, reload and OTLP inside the hardened unit (MemoryDenyWriteExecute=, the system-call filter,
    /// the IP firewall; hooks inherit them): an example hook from the package (deploy/hooks/corruption-wall),
    /// enabled as its header tells an administrator to, a <c>Unit=</c> rule added with <c>systemctl
    /// reload</c> (SIGHUP), and OTLP over http/protobuf to a collector on the container's loopback. One
    /// real report runs both hooks and reaches the collector as a log record.
    /// </summary>
    [ExampleHookFact]
    public void Hooks_a_reload_and_otlp_work_inside_the_hardened_unit()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("nspawn-hook");
        using var machine = Boot(package.DebianRoot, fs, package.Deb);
        Install(machine);
        // A collector: the host's python3 in the container's network namespace, printing each request.
        using var collector = machine.StartInNetwork("python3", "-c", OtlpCollector, "4318");
        Assert.True(collector.WaitFor("listening", TimeSpan.FromSeconds(10)), "the OTLP collector did not start:\n" + collector.Output);
        WriteInside(machine, "/etc/errorwatch/errorwatch.conf.d/50-otlp.conf",
            "[OpenTelemetry]\nEndpoint=http://127.0.0.1:4318\nProtocol=http/protobuf\nInterval=2s\n");
        // As its header says: a root-owned 0755 copy in hooks.d, and the drop-in that lets wall reach terminals.
        machine.Check("install", "-o", "root", "-g", "root", "-m", "0755", "/usr/share/doc/errorwatch/examples/hooks/corruption-wall", "/etc/errorwatch/hooks.d/");
        machine.Check("install", "-D", "-m", "0644", "/usr/share/doc/errorwatch/examples/hooks/errorwatch-hooks.conf", "/etc/systemd/system/errorwatch.service.d/hooks.conf");
        machine.Check("systemctl", "daemon-reload");
        var listed = machine.Exec("errorwatch", "hooks", "list");
        Assert.True(listed.StdOut.Contains("corruption-wall"), listed.StdOut + listed.StdErr);
        machine.Check("errorwatch", "check-config");
        machine.Check("systemctl", "restart", "errorwatch");
        Assert.Equal("yes", Show(machine, "MemoryDenyWriteExecute")["MemoryDenyWriteExecute"]);

        // A Unit= rule, as deploy/hooks/xfs-scrub.conf is one, read at SIGHUP by the same process.
        WriteInside(machine, "/etc/systemd/system/errorwatch-install-test@.service",
            "[Unit]\nDescription=errorwatch install test hook for %f\n[Service]\nType=oneshot\nExecStart=/bin/sh -c 'echo %f > /run/errorwatch-unit-hook'\n");
        machine.Check("systemctl", "daemon-reload");
        WriteInside(machine, "/etc/errorwatch/errorwatch.conf.d/50-unit-hook.conf", "[Hook \"unit-test\"]\nUnit=errorwatch-install-test@%m.service\nEvents=corruption\n");
        machine.Check("errorwatch", "check-config");
        var pid = Show(machine, "MainPID")["MainPID"];
        machine.Check("systemctl", "reload", "errorwatch");
        Assert.Equal("active", machine.Exec("systemctl", "is-active", "errorwatch").StdOut.Trim());
        Assert.Equal(pid, Show(machine, "MainPID")["MainPID"]);
        Assert.Contains("Configuration reloaded", machine.Check("journalctl", "-u", "errorwatch", "-b", "--no-pager", "-o", "cat"));

        fs.TriggerFsError("errorwatch hook test");
        WaitForJournalEntry(machine, fs.LoopDevice);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        string[] ran = [];
        while (ran.Length < 2 && DateTime.UtcNow < deadline)
        {
            Thread.Sleep(500);
            ran = ["corruption-wall", "unit-test"];
            var metrics = machine.Exec("curl", "-sf", "http://127.0.0.1:9464/metrics").StdOut.Split('\n');
            ran = ran.Where(hook => metrics.Any(l => l.StartsWith("errorwatch_hooks_runs_total{", StringComparison.Ordinal)
                && l.Contains($"errorwatch_hook=\"{hook}\"") && l.Contains("errorwatch_outcome=\"success\""))).ToArray();
        }
        Assert.True(ran.Length == 2, $"successful hook runs only for [{string.Join(", ", ran)}]:\n" + machine.Exec("journalctl", "-u", "errorwatch", "-b", "--no-pager").StdOut);
        // The unit ran, for the mount point's instance (systemd-escape --path; %f turns it back).
        Assert.Equal("/mnt/scratch", machine.Check("cat", "/run/errorwatch-unit-hook").Trim());

        // OTLP: the report as a log record, and the metrics.
        Assert.True(collector.WaitFor("POST /v1/logs", TimeSpan.FromSeconds(30)), "no OTLP log record for the report:\n" + collector.Output);
        Assert.True(collector.WaitFor("POST /v1/metrics", TimeSpan.FromSeconds(30)), "no OTLP metrics:\n" + collector.Output);
        Assert.Equal(pid, Show(machine, "MainPID")["MainPID"]);
    }

    /// <summary>
    /// docs/operations.md, Crashes and debugging: with errorwatch-dbgsym installed, gdb attached to the
    /// running service names its managed frames (ILC's names, with file and line), and without it does
    /// not; gdb leaves the service running. Then a SIGABRT, as a crash or the watchdog sends it, is a
    /// core-dumping exit that systemd restarts. gdb is the host's, which reads the executable and the
    /// symbols inside the container's mount namespace as it would on the machine itself.
    /// </summary>
    [InstallFact]
    public void With_errorwatch_dbgsym_gdb_names_the_running_daemons_managed_frames_and_a_crash_is_restarted()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("nspawn-gdb");
        using var machine = Boot(package.DebianRoot, fs, package.Deb);
        Install(machine, withSymbols: true);
        var pid = Show(machine, "MainPID")["MainPID"];
        var hostPid = machine.HostPid(int.Parse(pid, CultureInfo.InvariantCulture));
        Assert.True(hostPid > 0, $"no host PID for the container's PID {pid}");

        string Backtrace()
        {
            var r = Tool.RunWithTimeout(TimeSpan.FromMinutes(2), "gdb", "-p", hostPid.ToString(CultureInfo.InvariantCulture), "-batch", "-nx",
                "-iex", "set debuginfod enabled off", "-ex", "thread apply all bt");
            Assert.True(r.ExitCode == 0, $"gdb -p failed ({r.ExitCode}):\n{r.StdOut}{r.StdErr}");
            return r.StdOut;
        }

        var named = Phase("gdb -p with errorwatch-dbgsym", Backtrace);
        // e.g. "#2 0x... in ErrorWatch_Core_ErrorWatch_Watching_Watcher__Loop (this=...) at .../Watcher.cs:117"
        Assert.Matches(@"in ErrorWatch_Core_ErrorWatch_\w+__\w+ \(.*\) at \S+\.cs:\d+", named);
        Assert.Equal("active", machine.Exec("systemctl", "is-active", "errorwatch").StdOut.Trim());
        Assert.Equal(pid, Show(machine, "MainPID")["MainPID"]);

        // The names come from the package: without it the executable has none.
        machine.Check(TimeSpan.FromMinutes(2), "apt-get", "remove", "-y", "errorwatch-dbgsym");
        Assert.DoesNotContain("ErrorWatch_Core_", Backtrace());

        // A crash: SIGABRT (what an unhandled exception's abort() and the watchdog raise), a core
        // allowed by the unit, and a restart.
        Assert.Equal("infinity", Show(machine, "LimitCORESoft")["LimitCORESoft"]);
        machine.Check("systemctl", "kill", "--signal=SIGABRT", "--kill-whom=main", "errorwatch");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        Dictionary<string, string> after;
        do
        {
            Thread.Sleep(300);
            after = Show(machine, "MainPID", "NRestarts", "SubState");
        }
        while ((after["MainPID"] == pid || after["SubState"] != "running") && DateTime.UtcNow < deadline);
        Assert.True(after["MainPID"] != pid && after["SubState"] == "running" && after["NRestarts"] == "1", string.Join(", ", after));
        Assert.Contains("status=6/ABRT", machine.Check("journalctl", "-u", "errorwatch", "-b", "--no-pager", "-o", "cat"));
    }

    /// <summary>
    /// An OTLP/HTTP collector that accepts everything and prints "POST path bytes" per request (python3,
    /// standard library only); argument: the port on 127.0.0.1. A thread per connection: the log and
    /// metric exporters each keep one open.
    /// </summary>
    private const string OtlpCollector = """
        import http.server, sys
        class Collector(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    while (size := int(self.rfile.readline().strip(), 16)) > 0:
                        self.rfile.read(size + 2)
                        n += size
                    self.rfile.readline()
                else:
                    self.rfile.read(n)
                print("POST", self.path, n, flush=True)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()
            def log_message(self, *args):
                pass
        server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Collector)
        print("listening", flush=True)
        server.serve_forever()
        """;

    private T Phase<T>(string name, Func<T> action)
    {
        var clock = Stopwatch.StartNew();
        var result = action();
        output.WriteLine($"{name}: {clock.Elapsed.TotalSeconds:0.0} s");
        return result;
    }

    private void Phase(string name, Action action) => Phase<object?>(name, () =>
    {
        action();
        return null;
    });

    private NspawnMachine Boot(string root, ScratchFilesystem fs, string deb, ScratchFilesystem? xfs = null) =>
        NspawnMachine.Boot(root, [$"--bind={fs.MountPoint}:/mnt/scratch", $"--bind={fs.LoopDevice}", $"--bind-ro={deb}:{PackageInside}",
            $"--bind-ro={package.Dbgsym}:{DbgsymInside}",
            .. xfs is null ? Array.Empty<string>() : [$"--bind={xfs.MountPoint}:/mnt/scratch-xfs", $"--bind={xfs.LoopDevice}"]], TimeSpan.FromSeconds(90));

    /// <summary>
    /// The service reads the kernel's lines from the journal and they trigger a check at once: with the
    /// periodic check an hour away, an XFS forced shutdown (made from the host; XFS announces nothing
    /// through fanotify before 7.0) is reported within seconds, naming the kernel line that triggered it.
    /// </summary>
    private void KernelLogFromTheJournal(NspawnMachine machine, ScratchFilesystem xfs)
    {
        var log = machine.Check("journalctl", "-u", "errorwatch", "-b", "--no-pager", "-o", "cat");
        // (The journal has string properties quoted.)
        Assert.True(log.Contains("; kernel log from journal\n", StringComparison.Ordinal) && log.Contains("Capabilities kept: \"CAP_DAC_READ_SEARCH CAP_SYS_ADMIN\"", StringComparison.Ordinal),
            "not reading the journal with two capabilities:\n" + log);
        Assert.NotEqual("", machine.Check("journalctl", "-k", "-b", "-n", "1", "--no-pager", "-q", "-o", "cat").Trim());
        var bounding = machine.Check("cat", $"/proc/{Show(machine, "MainPID")["MainPID"]}/status").Split('\n').Single(l => l.StartsWith("CapBnd:", StringComparison.Ordinal));
        Assert.Equal("CAP_DAC_READ_SEARCH CAP_SYS_ADMIN", ErrorWatch.Daemon.CapabilitySet.FromHex(bounding["CapBnd:".Length..]).ToString());

        WriteInside(machine, "/etc/errorwatch/errorwatch.conf.d/50-install-test.conf", "[Health]\nCheckInterval=1h\n");
        machine.Check("systemctl", "restart", "errorwatch");
        var shutDown = Stopwatch.StartNew();
        xfs.ShutDown();
        var entry = WaitForJournalEntry(machine, xfs.LoopDevice);
        output.WriteLine($"XFS shutdown -> report in the journal: {shutDown.Elapsed.TotalMilliseconds:0} ms");
        Assert.True(shutDown.Elapsed < TimeSpan.FromSeconds(15), $"the shutdown took {shutDown.Elapsed.TotalSeconds:0.0} s to be reported");
        Assert.Equal("xfs-health", entry.GetProperty("ERRORWATCH_SOURCE").GetString());
        Assert.Equal("shutdown", entry.GetProperty("ERRORWATCH_EVENT").GetString());
        Assert.StartsWith($"XFS ({Path.GetFileName(xfs.LoopDevice)}): ", entry.GetProperty("ERRORWATCH_XFS_HEALTH_KERNEL_LOG_TRIGGER").GetString());
        // The container's journald stamps its entries with the container's boot id, which the service
        // (ProtectKernelTunables=yes) does not see in /proc: this boot's lines are still found as such.
        Assert.DoesNotContain("holds no kernel line", machine.Check("journalctl", "-u", "errorwatch", "-b", "--no-pager", "-o", "cat"));

        machine.Check("rm", "/etc/errorwatch/errorwatch.conf.d/50-install-test.conf");
        machine.Check("systemctl", "restart", "errorwatch");
    }

    /// <summary>Writes a root-owned file into the running container (its root is an overlay the host sees).</summary>
    /// <summary>The nice value and slice (ns) of the service's two event threads (read and decode), read inside the container (its pids).</summary>
    private static List<(string Name, int Nice, long Slice)> EventThreads(NspawnMachine machine)
    {
        var pid = Show(machine, "MainPID")["MainPID"];
        // Both names are one word, so stat's 19th field is the nice value.
        var lines = machine.Check("sh", "-c", $$"""
            for t in /proc/{{pid}}/task/*; do
              c=$(cat $t/comm)
              case "$c" in {{EventThreadNames.First}}|{{EventThreadNames.Second}}) echo "$c $(awk '{print $19}' $t/stat) $(sed -n 's/^se.slice *: *//p' $t/sched)";; esac
            done
            """);
        return lines.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' '))
            .Select(f => (f[0], int.Parse(f[1], CultureInfo.InvariantCulture), long.Parse(f[2], CultureInfo.InvariantCulture))).ToList();
    }

    /// <summary>
    /// [Watch] PriorityBoost=4 (the default) under the shipped unit: its system call filter denies
    /// sched_setattr (exposure 2.5), so the event threads run unboosted and the log says so once. The
    /// drop-ins docs/operations.md gives boost them: LimitNICE=-4 where systemd can raise RLIMIT_NICE
    /// (PID 1 of a host can; this VM's root, and so the container's systemd, has no CAP_SYS_RESOURCE:
    /// then only the slice applies and the log names the limit), CapabilityBoundingSet=CAP_SYS_NICE anywhere.
    /// </summary>
    private void PriorityBoostUnderTheUnit(NspawnMachine machine)
    {
        Assert.Contains("the event threads run without a boost: sched_setattr failed with EPERM", Journal(machine));
        var plain = EventThreads(machine);
        Assert.Equal(2, plain.Count);
        Assert.All(plain, t => Assert.Equal((0, false), (t.Nice, t.Slice == 100_000)));

        const string dropIn = "/etc/systemd/system/errorwatch.service.d/50-priority-boost.conf";
        WriteInside(machine, dropIn, "[Service]\nLimitNICE=-4\nSystemCallFilter=sched_setattr\n");
        Restart(machine);
        var limited = EventThreads(machine);
        var limit = machine.Check("cat", $"/proc/{Show(machine, "MainPID")["MainPID"]}/limits").Split('\n').Single(l => l.StartsWith("Max nice priority", StringComparison.Ordinal));
        output.WriteLine($"with LimitNICE=-4: {string.Join(", ", limited)}; {limit}");
        Assert.Equal(2, limited.Count);
        if (limit.Split(' ', StringSplitOptions.RemoveEmptyEntries)[3] == "24")
            Assert.All(limited, t => Assert.Equal((-4, 100_000L), (t.Nice, t.Slice)));
        else
        {
            Assert.All(limited, t => Assert.Equal((0, 100_000L), (t.Nice, t.Slice)));
            Assert.Contains("the event threads keep nice 0 (only the short slice): lowering it needs CAP_SYS_NICE or an RLIMIT_NICE of 24 (systemd: LimitNICE=-4)", Journal(machine));
        }

        WriteInside(machine, dropIn, "[Service]\nCapabilityBoundingSet=CAP_SYS_NICE\nSystemCallFilter=sched_setattr\n");
        Restart(machine);
        var boosted = EventThreads(machine);
        output.WriteLine($"with CAP_SYS_NICE: {string.Join(", ", boosted)}");
        Assert.Equal(2, boosted.Count);
        Assert.All(boosted, t => Assert.Equal((-4, 100_000L), (t.Nice, t.Slice)));

        machine.Check("rm", dropIn);
        Restart(machine);
    }

    private static string Journal(NspawnMachine machine) => machine.Check("journalctl", "-u", "errorwatch", "-b", "--no-pager", "-o", "cat");

    private static void Restart(NspawnMachine machine)
    {
        machine.Check("systemctl", "daemon-reload");
        machine.Check("systemctl", "restart", "errorwatch");
    }

    private static void WriteInside(NspawnMachine machine, string path, string text)
    {
        var file = machine.Root + path;
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, text);
    }

    private void Install(NspawnMachine machine, bool withSymbols = false)
    {
        // apt, as an administrator would; no network in the container, so it must find every
        // dependency already installed.
        var r = machine.Exec(TimeSpan.FromMinutes(3), ["apt-get", "install", "-y", PackageInside, .. withSymbols ? [DbgsymInside] : Array.Empty<string>()]);
        Assert.True(r.ExitCode == 0, $"apt-get install failed ({r.ExitCode}):\n{r.StdOut}{r.StdErr}");
    }

    /// <summary>systemctl show -p ... errorwatch as a dictionary.</summary>
    private static Dictionary<string, string> Show(NspawnMachine machine, params string[] properties)
    {
        var args = new List<string> { "systemctl", "show", "errorwatch" };
        foreach (var p in properties)
            args.AddRange(["-p", p]);
        return machine.Check([.. args]).Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
    }

    /// <summary>The first report entry about <paramref name="device"/> in the container's journal.</summary>
    private static JsonElement WaitForJournalEntry(NspawnMachine machine, string device)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var r = machine.Exec("journalctl", "-u", "errorwatch", "-o", "json", "--no-pager", "MESSAGE_ID=" + ReportMessageId, "ERRORWATCH_DEVICE=" + device);
            var first = r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).FirstOrDefault();
            if (first is not null)
                return JsonDocument.Parse(first).RootElement.Clone();
            Assert.True(DateTime.UtcNow < deadline, "no report entry in the journal within 30 s:\n"
                + machine.Exec("journalctl", "-u", "errorwatch", "-b", "--no-pager").StdOut);
            Thread.Sleep(250);
        }
    }

    /// <summary>
    /// Every path under /etc, /usr, /var/lib and /opt, with its type, except dpkg's and apt's own
    /// records (which remember that a package was once there, as they should).
    /// </summary>
    private static List<string> FileList(NspawnMachine machine) =>
        machine.Check("find", "/etc", "/usr", "/var/lib", "/opt", "-xdev",
                "(", "-path", "/var/lib/dpkg", "-o", "-path", "/var/lib/apt", ")", "-prune", "-o", "-printf", "%y %p\\n")
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal).ToList();

    [GeneratedRegex(@"Overall exposure level for errorwatch\.service: (\d+\.\d+)")]
    private static partial Regex OverallExposure();
}

/// <summary>The install test of the example hooks: skipped, saying why, until deploy/hooks/ holds an example.</summary>
public sealed class ExampleHookFactAttribute : FactAttribute
{
    public static string Directory => Path.Combine(ServicePaths.RepositoryRoot, "deploy", "hooks");

    public static List<string> Examples() =>
        System.IO.Directory.Exists(Directory) ? System.IO.Directory.EnumerateFiles(Directory, "corruption-wall", SearchOption.AllDirectories).ToList() : [];

    public ExampleHookFactAttribute()
    {
        Skip = InstallFactAttribute.Why()
            ?? (Examples().Count == 0 ? "deploy/hooks/corruption-wall is missing" : null);
    }
}
