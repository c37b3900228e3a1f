using System.CommandLine;
using System.Runtime.InteropServices;
using ErrorWatch.Daemon;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Watching;
using Serilog.Events;

namespace ErrorWatch.Cli;

/// <summary>errorwatch run: the foreground daemon.</summary>
internal static class RunCommand
{
    public static readonly Option<string> Output = new("--output", "-o")
    {
        Description = "Reports on stdout as well: text (one line each), json (one JSON object per line), none, or auto (text on a terminal, else none)",
        DefaultValueFactory = _ => "auto",
    };

    public static readonly Option<string> Journal = new("--journal")
    {
        Description = "Reports to journald: auto (when its socket exists, or as the fallback when nothing else shows them), yes, or no",
        DefaultValueFactory = _ => "auto",
    };

    public static readonly Option<string[]> Filesystem = new("--filesystem", "-f")
    {
        Description = "Watch only this filesystem (mount point, device, major:minor, UUID or label); repeatable",
        AllowMultipleArgumentsPerToken = false,
    };

    public static readonly Option<string[]> Exclude = new("--exclude")
    {
        Description = "Never watch this filesystem (mount point, device, major:minor, UUID or label); repeatable",
    };

    public static readonly Option<string[]> FsTypes = new("--fs-type")
    {
        Description = "Filesystem types to watch (default: ext4 ext3 ext2 xfs); others use the generic decoder",
    };

    public static readonly Option<bool> NoPaths = new("--no-paths")
    {
        Description = "Do not resolve file handles to paths (inode numbers only)",
    };

    public static readonly Option<string> MountTracking = new("--mount-tracking")
    {
        Description = "auto (FAN_MNT_ATTACH/DETACH on 6.15+, else mountinfo) or mountinfo",
        DefaultValueFactory = _ => "auto",
    };

    public static readonly Option<string> MountSourceOption = new("--mount-source")
    {
        Description = "auto (statmount/listmount on 6.8+, else mountinfo), statmount or mountinfo",
        DefaultValueFactory = _ => "auto",
    };

    public static readonly Option<string> StateDirectory = new("--state-dir")
    {
        Description = "Where what was already reported is remembered across restarts (default: $STATE_DIRECTORY, else /var/lib/errorwatch)",
        DefaultValueFactory = _ => Health.HealthBaseline.DefaultDirectory(),
    };

    public static readonly Option<double> CheckInterval = new("--check-interval")
    {
        Description = "Seconds between periodic checks of native health (ext4 state, XFS sick bits); notifications and kernel log lines trigger checks at once",
        DefaultValueFactory = _ => 30,
    };

    public static readonly Option<bool> NoKernelLog = new("--no-kernel-log")
    {
        Description = "Do not read /dev/kmsg for lines that call for a prompt health check",
    };

    public static readonly Option<bool> NoHealthMonitor = new("--no-xfs-health-monitor")
    {
        Description = "Poll XFS health bits even where XFS_IOC_HEALTH_MONITOR (Linux 7.0+) is available (leave it to xfs_healer)",
    };

    public static readonly Option<LogEventLevel> LogLevel = new("--log-level")
    {
        Description = "Minimum level of the daemon's own log on stderr",
        DefaultValueFactory = _ => LogEventLevel.Information,
    };

    public static Command Create()
    {
        var command = new Command("run", "Watch every ext4 and XFS filesystem and report each error the kernel announces")
        {
            Output, Journal, Filesystem, Exclude, FsTypes, NoPaths, MountTracking, MountSourceOption, StateDirectory, CheckInterval, NoKernelLog, NoHealthMonitor, LogLevel,
        };
        // AcceptOnlyFromAmong gives "Argument 'x' not recognized. Must be one of: ..." instead of a crash on a missing value.
        Output.AcceptOnlyFromAmong("auto", "text", "json", "none");
        Journal.AcceptOnlyFromAmong("auto", "yes", "no");
        MountTracking.AcceptOnlyFromAmong("auto", "mountinfo");
        MountSourceOption.AcceptOnlyFromAmong("auto", "statmount", "mountinfo");
        CheckInterval.Validators.Add(result =>
        {
            // Read the token, not the value: an unparseable one is the parser's error to report, and asking for its value throws.
            if (result.Tokens.Count == 0 || !double.TryParse(result.Tokens[^1].Value, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var seconds))
                return;
            if (seconds < 0.1 || seconds > 86400 || double.IsNaN(seconds))
                result.AddError($"--check-interval must be between 0.1 and 86400 seconds, not {seconds}");
        });
        command.SetAction(parse => Execute(parse));
        return command;
    }

