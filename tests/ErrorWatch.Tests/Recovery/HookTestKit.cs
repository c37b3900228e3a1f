using System.Collections.Concurrent;
using System.Text;
using ErrorWatch.Configuration;
using ErrorWatch.Filesystems;
using ErrorWatch.Recovery;
using ErrorWatch.Reports;
using ErrorWatch.Tests.Journal;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace ErrorWatch.Tests.Recovery;

/// <summary>
/// A temporary directory for hooks: created by Directory.CreateTempSubdirectory (root, 0700) under
/// /tmp (root, 1777: sticky, which the safety check accepts), with hooks.d (0755) and out/ where the
/// test hooks write what they saw. Deleted on dispose.
/// </summary>
internal sealed class HookDirectory : IDisposable
{
    public HookDirectory()
    {
        Path = Directory.CreateTempSubdirectory("errorwatch-hooks-").FullName;
        Hooks = Directory.CreateDirectory(System.IO.Path.Combine(Path, "hooks.d")).FullName;
        Out = Directory.CreateDirectory(System.IO.Path.Combine(Path, "out")).FullName;
        State = Directory.CreateDirectory(System.IO.Path.Combine(Path, "state")).FullName;
        Chmod(Hooks, "755");
    }

    public string Path { get; }
    public string Hooks { get; }
    public string Out { get; }
    public string State { get; }

    /// <summary>Writes an executable script into hooks.d (or <paramref name="directory"/>) with the given octal mode.</summary>
    public string Write(string name, string script, string mode = "755", string? directory = null)
    {
        var file = System.IO.Path.Combine(directory ?? Hooks, name);
        File.WriteAllText(file, script.ReplaceLineEndings("\n"));
        Chmod(file, mode);
        return file;
    }

    /// <summary>A hook that records its environment (env -0: exact bytes) and report file per run, then optionally sleeps.</summary>
    public string Recorder(string name, double sleepSeconds = 0, string? directory = null) => Write(name, $"""
        #!/bin/sh
        out='{Out}'
        env -0 > "$out/{name}.$ERRORWATCH_RUN_ID.env"
        [ -n "$ERRORWATCH_REPORT_JSON" ] && cp "$ERRORWATCH_REPORT_JSON" "$out/{name}.$ERRORWATCH_RUN_ID.json"
        {(sleepSeconds > 0 ? $"sleep {sleepSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)}" : ":")}
        echo "ran {name} $ERRORWATCH_RUN_ID"
        """, directory: directory);

    /// <summary>The environments the recorder <paramref name="name"/> saw, one per run.</summary>
    public List<Dictionary<string, byte[]>> Runs(string name) =>
        Directory.EnumerateFiles(Out, name + ".*.env").Select(f => ParseEnv(File.ReadAllBytes(f))).ToList();

    public static Dictionary<string, byte[]> ParseEnv(byte[] bytes)
    {
        var env = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var entry in Split(bytes, 0))
        {
            var eq = Array.IndexOf(entry, (byte)'=');
            if (eq > 0)
                env[Encoding.ASCII.GetString(entry, 0, eq)] = entry[(eq + 1)..];
        }
        return env;
    }

    private static IEnumerable<byte[]> Split(byte[] bytes, byte separator)
    {
        var start = 0;
        for (var i = 0; i <= bytes.Length; i++)
        {
            if (i == bytes.Length || bytes[i] == separator)
            {
                if (i > start)
                    yield return bytes[start..i];
                start = i + 1;
            }
        }
    }

    public static void Chmod(string path, string octal)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("hooks are tested on Linux only");
        File.SetUnixFileMode(path, (UnixFileMode)Convert.ToInt32(octal, 8));
    }

    public HooksSettings Settings(params HookRuleSettings[] rules) => new()
    {
        Directory = Hooks,
        Rules = rules,
        Repeat = RepeatPolicy.Always,
        Timeout = TimeSpan.FromSeconds(30),
        KillGrace = TimeSpan.FromSeconds(1),
    };

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Log events kept for assertions (refusal lines).</summary>
internal sealed class LogCapture : ILogEventSink
{
    public ConcurrentQueue<LogEvent> Events { get; } = new();

    public ILogger Logger => new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(this).CreateLogger();

    public void Emit(LogEvent logEvent) => Events.Enqueue(logEvent);

    public IEnumerable<string> Messages(LogEventLevel atLeast = LogEventLevel.Verbose) =>
        Events.Where(e => e.Level >= atLeast).Select(e => e.RenderMessage());
}

/// <summary>A runner that records what it is asked to run; each run waits for the gate when one is set.</summary>
internal sealed class RecordingRunner : IHookRunner
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _runningPerLane = new();
    private int _running;

    public ConcurrentQueue<(Hook Hook, HookRun Run, DateTimeOffset At)> Runs { get; } = new();
    public SemaphoreSlim? Gate { get; set; }
    /// <summary>The clock whose time each run is recorded with.</summary>
    public TimeProvider Clock { get; init; } = TimeProvider.System;
    public int PeakRunning { get; private set; }
    public int PeakPerLane { get; private set; }

    public HookOutcome Run(Hook hook, HookRun run, Action<int> processStarted, CancellationToken stop)
    {
        var lane = hook.Name + "|" + run.Filesystem;
        lock (_lock)
        {
            PeakRunning = Math.Max(PeakRunning, ++_running);
            _runningPerLane[lane] = _runningPerLane.GetValueOrDefault(lane) + 1;
            PeakPerLane = Math.Max(PeakPerLane, _runningPerLane[lane]);
        }
        Runs.Enqueue((hook, run, Clock.GetUtcNow()));
        try
        {
            Gate?.Wait(stop);
        }
        catch (OperationCanceledException)
        {
        }
        finally
        {
            lock (_lock)
            {
                _running--;
                _runningPerLane[lane]--;
            }
        }
        return new HookOutcome { Result = HookOutcome.Success, Detail = "exited with 0", ExitCode = 0, Started = DateTimeOffset.UtcNow, Interrupted = stop.IsCancellationRequested };
    }
}

internal static class HookReports
{
    /// <summary>A corruption report on the test filesystem (or one of another UUID), at <paramref name="time"/>.</summary>
    public static CorruptionReport Corruption(string id, DateTimeOffset time, ulong count = 1, Guid? uuid = null, byte[]? path = null) =>
        JournalTestReports.Full(id, path: path) with
        {
            Time = time,
            Error = JournalTestReports.Error(JournalTestReports.EUCLEAN, count),
            Filesystem = JournalTestReports.Filesystem() with { Uuid = uuid ?? JournalTestReports.Uuid },
        };

    public static HookRuleSettings Rule(string name, string repeat = "always", string exec = "/bin/true") => new()
    {
        Name = name,
        Exec = [exec],
        Repeat = RepeatPolicy.TryParse(repeat, out var p, out var e) ? p : throw new ArgumentException(e),
        Origin = "test",
    };

    public static readonly ILogger Quiet = Logger.None;

    public static FsPath Mount(string path) => FsPath.FromString(path);
}

/// <summary>A fact that needs root (hooks must be root's, and only root can chown a file or run a command as someone else); skipped otherwise, saying why.</summary>
public sealed class RootFactAttribute : FactAttribute
{
    public RootFactAttribute(string why = "ErrorWatch runs only hooks owned by root")
    {
        if (Interop.Libc.GetEuid() != 0)
            Skip = "needs root: " + why;
    }
}
