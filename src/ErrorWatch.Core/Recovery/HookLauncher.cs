using System.Text;
using Serilog;

namespace ErrorWatch.Recovery;

/// <summary>Where the lines a hook writes go (the journal in the daemon, the terminal for errorwatch hooks test).</summary>
public interface IHookOutput
{
    /// <summary>Takes line <paramref name="number"/> (from 1) of a run; false when it was not kept (a per-run limit).</summary>
    bool Line(Hook hook, HookRun run, HookOutputLine line, long number, int? pid);
}

/// <summary>
/// Runs a hook: an executable through <see cref="HookProcess"/> (after checking its permissions
/// once more, right before it runs), or a unit through <see cref="UnitStarter"/>. An executable gets
/// a fixed minimal environment plus the run's ERRORWATCH_* variables, never the daemon's own
/// environment, and ERRORWATCH_REPORT_JSON naming a file (mode 0600) with the report, removed
/// when the run ends.
/// </summary>
public sealed class HookLauncher : IHookRunner, IDisposable
{
    /// <summary>What every executable hook gets besides ERRORWATCH_*: a sane PATH, a UTF-8 locale, root's home.</summary>
    public static readonly IReadOnlyList<string> FixedEnvironment =
        ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "HOME=/root"];

    private readonly string _reportDirectory;
    private readonly IHookOutput? _output;
    private readonly ILogger _log;
    private readonly Lazy<UnitStarter> _units;

    /// <param name="reportDirectory">Where ERRORWATCH_REPORT_JSON files are written (created 0700).</param>
    /// <param name="unitBus">The bus systemd is on for Unit= hooks: "system" or an address.</param>
    public HookLauncher(string reportDirectory, IHookOutput? output, ILogger log, string unitBus = "system")
    {
        _reportDirectory = reportDirectory;
        _output = output;
        _log = log;
        _units = new Lazy<UnitStarter>(() => new UnitStarter(unitBus, log));
    }

    /// <summary>From ErrorWatch's stop to SIGKILL for a hook still running (the whole stop must fit in 2 s).</summary>
    public TimeSpan StopGrace { get; init; } = TimeSpan.FromMilliseconds(300);

    public HookOutcome Run(Hook hook, HookRun run, Action<int> processStarted, CancellationToken stop)
    {
        if (hook.Kind == HookKind.Unit)
        {
            if (HookSpecifiers.ExpandUnit(hook.Unit, run.Latest, out var problem) is not { } unit)
                return new HookOutcome { Result = HookOutcome.Failure, Detail = $"no unit to start: {problem}", Started = DateTimeOffset.UtcNow, Unit = hook.Unit };
            return _units.Value.Start(unit, hook.Timeout, stop);
        }

        // Checked again now: the file or a directory above it may have changed since it was read.
        if (HookPermissions.Refusal(hook.Executable) is { } why)
        {
            _log.Error("Hook {Hook} refused, it will not run: {Reason}", hook.Name, why);
            return HookOutcome.Skip("refused: " + why, DateTimeOffset.UtcNow);
        }
        var json = WriteReport(run);
        try
        {
            var command = new HookCommand
            {
                Executable = hook.Executable,
                Arguments = [Encoding.UTF8.GetBytes(hook.Executable), .. hook.Arguments.Select(a => HookSpecifiers.ExpandArgument(a, run.Latest))],
                Environment = [.. FixedEnvironment.Select(Encoding.UTF8.GetBytes), .. run.Variables(json).Select(v => (byte[])[.. Encoding.ASCII.GetBytes(v.Name + "="), .. v.Value])],
                Timeout = hook.Timeout,
                KillGrace = hook.KillGrace,
            };
            int? pid = null;
            long lines = 0, dropped = 0;
            var outcome = HookProcess.Run(command, line =>
            {
                if (_output is not null && !_output.Line(hook, run, line, ++lines, pid))
                    dropped++;
            }, stop, StopGrace, started =>
            {
                pid = started;
                processStarted(started);
            });
            return outcome with { OutputLinesDropped = dropped };
        }
        finally
        {
            if (json is not null)
                TryDelete(json);
        }
    }

    /// <summary>The report as JSON in a file only root can read (paths in it may be private); null when it cannot be written.</summary>
    private string? WriteReport(HookRun run)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("hooks run on Linux only");
        try
        {
            AtomicFile.CreateDirectory(_reportDirectory);
            var path = Path.Combine(_reportDirectory, run.Id + ".json");
            using var stream = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = AtomicFile.PrivateFile,
            });
            stream.Write(run.Latest.ReportJson);
            stream.WriteByte((byte)'\n');
            return path;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Warning("Hook {Hook}: the report file for ERRORWATCH_REPORT_JSON cannot be written ({Reason}); the hook runs without it", run.Hook, e.Message);
            return null;
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    public void Dispose()
    {
        if (_units.IsValueCreated)
            _units.Value.Dispose();
    }
}
