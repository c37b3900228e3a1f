using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Tests.Health;
using ErrorWatch.Tests.Journal;
using Xunit.Abstractions;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>
/// `errorwatch run` choosing its kernel log, as the unit's ProtectKernelLogs=yes leaves it: in a private
/// mount namespace with a journald of its own (reading the real /dev/kmsg, as a system's does) and, for
/// the daemon, /dev/kmsg masked by an inaccessible device node as systemd masks it. It must say it reads
/// the journal, sleep while nothing is logged, and check an XFS filesystem the moment the kernel logs
/// its shutdown, with a periodic check 10 minutes away. With /dev/kmsg left alone, it reads that.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class KernelLogSourceTests(ITestOutputHelper output)
{
    /// <summary>
    /// $1: 1 to mask /dev/kmsg, $2: journald; the rest: the daemon's command line. journald opens
    /// /dev/kmsg before the mask (and keeps it), and ends with the daemon (--pdeathsig).
    /// </summary>
    private const string Script = """
        set -e
        mask=$1; journald=$2; shift 2
        mount -t tmpfs -o mode=0755 tmpfs /run
        mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal
        printf '[Journal]\nStorage=volatile\nReadKMsg=yes\nRateLimitBurst=0\nForwardToSyslog=no\nForwardToWall=no\nForwardToKMsg=no\nForwardToConsole=no\n' \
          > /run/systemd/journald.conf.d/errorwatch-test.conf
        SYSTEMD_LOG_TARGET=console setpriv --pdeathsig TERM "$journald" >/dev/null 2>&1 &
        pid=$!
        i=0
        until ls -l /proc/$pid/fd 2>/dev/null | grep -q /dev/kmsg && [ -S /run/systemd/journal/socket ]; do
          i=$((i + 1)); [ $i -lt 150 ] || { echo "journald did not start" >&2; exit 1; }; sleep 0.1
        done
        if [ "$mask" = 1 ]; then
          mknod /run/kmsg-masked c 0 0; chmod 0 /run/kmsg-masked; mount --bind /run/kmsg-masked /dev/kmsg
        fi
        exec "$@"
        """;

    [PrivateJournaldLoopFact]
    public void Without_kmsg_it_reads_the_journal_sleeps_while_nothing_is_logged_and_checks_an_xfs_shutdown_at_once() =>
        Run(maskKmsg: true, expected: "journal");

    [PrivateJournaldLoopFact]
    public void With_kmsg_readable_it_reads_kmsg() => Run(maskKmsg: false, expected: "/dev/kmsg");

    private void Run(bool maskKmsg, string expected)
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("klog");
        var psi = new ProcessStartInfo("unshare") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--mount", "--propagation", "private", "sh", "-c", Script, "sh", maskKmsg ? "1" : "0", JournaldFixture.Binary,
                     ErrorWatchBinary.Path, "run", "--output", "json", "--state-dir", Path.Combine(scratch.Path, "state"), "--journal", "no",
                     "--bus", "none", "--metrics-listen", "none", "--check-interval", "600", "-f", fs.MountPoint])
            psi.ArgumentList.Add(a);
        foreach (var inherited in new[] { "NOTIFY_SOCKET", "WATCHDOG_USEC", Daemon.Privileges.ReExecMarker })
            psi.Environment.Remove(inherited);
        using var daemon = Process.Start(psi)!;
        var stdout = new BlockingCollection<string>();
        var stderr = new StringBuilder();
        daemon.OutputDataReceived += (_, e) => { if (e.Data is not null) stdout.Add(e.Data); };
        daemon.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        string Log() { lock (stderr) return stderr.ToString(); }
        try
        {
            JsonElement Next(string type, TimeSpan timeout)
            {
                var clock = Stopwatch.StartNew();
                while (clock.Elapsed < timeout && stdout.TryTake(out var line, timeout - clock.Elapsed))
                {
                    var json = JsonDocument.Parse(line).RootElement.Clone();
                    if (json.GetProperty("type").GetString() == type)
                        return json;
                }
                throw new Xunit.Sdk.XunitException($"no {type} on stdout within {timeout.TotalSeconds} s:\n{Log()}");
            }

            // Said at the start: which source, and why not /dev/kmsg.
            var capabilities = Next("capabilities", TimeSpan.FromSeconds(30));
            Assert.Equal(expected, capabilities.GetProperty("kernel_log_source").GetString());
            var description = capabilities.GetProperty("kernel_log").GetString()!;
            if (maskKmsg)
                Assert.Contains("not read (cannot open /dev/kmsg: ", description);
            Assert.Contains($"kernel log from {expected}", Log());

            // Idle: the health thread wakes for nothing but kernel lines (the machine's: other tests make
            // some), whichever source it reads, with no timer due for 10 minutes.
            Thread.Sleep(2500); // the journal's backlog is read (1 s after the start), and its reader settled on the file being written
            var health = HealthThread(daemon.Id);
            using var kmsg = new KernelLogReader(KernelLogReader.StartAt.End);
            var before = VoluntarySwitches(daemon.Id, health);
            Thread.Sleep(3000);
            var wakeups = VoluntarySwitches(daemon.Id, health) - before;
            var kernelLines = kmsg.ReadAvailable(_ => { });
            output.WriteLine($"{expected}: the health thread woke {wakeups} times in 3 s while the kernel logged {kernelLines} lines");
            Assert.True(wakeups <= kernelLines + 2, $"the health thread woke {wakeups} times in 3 s while the kernel logged {kernelLines} lines");

            // The kernel logs the shutdown; only that can bring the check before the periodic one.
            var shutDown = Stopwatch.StartNew();
            fs.ShutDown();
            var report = Next("report", TimeSpan.FromSeconds(10));
            Assert.Equal(("xfs-health", "shutdown"), (report.GetProperty("source").GetString(), report.GetProperty("event").GetString()));
            var trigger = report.GetProperty("details").GetProperty("xfs-health").GetProperty("kernel_log_trigger").GetString();
            Assert.StartsWith($"XFS ({fs.KernelName}): ", trigger);
            output.WriteLine($"{expected}: shutdown -> report in {shutDown.Elapsed.TotalMilliseconds:0} ms, triggered by: {trigger}");
        }
        finally
        {
            // SIGTERM to the daemon (the unshare process after its execs); its journald follows it.
            OwnProcess.Stop(daemon);
        }
    }

    /// <summary>The errorwatch-health thread's id (its comm is cut to 15 bytes).</summary>
    private static string HealthThread(int pid)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
                if (File.ReadAllText(Path.Combine(task, "comm")).Trim() == "errorwatch-heal")
                    return Path.GetFileName(task);
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(5), "no errorwatch-health thread");
            Thread.Sleep(100);
        }
    }

    private static long VoluntarySwitches(int pid, string tid) =>
        long.Parse(File.ReadLines($"/proc/{pid}/task/{tid}/status").Single(l => l.StartsWith("voluntary_ctxt_switches:", StringComparison.Ordinal)).Split(':')[1].Trim());
}
