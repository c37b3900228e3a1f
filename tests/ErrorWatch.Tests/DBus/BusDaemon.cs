using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Security;
using System.Text;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// A fact that needs a private system bus: skipped only where dbus-daemon is not installed or the
/// test is not root (it acts as root and as uid nobody on the bus), saying so. Other missing tools
/// (busctl, gdbus, setpriv, python3-dbus, polkitd) are not a reason to skip: the test command
/// installs them, and a test that cannot find them fails loudly.
/// </summary>
public sealed class BusFactAttribute : FactAttribute
{
    public BusFactAttribute()
    {
        if (BusDaemon.Binary is null)
            Skip = "needs dbus-daemon (package dbus)";
        else if (Interop.Libc.GetEuid() != 0)
            Skip = "needs root to own the service name and to call as uid nobody";
    }
}

/// <summary>
/// A private dbus-daemon that behaves like the system bus: <c>&lt;type&gt;system&lt;/type&gt;</c>,
/// EXTERNAL authentication only, the default policy of /usr/share/dbus-1/system.conf (no one
/// owns names or sends method calls unless a policy file allows it; signals and replies pass),
/// and an includedir holding a copy of deploy/dbus/io.github.errorwatch.ErrorWatch1.conf (and, on
/// request, polkit's own bus policy so a real polkitd can take its name). Nothing is activated:
/// there is no service directory. The socket lives in a 0755 directory under /tmp (not $TMPDIR,
/// which may be private to root) so uid nobody can connect. Only the PID started here is ever
/// signalled; dispose stops it and deletes the directory.
/// </summary>
public sealed partial class BusDaemon : IDisposable
{
    public static readonly string? Binary = new[] { "/usr/bin/dbus-daemon", "/bin/dbus-daemon" }.FirstOrDefault(File.Exists);

    public const string PolicyFileName = "io.github.errorwatch.ErrorWatch1.conf";
    public const string PolkitBusPolicy = "/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf";

    /// <summary>Mode 0755: other users (nobody, polkitd) may enter and read; only root writes.</summary>
    public static void MakeWorldReadable(string directory)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("the D-Bus tests run on Linux only");
        File.SetUnixFileMode(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
    }

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);

    private readonly StringBuilder _output = new();
    private Process? _process;

    /// <param name="extraPolicies">More bus policy files for the includedir (systemd's, for a stand-in systemd).</param>
    public BusDaemon(bool withPolkitPolicy = false, IReadOnlyList<string>? extraPolicies = null)
    {
        if (Binary is null)
            throw new InvalidOperationException("dbus-daemon is not installed (package dbus)");
        // A random name in /tmp: unguessable, so no other user can have prepared it.
        TempDirectory = Directory.CreateDirectory(Path.Combine("/tmp", "errorwatch-bus-" + Guid.NewGuid().ToString("N"))).FullName;
        try
        {
            MakeWorldReadable(TempDirectory);
            var policyDirectory = Directory.CreateDirectory(Path.Combine(TempDirectory, "system.d")).FullName;
            File.Copy(PolicyFile, Path.Combine(policyDirectory, PolicyFileName));
            if (withPolkitPolicy)
                File.Copy(PolkitBusPolicy, Path.Combine(policyDirectory, Path.GetFileName(PolkitBusPolicy)));
            foreach (var policy in extraPolicies ?? [])
                File.Copy(policy, Path.Combine(policyDirectory, Path.GetFileName(policy)));
            File.WriteAllText(ConfigPath, Configuration(SocketPath, policyDirectory));
            Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>deploy/dbus/io.github.errorwatch.ErrorWatch1.conf in this source tree.</summary>
    public static string PolicyFile => Path.Combine(ServicePaths.RepositoryRoot, "deploy", "dbus", PolicyFileName);

    /// <summary>The temporary directory holding the configuration, the policy copies and the socket.</summary>
    public string TempDirectory { get; }

    public string SocketPath => Path.Combine(TempDirectory, "system_bus_socket");

    /// <summary>The address to connect to (DBUS_SYSTEM_BUS_ADDRESS, busctl --address=, gdbus --address).</summary>
    public string Address => "unix:path=" + SocketPath;

    public string ConfigPath => Path.Combine(TempDirectory, "bus.conf");

    /// <summary>PID of the running dbus-daemon, or null when stopped.</summary>
    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    /// <summary>What dbus-daemon wrote to stderr (policy rejections, warnings about included files).</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>
    /// Stops the daemon and starts a new one on the same socket path, as a system bus restart
    /// does: every connection is dropped, and clients must reconnect, re-own names and re-add
    /// matches. Returns once the new socket accepts connections. After <see cref="Stop"/> it
    /// brings the bus back, for tests of a bus that is away for a while.
    /// </summary>
    public void Restart()
    {
        Stop();
        Start();
    }

    /// <summary>SIGTERM to the PID started here (dbus-daemon then removes its socket), SIGKILL after 5 s.</summary>
    public void Stop()
    {
        OwnProcess.Stop(_process);
        _process = null;
    }

    public void Dispose()
    {
        Stop();
        if (Directory.Exists(TempDirectory))
            Directory.Delete(TempDirectory, recursive: true);
    }

    private void Start()
    {
        // A daemon killed with SIGKILL leaves its socket behind; connecting to it would fail with
        // ECONNREFUSED and make the readiness check below meaningless.
        File.Delete(SocketPath);
        var start = new ProcessStartInfo(Binary!)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in new[] { "--nofork", "--config-file=" + ConfigPath, "--print-address" })
            start.ArgumentList.Add(argument);
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + Binary);
        _process = process;
        process.ErrorDataReceived += (_, e) => Capture(e.Data);
        process.BeginErrorReadLine();

        // dbus-daemon prints the address once the configuration is read and the socket is bound.
        var addressLine = process.StandardOutput.ReadLineAsync();
        if (!addressLine.Wait(StartTimeout) || addressLine.Result is null)
        {
            process.WaitForExit(1000);
            var why = process.HasExited ? $"exited with {process.ExitCode}" : $"printed no address within {StartTimeout.TotalSeconds:0} s";
            Stop();
            throw new InvalidOperationException($"dbus-daemon --config-file={ConfigPath} {why}:\n{Output}");
        }
        if (!addressLine.Result.StartsWith(Address + ",", StringComparison.Ordinal))
            throw new InvalidOperationException($"dbus-daemon listens on {addressLine.Result}, expected {Address}");

        var deadline = Stopwatch.StartNew();
        while (!Accepts(SocketPath))
        {
            if (process.HasExited || deadline.Elapsed > StartTimeout)
                throw new InvalidOperationException($"dbus-daemon (pid {process.Id}) does not accept connections on {SocketPath}:\n{Output}");
            Thread.Sleep(20);
        }
    }

    private void Capture(string? line)
    {
        if (line is not null)
            lock (_output)
                _output.AppendLine(line);
    }

    private static bool Accepts(string socketPath)
    {
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(socketPath));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>
    /// The system bus configuration (/usr/share/dbus-1/system.conf) without what a test bus must
    /// not do: no &lt;user&gt; switch, fork, pid file, syslog, activation helper or service
    /// directories, and no includes from /etc (the machine's own policies stay out of the test).
    /// </summary>
    public static string Configuration(string socketPath, string policyDirectory) => $"""
        <!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
         "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
        <busconfig>
          <type>system</type>
          <auth>EXTERNAL</auth>
          <listen>unix:path={SecurityElement.Escape(socketPath)}</listen>

          <policy context="default">
            <allow user="*"/>
            <deny own="*"/>
            <deny send_type="method_call"/>
            <allow send_type="signal"/>
            <allow send_requested_reply="true" send_type="method_return"/>
            <allow send_requested_reply="true" send_type="error"/>
            <allow receive_type="method_call"/>
            <allow receive_type="method_return"/>
            <allow receive_type="error"/>
            <allow receive_type="signal"/>
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Containers1"/>
            <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
            <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
            <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.systemd1.Activator"/>
          </policy>

          <!-- root may monitor (busctl monitor, gdbus monitor) and read statistics, as on the system bus. -->
          <policy user="root">
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
            <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
          </policy>

          <includedir>{SecurityElement.Escape(policyDirectory)}</includedir>
        </busconfig>
        """;
}