    private static int Execute(ParseResult parse)
    {
        var journal = new SdJournal();
        var log = Logging.Create(parse.GetValue(LogLevel), journal);
        if (Interop.Libc.GetEuid() != 0)
            log.Warning("Not running as root: FAN_FS_ERROR marks need CAP_SYS_ADMIN, path resolution CAP_DAC_READ_SEARCH");

        var output = parse.GetValue(Output)!;
        if (output == "auto")
            output = Console.IsOutputRedirected ? "none" : "text";
        var stdout = Console.OpenStandardOutput();
        var json = output == "json" ? new JsonLinesSink(stdout) : null;
        var sinks = new List<IReportSink>();
        var journalSink = JournalFor(parse.GetValue(Journal)!, journal, output != "none", log);
        if (journalSink is not null)
            sinks.Add(journalSink);
        if (json is not null)
            sinks.Add(json);
        else if (output == "text")
            sinks.Add(new TextSink(Console.Out));

        var types = parse.GetValue(FsTypes) is { Length: > 0 } t ? t : WatchOptions.DefaultTypes;
        var options = new DaemonOptions
        {
            Watch = new WatchOptions
            {
                FsTypes = types,
                Include = parse.GetValue(Filesystem) ?? [],
                Exclude = parse.GetValue(Exclude) ?? [],
            },
            ResolvePaths = !parse.GetValue(NoPaths),
            FanotifyMountEvents = parse.GetValue(MountTracking) != "mountinfo",
            StateDirectory = parse.GetValue(StateDirectory),
            Health = new Health.HealthOptions
            {
                CheckInterval = TimeSpan.FromSeconds(parse.GetValue(CheckInterval)),
                KernelLog = !parse.GetValue(NoKernelLog),
                XfsHealthMonitor = !parse.GetValue(NoHealthMonitor),
            },
            MountSource = parse.GetValue(MountSourceOption) switch
            {
                "statmount" => MountSource.Statmount,
                "mountinfo" => MountSource.Mountinfo,
                _ => null,
            },
        };

        using var stop = new CancellationTokenSource();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Cancel(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Cancel(); });

        ErrorWatchDaemon daemon;
        try
        {
            daemon = new ErrorWatchDaemon(options, DecoderRegistry.CreateDefault(), sinks, log);
        }
        catch (IOException e)
        {
            log.Fatal("Cannot start: {Reason}", e.Message);
            (log as IDisposable)?.Dispose();
            return 1;
        }
        using var _ = daemon;
        var capabilities = daemon.Start();
        if (json is not null)
            json.WriteObject(capabilities.WriteJson);
        else if (output == "text")
            Console.Out.Write(capabilities.ToText());
        Console.Out.Flush();

        // Storm summaries are due at the end of each interval even when no report follows.
        using var tick = journalSink is null ? null : new Timer(_ => journalSink.Tick(), null, TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(5));
        daemon.RunAsync(stop.Token).GetAwaiter().GetResult();
        journalSink?.Flush();
        journalSink?.Dispose();
        (log as IDisposable)?.Dispose();
        return 0;
    }

    /// <summary>
    /// journald by default whenever its socket exists. Without it, "auto" still uses the sink (its
    /// fallback prints to stderr with a one-time notice) unless stdout already shows the reports.
    /// </summary>
    private static JournalSink? JournalFor(string mode, SdJournal journal, bool stdoutShowsReports, Serilog.ILogger log)
    {
        if (mode == "no")
            return null;
        if (mode == "auto" && !journal.IsAvailable && stdoutShowsReports)
        {
            log.Information("journald is not reachable ({Reason}); reports go to stdout", journal.UnavailableReason);
            return null;
        }
        return new JournalSink(journal);
    }
}
