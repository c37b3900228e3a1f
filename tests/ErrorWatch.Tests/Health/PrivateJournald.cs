using System.Diagnostics;
using System.Text;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Interop;
using ErrorWatch.Tests.Journal;

namespace ErrorWatch.Tests.Health;

/// <summary>
/// A fact that needs a systemd-journald of its own reading the real /dev/kmsg (<see cref="PrivateJournald"/>):
/// root, the binary, unshare, and a /dev/kmsg the test may write to.
/// </summary>
public sealed class PrivateJournaldFactAttribute : FactAttribute
{
    public PrivateJournaldFactAttribute() => Skip = PrivateJournald.CannotRun();
}

/// <summary>The same, with loop devices for a scratch filesystem.</summary>
public sealed class PrivateJournaldLoopFactAttribute : FactAttribute
{
    public PrivateJournaldLoopFactAttribute() =>
        Skip = PrivateJournald.CannotRun() ?? (File.Exists("/dev/loop-control") ? null : "needs loop devices (/dev/loop-control is missing)");
}

/// <summary>
/// A systemd-journald of the test's own that reads the real /dev/kmsg, as a system's journald does:
/// started in a private mount namespace (unshare -m) whose /run is a tmpfs, so that it meets neither
/// the machine's journald nor <see cref="JournaldFixture"/>'s, with its volatile journal in a scratch
/// directory the test reads (<see cref="Directory"/>; /run/log/journal inside is bound to it). Its
/// configuration comes from a drop-in in that private /run: ReadKMsg=yes, no rate limit, nothing
/// forwarded (no wall messages). Started with <c>exec</c>, so the process is journald itself and is
/// stopped by its PID. Lines written to /dev/kmsg reach it as they reach the system's.
/// </summary>
public sealed class PrivateJournald : IDisposable
{
    private const string Script = """
        set -e
        mount -t tmpfs -o mode=0755 tmpfs /run
        mkdir -p /run/systemd/journal /run/systemd/journald.conf.d /run/log/journal
        mount --bind "$1" /run/log/journal
        printf '[Journal]\nStorage=volatile\nReadKMsg=%s\nRateLimitBurst=0\nForwardToSyslog=no\nForwardToWall=no\nForwardToKMsg=no\nForwardToConsole=no\n' "$3" \
          > /run/systemd/journald.conf.d/errorwatch-test.conf
        exec env SYSTEMD_LOG_TARGET=console "$2"
        """;

    private readonly string _root;
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    /// <param name="readKmsg">ReadKMsg=: false for a journald that stores no kernel lines (a container's).</param>
    public PrivateJournald(bool readKmsg = true)
    {
        _root = System.IO.Directory.CreateTempSubdirectory("errorwatch-journald-").FullName;
        var psi = new ProcessStartInfo("unshare") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in (string[])["--mount", "--propagation", "private", "sh", "-c", Script, "sh", _root, JournaldFixture.Binary, readKmsg ? "yes" : "no"])
            psi.ArgumentList.Add(a);
        foreach (var inherited in new[] { "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC" })
            psi.Environment.Remove(inherited);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => Capture(e.Data);
        _process.ErrorDataReceived += (_, e) => Capture(e.Data);
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        Directory = Path.Combine(_root, File.ReadAllText("/etc/machine-id").Trim());
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(ActiveFile))
        {
            if (_process.HasExited || deadline.Elapsed > TimeSpan.FromSeconds(15))
            {
                var why = _process.HasExited ? $"exited with {_process.ExitCode}" : "made no journal file within 15 s";
                Dispose();
                throw new InvalidOperationException($"private journald {why}:\n{Output}");
            }
            Thread.Sleep(50);
        }
    }

    /// <summary>Where its journal files are (what sd_journal_open_directory is given).</summary>
    public string Directory { get; }

    /// <summary>The file it writes.</summary>
    public string ActiveFile => Path.Combine(Directory, KernelJournalReader.ActiveFile);

    /// <summary>journald's PID (the unshare process after its execs).</summary>
    public int Pid => _process.Id;

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>Asks journald to rotate (SIGUSR2) and waits for the archived file.</summary>
    public void Rotate()
    {
        var archived = System.IO.Directory.GetFiles(Directory, "system@*.journal").Length;
        Assert.True(OwnProcess.Signal(Pid, 12), "SIGUSR2 to the private journald");
        var deadline = Stopwatch.StartNew();
        while (System.IO.Directory.GetFiles(Directory, "system@*.journal").Length == archived)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "journald did not rotate within 10 s:\n" + Output);
            Thread.Sleep(50);
        }
    }

    /// <summary>Why it cannot run here, or null.</summary>
    public static string? CannotRun()
    {
        if (Libc.GetEuid() != 0)
            return "needs root (a mount namespace, a journald, writing /dev/kmsg)";
        if (!File.Exists(JournaldFixture.Binary))
            return $"{JournaldFixture.Binary} is not installed";
        if (!File.Exists("/etc/machine-id"))
            return "/etc/machine-id (which journald needs) is missing";
        if (!File.Exists(KernelLogReader.DefaultPath))
            return "no /dev/kmsg (container without it)";
        if (File.Exists("/proc/sys/kernel/printk_devkmsg") && File.ReadAllText("/proc/sys/kernel/printk_devkmsg").Trim() == "off")
            return "kernel.printk_devkmsg=off drops writes to /dev/kmsg";
        return null;
    }

    private void Capture(string? line)
    {
        if (line is not null)
            lock (_output)
                _output.AppendLine(line);
    }

    public void Dispose()
    {
        OwnProcess.Stop(_process);
        // Its mounts were in its own namespace, gone with it; the files are in our scratch directory.
        try
        {
            System.IO.Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
