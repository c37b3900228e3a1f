using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using ErrorWatch.Cli.Demo;

namespace ErrorWatch.Tests.Install;

/// <summary>
/// A Debian system booted with <c>systemd-nspawn -b</c>: systemd as PID 1 with its own journald and
/// system bus, on an overlay over the cached debootstrap root (so a run never changes the cache and
/// runs never see each other's changes). Commands run inside with <c>nsenter</c> into the
/// container's namespaces, since the host has no machined (and no systemd as PID 1) to ask.
/// Dispose halts the container, stops it by PID if it will not halt, unmounts and deletes the copy.
/// </summary>
/// <remarks>
/// The flags, and why each is needed on a host whose PID 1 is not systemd (docs/operations.md has the
/// same list for people running it by hand):
/// <list type="bullet">
/// <item><c>--register=no</c>, and <c>--keep-unit</c> where PID 1 is not systemd: otherwise nspawn asks
/// the host's systemd (over a system bus such a host does not have) to register the machine and to
/// make a scope for it, and fails with "Failed to open system bus". With them it stays in the test's
/// own cgroup; this host's hybrid cgroup hierarchy (v1 controllers, cgroup2 at
/// /sys/fs/cgroup/unified) is handed to the container as is, which systemd 252 inside accepts. On a
/// host run by systemd, only <c>--register=no</c> is given and systemd makes the scope.</item>
/// <item><c>--private-network</c>: the container gets only its own loopback, so the metrics endpoint
/// on 127.0.0.1:9464 cannot collide with anything on the host and no traffic leaves it.</item>
/// <item><c>--system-call-filter='fanotify_init fanotify_mark open_by_handle_at'</c>: nspawn's own
/// seccomp allow-list answers those with EPERM, and the daemon would report "not permitted to create a
/// fanotify group". No <c>--private-users</c>: the marks need CAP_SYS_ADMIN in the initial user
/// namespace, which nspawn's default capability set keeps.</item>
/// <item><c>--bind-ro=/sys/fs/ext4</c>: nspawn mounts only block, bus, class, dev, devices and kernel
/// of sysfs, so ext4's errors_count and error fields would be missing.</item>
/// <item><c>--bind-ro=/dev/kmsg --capability=CAP_SYSLOG</c>: a real host has a kernel log, which its
/// journald reads and whose lines the service (ProtectKernelLogs=yes: no /dev/kmsg of its own) reads
/// from the journal to check at once; nspawn gives the container's journald neither the device nor
/// the capability.</item>
/// <item><c>--bind=&lt;scratch mount&gt;:/mnt/scratch --bind=/dev/loopN</c>: the test's scratch ext4
/// and its device node (the daemon reads the on-disk superblock's error behaviour from it).</item>
/// <item><c>--console=pipe</c>: no terminal; the boot messages go to the log kept for failures.</item>
/// </list>
/// </remarks>
public sealed partial class NspawnMachine : IDisposable
{
    private const string Path = "/usr/sbin:/usr/bin:/sbin:/bin";
    private readonly string _dir;
    private readonly string _root;
    private readonly StringBuilder _console = new();
    private Process? _nspawn;
    private bool _mounted;
    private bool _disposed;

    private NspawnMachine(string name, string dir)
    {
        Name = name;
        _dir = dir;
        _root = System.IO.Path.Combine(dir, "root");
    }

    public string Name { get; }

    /// <summary>The container's root as the host sees it (the overlay; writes show inside at once).</summary>
    public string Root => _root;

    /// <summary>The container's PID 1 (systemd), as a host PID.</summary>
    public int Leader { get; private set; }

    /// <summary>Boot messages and anything nspawn said, for failure messages.</summary>
    public string Console
    {
        get
        {
            lock (_console)
                return _console.ToString();
        }
    }