/// <summary>
/// Who runs a bus client in a test: root (this process) or uid/gid 65534 (nobody/nogroup, no
/// supplementary groups) through setpriv, which the bus then sees as an unprivileged local user.
/// Programs run with an argument vector and a timeout (<see cref="Tool"/>).
/// </summary>
public sealed record BusCaller(string Name, int Uid)
{
    public static readonly BusCaller Root = new("root", 0);
    public static readonly BusCaller Nobody = new("nobody", 65534);

    /// <summary>
    /// The Debian python3, which has the dbus and gi modules (python3-dbus, python3-gi). Not
    /// "python3" from PATH: pyenv shims (/root/.pyenv/shims) come first there and lack them.
    /// </summary>
    public const string Python = "/usr/bin/python3";

    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public Tool.Result Run(string file, params string[] args) => Run(DefaultTimeout, file, args);

    public Tool.Result Run(TimeSpan timeout, string file, params string[] args) =>
        Uid == 0 ? Tool.RunWithTimeout(timeout, file, args) : Tool.RunWithTimeout(timeout, "setpriv", [.. SetprivArguments, file, .. args]);

    /// <summary>Starts a long-running client (e.g. a signal subscriber) as this caller; stdout and stderr redirected.</summary>
    public Process Start(IReadOnlyDictionary<string, string>? environment, string file, params string[] args)
    {
        var start = new ProcessStartInfo(Uid == 0 ? file : "setpriv")
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            // nobody may not be able to enter the test's working directory.
            WorkingDirectory = "/",
        };
        foreach (var argument in Uid == 0 ? args : [.. SetprivArguments, file, .. args])
            start.ArgumentList.Add(argument);
        foreach (var (name, value) in environment ?? new Dictionary<string, string>())
            start.Environment[name] = value;
        return Process.Start(start) ?? throw new InvalidOperationException("cannot start " + file);
    }

    private string[] SetprivArguments => [$"--reuid={Uid}", $"--regid={Uid}", "--clear-groups"];

    public override string ToString() => Name;
}
