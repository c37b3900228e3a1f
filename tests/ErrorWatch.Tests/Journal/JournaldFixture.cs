using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ErrorWatch.Tests.Journal;

/// <summary>
/// A fact that needs a journald: skipped only when none runs and none can be started (not root, or
/// no systemd-journald binary), saying so. The fixture reuses a running journald, else starts one.
/// </summary>
public sealed class JournaldFactAttribute : FactAttribute
{
    public JournaldFactAttribute() => Skip = JournaldFixture.CannotRun();
}

/// <summary>
/// A journald for the tests. With systemd as PID 1 one already listens on
/// /run/systemd/journal/socket and is used as it is. Otherwise (containers, CI) systemd-journald is
/// started by hand as a child process: it needs root, /etc/machine-id (it names the journal
/// directory), and nothing else; it creates /run/systemd/journal/ and its sockets itself, runs in the
/// foreground, and, never having been asked to flush, writes to /run/log/journal/&lt;machine-id&gt;.
/// On dispose only the PID started here is stopped (SIGTERM, then SIGKILL), and the sockets and
/// directories it created are removed (journald leaves its sockets behind; a stale socket would make
/// sends fail with ECONNREFUSED instead of "no journal"). Set ERRORWATCH_KEEP_JOURNAL=1 to keep the
/// journal files for inspection.
/// </summary>
public sealed partial class JournaldFixture : IDisposable
{
    public const string Binary = "/usr/lib/systemd/systemd-journald";
    public const string SocketDirectory = "/run/systemd/journal";
    public const string Socket = SocketDirectory + "/socket";
    public const string VolatileDirectory = "/run/log/journal";

    private Process? _process;
    private readonly StringBuilder _output = new();
    private readonly HashSet<string> _socketDirectoryBefore = new();
    private readonly bool _socketDirectoryExisted;
    private readonly bool _volatileDirectoryExisted;
    private readonly string? _machineDirectory;
    private readonly bool _machineDirectoryExisted;

    /// <summary>True when a journald was already listening (it is left alone).</summary>
    public bool Reused { get; }

    /// <summary>PID of the journald started here, or null.</summary>
    public int? StartedPid => _process?.Id;

    public JournaldFixture()
    {
        if (IsListening())
        {
            Reused = true;
            return;
        }
        if (CannotStart() is not null)
            return; // the facts are skipped

        _socketDirectoryExisted = Directory.Exists(SocketDirectory);
        if (_socketDirectoryExisted)
            _socketDirectoryBefore.UnionWith(Directory.EnumerateFileSystemEntries(SocketDirectory));
        _volatileDirectoryExisted = Directory.Exists(VolatileDirectory);
        _machineDirectory = Path.Combine(VolatileDirectory, File.ReadAllText("/etc/machine-id").Trim());
        _machineDirectoryExisted = Directory.Exists(_machineDirectory);

        StartJournald();
    }