    /// <summary>Boots <paramref name="lowerRoot"/> (never written to) and waits until systemd says the system is running.</summary>
    public static NspawnMachine Boot(string lowerRoot, IEnumerable<string> nspawnArguments, TimeSpan timeout)
    {
        var dir = Directory.CreateTempSubdirectory("errorwatch-nspawn-").FullName;
        var machine = new NspawnMachine("errorwatch-test-" + System.IO.Path.GetFileName(dir).Split('-')[^1].ToLowerInvariant(), dir);
        try
        {
            machine.Start(lowerRoot, nspawnArguments, timeout);
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    private void Start(string lowerRoot, IEnumerable<string> nspawnArguments, TimeSpan timeout)
    {
        var upper = System.IO.Path.Combine(_dir, "upper");
        var work = System.IO.Path.Combine(_dir, "work");
        foreach (var d in new[] { upper, work, _root })
            Directory.CreateDirectory(d);
        Tool.Check("mount", "-t", "overlay", "overlay", "-o", $"lowerdir={lowerRoot},upperdir={upper},workdir={work}", _root);
        _mounted = true;

        var psi = new ProcessStartInfo("systemd-nspawn")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        // Where systemd is PID 1 it makes the container a scope of its own; elsewhere nspawn stays in ours.
        var keepUnit = Directory.Exists("/run/systemd/system") ? Array.Empty<string>() : ["--keep-unit"];
        foreach (var a in (string[])["--boot", "--directory", _root, "--machine", Name, "--register=no", .. keepUnit,
                     "--private-network", "--console=pipe", "--system-call-filter=fanotify_init fanotify_mark open_by_handle_at",
                     "--bind-ro=/sys/fs/ext4", "--bind-ro=/dev/kmsg", "--capability=CAP_SYSLOG", .. nspawnArguments])
            psi.ArgumentList.Add(a);
        psi.Environment["SYSTEMD_COLORS"] = "0";
        _nspawn = Process.Start(psi) ?? throw new InvalidOperationException("cannot start systemd-nspawn");
        _nspawn.OutputDataReceived += (_, e) => Append(e.Data);
        _nspawn.ErrorDataReceived += (_, e) => Append(e.Data);
        _nspawn.BeginOutputReadLine();
        _nspawn.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + timeout;
        // The leader is nspawn's child once it has exec'd systemd (before that, it is still nspawn
        // setting up the namespaces, and entering them would give a half-made root).
        while (Leader == 0)
        {
            if (_nspawn.HasExited)
                throw new InvalidOperationException($"systemd-nspawn exited ({_nspawn.ExitCode}) before booting:\n{Console}");
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"no systemd in the container after {timeout.TotalSeconds:0} s:\n{Console}");
            Leader = ChildRunning(_nspawn.Id, "systemd");
            if (Leader == 0)
                Thread.Sleep(100);
        }
        // systemctl cannot reach PID 1 until it has set up its private socket: retry until then.
        string state;
        while (true)
        {
            var r = Exec(TimeSpan.FromSeconds(Math.Max(1, (deadline - DateTime.UtcNow).TotalSeconds)), "systemctl", "is-system-running", "--wait");
            state = r.StdOut.Trim();
            if (state is "running" or "degraded" || DateTime.UtcNow > deadline)
                break;
            Thread.Sleep(200);
        }
        if (state != "running")
            throw new InvalidOperationException($"the container's systemd says '{state}', not running:\n"
                + Exec(TimeSpan.FromSeconds(20), "systemctl", "--failed", "--no-pager").StdOut + Console);
    }

    private void Append(string? line)
    {
        if (line is null)
            return;
        lock (_console)
        {
            if (_console.Length < 256 * 1024)
                _console.Append(line).Append('\n');
        }
    }

    /// <summary>A child of <paramref name="parent"/> whose command is <paramref name="comm"/>, or 0.</summary>
    private static int ChildRunning(int parent, string comm)
    {
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                var stat = File.ReadAllText(System.IO.Path.Combine(dir, "stat"));
                // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
                var close = stat.LastIndexOf(')');
                var fields = stat[(close + 2)..].Split(' ');
                if (int.Parse(fields[1]) == parent && stat[(stat.IndexOf('(') + 1)..close] == comm)
                    return pid;
            }
            catch (IOException)
            {
            }
        }
        return 0;
    }

    /// <summary>The nsenter command line that runs <paramref name="command"/> inside, in a clean environment.</summary>
    private string[] Inside(bool fork, string[] command) =>
        ["--target", Leader.ToString(System.Globalization.CultureInfo.InvariantCulture), "--all", .. fork ? Array.Empty<string>() : ["--no-fork"],
         "env", "-i", "PATH=" + Path, "LANG=C.UTF-8", "SYSTEMD_COLORS=0", "SYSTEMD_PAGER=", "TERM=dumb", "DEBIAN_FRONTEND=noninteractive", .. command];

    /// <summary>Runs a command inside the container as root and waits for it.</summary>
    public Tool.Result Exec(TimeSpan timeout, params string[] command) =>
        Tool.RunWithTimeout(timeout, "nsenter", Inside(fork: true, command));

    public Tool.Result Exec(params string[] command) => Exec(TimeSpan.FromSeconds(60), command);

    /// <summary>Runs a command inside and fails with its output unless it exits 0; returns stdout.</summary>
    public string Check(params string[] command) => Check(TimeSpan.FromSeconds(60), command);

    public string Check(TimeSpan timeout, params string[] command)
    {
        var r = Exec(timeout, command);
        Assert.True(r.ExitCode == 0, $"in the container, '{string.Join(' ', command)}' exited {r.ExitCode}:\n{r.StdOut}{r.StdErr}");
        return r.StdOut;
    }

    /// <summary>
    /// Starts a long-running command inside, reading its stdout; stop it with <see cref="OwnProcess.Stop"/>.
    /// It runs without nsenter's fork (in the container's namespaces but the host's PID namespace), so
    /// the process returned is the command itself and can be ended by its PID.
    /// </summary>
    public BackgroundCommand StartBackground(params string[] command)
    {
        var psi = new ProcessStartInfo("nsenter")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in Inside(fork: false, command))
            psi.ArgumentList.Add(a);
        return new BackgroundCommand(Process.Start(psi) ?? throw new InvalidOperationException("cannot start nsenter"));
    }

    /// <summary>
    /// Starts a program of the host (not of the container's root) in the container's network
    /// namespace only, e.g. a receiver on its loopback that the service inside can reach; stop it
    /// with <see cref="BackgroundCommand.Dispose"/>.
    /// </summary>
    public BackgroundCommand StartInNetwork(params string[] command)
    {
        var psi = new ProcessStartInfo("nsenter")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["--target", Leader.ToString(System.Globalization.CultureInfo.InvariantCulture), "--net", .. command])
            psi.ArgumentList.Add(a);
        return new BackgroundCommand(Process.Start(psi) ?? throw new InvalidOperationException("cannot start nsenter"));
    }

    /// <summary>
    /// The host's PID of a process the container knows as <paramref name="containerPid"/> (the last
    /// NSpid of a process in the container's PID namespace), for host tools such as gdb; 0 if none.
    /// </summary>
    public int HostPid(int containerPid)
    {
        var ns = new FileInfo($"/proc/{Leader}/ns/pid").LinkTarget;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(System.IO.Path.GetFileName(dir), out var pid))
                continue;
            try
            {
                if (new FileInfo(System.IO.Path.Combine(dir, "ns", "pid")).LinkTarget != ns)
                    continue;
                var nspid = File.ReadLines(System.IO.Path.Combine(dir, "status")).FirstOrDefault(l => l.StartsWith("NSpid:", StringComparison.Ordinal));
                if (nspid?.Split('\t', StringSplitOptions.RemoveEmptyEntries)[^1] == containerPid.ToString(System.Globalization.CultureInfo.InvariantCulture))
                    return pid;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone meanwhile.
            }
        }
        return 0;
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_nspawn is not null)
        {
            // SIGTERM makes nspawn ask the container's systemd to halt; a second one ends it at once.
            if (!_nspawn.HasExited)
                _ = OwnProcess.Signal(_nspawn.Id, 15);
            if (!_nspawn.WaitForExit(30_000) && !_nspawn.HasExited)
            {
                _ = OwnProcess.Signal(_nspawn.Id, 15);
                if (!_nspawn.WaitForExit(5_000))
                {
                    if (Leader != 0)
                        _ = OwnProcess.Signal(Leader, 9); // PID 1 of the container: its whole PID namespace ends with it
                    _nspawn.Kill();
                    _nspawn.WaitForExit(10_000);
                }
            }
            _nspawn.Dispose();
        }
        if (_mounted)
        {
            if (Tool.Run("umount", _root).ExitCode != 0)
                Tool.Run("umount", "-l", _root);
        }
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
        // nspawn leaves its propagation directory behind when /run is not a tmpfs ("refusing to remove").
        try
        {
            Directory.Delete($"/run/systemd/nspawn/propagate/{Name}", recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}

/// <summary>A command running inside the container whose stdout is collected until it is stopped.</summary>
public sealed class BackgroundCommand : IDisposable
{
    private readonly StringBuilder _output = new();

    public BackgroundCommand(Process process)
    {
        Process = process;
        process.OutputDataReceived += (_, e) => Add(e.Data);
        process.ErrorDataReceived += (_, e) => Add(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public Process Process { get; }

    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    /// <summary>Waits until the output holds <paramref name="text"/>.</summary>
    public bool WaitFor(string text, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (Output.Contains(text, StringComparison.Ordinal))
                return true;
            Thread.Sleep(100);
        }
        return Output.Contains(text, StringComparison.Ordinal);
    }

    private void Add(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.Append(line).Append('\n');
    }

    public void Dispose() => OwnProcess.Stop(Process, TimeSpan.FromSeconds(2));
}
