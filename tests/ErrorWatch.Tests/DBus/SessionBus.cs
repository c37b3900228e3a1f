using System.ComponentModel;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// A private message bus: `dbus-daemon --session` listening on a socket in a temporary directory of
/// its own (never the machine's buses). Ready once the socket accepts connections; stopped by its
/// PID and its directory deleted on dispose.
/// </summary>
public sealed partial class SessionBus : IDisposable
{
    private readonly Process _daemon;
    private readonly StringBuilder _output = new();

    public SessionBus()
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("errorwatch-bus-").FullName;
        SocketPath = Path.Combine(Directory, "bus");
        Address = "unix:path=" + SocketPath;
        var psi = new ProcessStartInfo("dbus-daemon")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in (string[])["--session", "--nofork", "--address=" + Address, "--print-address"])
            psi.ArgumentList.Add(a);
        try
        {
            _daemon = Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            System.IO.Directory.Delete(Directory, recursive: true);
            throw new InvalidOperationException($"dbus-daemon could not be started ({e.Message}); install the dbus-daemon package", e);
        }
        // Drained as it comes, so the daemon never blocks on a full pipe ("Failed to set fd limit" and the like).
        _daemon.OutputDataReceived += (_, e) => Collect(e.Data);
        _daemon.ErrorDataReceived += (_, e) => Collect(e.Data);
        _daemon.BeginOutputReadLine();
        _daemon.BeginErrorReadLine();
        try
        {
            WaitUntilListening(TimeSpan.FromSeconds(10));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The bus address, unix:path=DIR/bus.</summary>
    public string Address { get; }
    public string SocketPath { get; }
    /// <summary>The daemon's own temporary directory (tests may put their helpers here).</summary>
    public string Directory { get; }
    public int Pid => _daemon.Id;

    /// <summary>What the daemon printed (its address, warnings), for failure messages.</summary>
    public string Output
    {
        get
        {
            lock (_output)
                return _output.ToString();
        }
    }

    private void Collect(string? line)
    {
        if (line is null)
            return;
        lock (_output)
            _output.AppendLine(line);
    }

    private void WaitUntilListening(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_daemon.HasExited)
                throw new InvalidOperationException($"dbus-daemon exited with {_daemon.ExitCode}: {Output}");
            if (File.Exists(SocketPath))
            {
                try
                {
                    using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                    socket.Connect(new UnixDomainSocketEndPoint(SocketPath));
                    return;
                }
                catch (SocketException)
                {
                }
            }
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"dbus-daemon did not listen on {SocketPath} within {timeout}: {Output}");
            Thread.Sleep(20);
        }
    }

    public void Dispose()
    {
        try
        {
            OwnProcess.Stop(_daemon, TimeSpan.FromSeconds(3));
        }
        finally
        {
            try
            {
                System.IO.Directory.Delete(Directory, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
