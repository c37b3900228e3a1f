using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace ErrorWatch.Tests.Service;

/// <summary>
/// Tests that change the process's native environment ($NOTIFY_SOCKET, $WATCHDOG_USEC) run alone:
/// setenv(3) is not safe while other threads call getenv(3).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NativeEnvironmentCollection
{
    public const string Name = "Native environment";
}

/// <summary>
/// Sets variables in the C environment (getenv(3): libsystemd, the ErrorWatch process's children) and
/// in .NET's managed copy of it (Environment: the host's SystemdNotifier, the watchdog interval), and
/// restores both on dispose. Environment.SetEnvironmentVariable alone only changes the managed copy.
/// </summary>
internal sealed partial class NativeEnvironment : IDisposable
{
    private readonly Dictionary<string, string?> _saved = new();

    public NativeEnvironment Set(string name, string? value)
    {
        if (!_saved.ContainsKey(name))
            _saved[name] = Get(name);
        if (value is null)
            UnsetEnv(name);
        else
            Assert.Equal(0, SetEnv(name, value, 1));
        Environment.SetEnvironmentVariable(name, value);
        return this;
    }

    public static unsafe string? Get(string name) => Marshal.PtrToStringUTF8((nint)Interop.Libc.GetEnv(name));

    public void Dispose()
    {
        foreach (var (name, value) in _saved)
        {
            if (value is null)
                UnsetEnv(name);
            else
                SetEnv(name, value, 1);
            Environment.SetEnvironmentVariable(name, value);
        }
    }

    [LibraryImport("libc", EntryPoint = "setenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int SetEnv(string name, string value, int overwrite);

    [LibraryImport("libc", EntryPoint = "unsetenv", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int UnsetEnv(string name);
}

/// <summary>A unix datagram socket standing in for systemd's notify socket: what sd_notify sends arrives here.</summary>
internal sealed class NotifySocket : IDisposable
{
    private readonly Socket _socket = new(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
    private readonly string? _file;

    /// <param name="abstractName">Bind in the abstract namespace ($NOTIFY_SOCKET=@name), as systemd does for user managers.</param>
    public NotifySocket(bool abstractName = false)
    {
        var name = $"errorwatch-notify-{Environment.ProcessId}-{Guid.NewGuid():N}";
        if (abstractName)
        {
            _socket.Bind(new UnixDomainSocketEndPoint("\0" + name));
            Address = "@" + name;
        }
        else
        {
            _file = Path.Combine(Path.GetTempPath(), name[..40] + ".sock");
            _socket.Bind(new UnixDomainSocketEndPoint(_file));
            Address = _file;
        }
    }

    /// <summary>The value for $NOTIFY_SOCKET.</summary>
    public string Address { get; }

    /// <summary>The next datagram, or null if none arrives within <paramref name="timeout"/>.</summary>
    /// <summary>
    /// The messages up to READY=1, joined (empty when none comes within 20 s): STATUS= goes out as the
    /// last stage starts, READY=1 (the host's systemd lifetime) right after it.
    /// </summary>
    public string UntilReady()
    {
        var seen = new System.Text.StringBuilder();
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (deadline.Elapsed < TimeSpan.FromSeconds(20) && Receive(TimeSpan.FromSeconds(20) - deadline.Elapsed) is { } message)
        {
            seen.Append(message).Append('\n');
            if (message.Contains("READY=1"))
                break;
        }
        return seen.ToString();
    }

    public string? Receive(TimeSpan timeout)
    {
        if (!_socket.Poll(timeout, SelectMode.SelectRead))
            return null;
        var buffer = new byte[4096];
        var n = _socket.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    /// <summary>Every datagram arriving within <paramref name="duration"/>, with when it arrived.</summary>
    public List<(TimeSpan At, string Message)> ReceiveFor(TimeSpan duration)
    {
        var clock = Stopwatch.StartNew();
        var messages = new List<(TimeSpan, string)>();
        while (duration - clock.Elapsed is { Ticks: > 0 } left)
        {
            // Computed once per turn: checking Elapsed and then reading it again could go negative.
            if (Receive(left) is { } message)
                messages.Add((clock.Elapsed, message));
        }
        return messages;
    }

    /// <summary>Throws away whatever has arrived so far.</summary>
    public void Drain()
    {
        while (Receive(TimeSpan.Zero) is not null)
        {
        }
    }

    public void Dispose()
    {
        _socket.Dispose();
        if (_file is not null)
            File.Delete(_file);
    }
}