    private void StartJournald()
    {
        var start = new ProcessStartInfo(Binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        // Its own messages go to our pipe, not /dev/kmsg, which other tests read.
        start.Environment["SYSTEMD_LOG_TARGET"] = "console";
        foreach (var inherited in new[] { "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC" })
            start.Environment.Remove(inherited);
        var process = _process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => Capture(e.Data);
        process.ErrorDataReceived += (_, e) => Capture(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (!IsListening())
        {
            if (process.HasExited)
                throw new InvalidOperationException($"{Binary} exited with {process.ExitCode}:\n{Output}");
            if (deadline.Elapsed > TimeSpan.FromSeconds(15))
            {
                Dispose();
                throw new TimeoutException($"{Binary} (pid {process.Id}) did not listen on {Socket} within 15 s:\n{Output}");
            }
            Thread.Sleep(50);
        }
    }

    /// <summary>Why this run may not stop journald (it is not one the tests started), or null.</summary>
    public string? CannotRestart => _process is null
        ? Reused ? "journald here was not started by the tests; stopping it would disturb the machine" : "no journald"
        : null;

    /// <summary>Stops the journald the tests started (SIGTERM), leaving its socket file without a listener, as a crash would.</summary>
    public void StopJournald()
    {
        if (CannotRestart is { } why)
            throw new InvalidOperationException(why);
        OwnProcess.Stop(_process);
        _process = null;
    }

    /// <summary>Starts it again after <see cref="StopJournald"/>.</summary>
    public void RestartJournald()
    {
        if (_process is null && !Reused)
            StartJournald();
    }

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    private void Capture(string? line)
    {
        if (line is not null)
            lock (_output)
                _output.AppendLine(line);
    }

    /// <summary>Why the journald facts cannot run here, or null.</summary>
    public static string? CannotRun() => IsListening() ? null : CannotStart();

    private static string? CannotStart()
    {
        if (Interop.Libc.GetEuid() != 0)
            return "no journald listens and starting one needs root";
        if (!File.Exists(Binary))
            return $"no journald listens and {Binary} is not installed";
        if (!File.Exists("/etc/machine-id"))
            return "no journald listens and /etc/machine-id (which journald needs) is missing";
        return null;
    }

    /// <summary>Connecting a datagram socket fails with ECONNREFUSED when nobody is bound: a stale socket file is not a journald.</summary>
    public static bool IsListening()
    {
        if (!File.Exists(Socket))
            return false;
        try
        {
            using var socket = new System.Net.Sockets.Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint(Socket));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        if (Reused || CannotStart() is not null)
            return;
        // SIGTERM lets journald close its files cleanly.
        OwnProcess.Stop(_process);
        _process = null;

        if (Directory.Exists(SocketDirectory))
        {
            foreach (var entry in Directory.EnumerateFileSystemEntries(SocketDirectory))
                if (!_socketDirectoryBefore.Contains(entry))
                    Delete(entry);
            if (!_socketDirectoryExisted)
                Delete(SocketDirectory);
        }
        if (Environment.GetEnvironmentVariable("ERRORWATCH_KEEP_JOURNAL") != "1")
        {
            if (!_volatileDirectoryExisted)
                Delete(VolatileDirectory);
            else if (!_machineDirectoryExisted && _machineDirectory is not null)
                Delete(_machineDirectory);
        }
    }

    private static void Delete(string path)
    {
        if (Directory.Exists(path))
            Directory.Delete(path, recursive: true);
        else
            File.Delete(path);
    }
}

/// <summary>Reads entries back with journalctl.</summary>
internal static class Journalctl
{
    /// <summary>journalctl -o json (one object per line), --all so that values over 4096 bytes are not shown as null.</summary>
    public static List<JsonElement> Query(params string[] matches)
    {
        var (code, output, error) = Run(["-o", "json", "--all", "--no-pager", .. matches]);
        // 1 with "-- No entries --" is not an error.
        if (code != 0 && !string.IsNullOrWhiteSpace(error) && !error.Contains("No entries"))
            throw new InvalidOperationException($"journalctl {string.Join(' ', matches)} failed ({code}): {error}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.Clone())
            .ToList();
    }

    /// <summary>Polls until <paramref name="count"/> entries match (journald writes asynchronously), then returns what matches.</summary>
    public static List<JsonElement> WaitFor(int count, params string[] matches)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var found = Query(matches);
            if (found.Count >= count || deadline.Elapsed > TimeSpan.FromSeconds(10))
                return found;
            Thread.Sleep(100);
        }
    }

    public static (int Code, string Output, string Error) Run(string[] arguments, string file = "journalctl")
    {
        var start = new ProcessStartInfo(file) { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in arguments)
            start.ArgumentList.Add(argument);
        start.Environment["SYSTEMD_PAGER"] = "";
        start.Environment["SYSTEMD_COLORS"] = "0";
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }

    /// <summary>
    /// Every value of a field, as bytes. journalctl -o json writes a printable UTF-8 value as a string
    /// (newlines and tabs included), any other value (invalid UTF-8, control characters such as ESC)
    /// as an array of byte numbers, a repeated field as an array of those, and a missing one not at all.
    /// </summary>
    public static List<byte[]> Values(JsonElement entry, string name)
    {
        if (!entry.TryGetProperty(name, out var value))
            return [];
        if (value.ValueKind == JsonValueKind.Array && value.GetArrayLength() > 0 && value[0].ValueKind != JsonValueKind.Number)
            return value.EnumerateArray().Select(Bytes).ToList();
        return [Bytes(value)];
    }

    public static byte[] Bytes(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => Encoding.UTF8.GetBytes(value.GetString()!),
        JsonValueKind.Array => value.EnumerateArray().Select(b => b.GetByte()).ToArray(),
        _ => throw new InvalidOperationException($"unexpected journal value {value}"),
    };

    public static string Text(JsonElement entry, string name) =>
        Encoding.UTF8.GetString(Assert.Single(Values(entry, name)));
}
