using System.CommandLine;
using System.Runtime.InteropServices;
using ErrorWatch.Configuration;
using ErrorWatch.Daemon;
using ErrorWatch.Decoding;
using ErrorWatch.Modules;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Publishing.Metrics;
using ErrorWatch.Publishing.Metrics.Prometheus;
using OpenTelemetry.Metrics;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Watching;
using Serilog.Core;
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

    /// <summary>Shared with list and hooks, which read the same store.</summary>
    public static readonly Option<string> StateDirectory = SettingOptions.Of<string>(SettingKeys.StoreDirectory);

    /// <summary>Shared with demo.</summary>
    public static readonly Option<string> LogLevel = SettingOptions.Of<string>(SettingKeys.LogLevel);

    public static Command Create()
    {
        var command = new Command("run", "Watch every ext4 and XFS filesystem and report each error the kernel announces")
        {
            Config, Output,
        };
        // The options that override errorwatch.conf, made from its key table.
        foreach (var (_, option) in SettingOptions.All)
            command.Options.Add(option);
        // AcceptOnlyFromAmong gives "Argument 'x' not recognized. Must be one of: ..." instead of a crash on a missing value.
        Output.AcceptOnlyFromAmong("auto", "text", "json", "none");
        command.SetAction(parse => Execute(parse));
        return command;
    }

    public static readonly Option<string?> Config = new("--config", "-c")
    {
        Description = "Configuration file (default: $CONFIGURATION_DIRECTORY/errorwatch.conf or /etc/errorwatch/errorwatch.conf, plus its .conf.d/ drop-ins); command-line options override it",
    };

    private static int Execute(ParseResult parse)
    {
        // The configuration first: a bad file is a clear error and a non-zero exit, before anything starts.
        var configPath = parse.GetValue(Config);
        var settings = ConfigurationLoader.Load(configPath, out var problems);
        if (problems.Count > 0)
        {
            foreach (var problem in problems)
                Console.Error.WriteLine($"errorwatch: {problem}");
            Console.Error.WriteLine($"errorwatch: not starting: {problems.Count} configuration problem(s); check with 'errorwatch check-config'");
            return 1;
        }
        settings = WithCommandLine(settings, parse);
        // Before anything is opened: this may execute the program again, which returns here in the new image.
        var privileges = Privileges.Shed(Privileges.Needed(settings));
        // What it creates names files (the store, the baseline, hooks/runs.log, a hook's report): private
        // whatever umask it inherits. The unit sets UMask=0077; sudo, a container or nohup pass 0022.
        // Hooks inherit it too, as they do under the unit.
        Interop.Libc.Umask(0x3F); // 0077

        var level = new LoggingLevelSwitch(settings.Log.Level);
        var journal = new SdJournal();
        var log = Logging.Create(level, journal);
        if (Interop.Libc.GetEuid() != 0)
            log.Warning("Not running as root: FAN_FS_ERROR marks need CAP_SYS_ADMIN, path resolution CAP_DAC_READ_SEARCH");
        if (privileges.Problem is { } notDropped)
            log.Warning("Capabilities: {Problem}; going on with them", notDropped);
        log.Information("Capabilities kept: {Capabilities}{How}", privileges.Held.ToString(),
            privileges.ReExecuted ? " (the others dropped by executing errorwatch again at startup)" : "");
        if (settings.Files.Count > 0)
            log.Information("Configuration from {Files}", string.Join(", ", settings.Files));
        var service = ServiceManager.Detect(log);

        var output = parse.GetValue(Output)!;
        if (output == "auto")
            output = Console.IsOutputRedirected ? "none" : "text";
        var stdout = Console.OpenStandardOutput();
        var json = output == "json" ? new JsonLinesSink(stdout) : null;
        var sinks = new List<IReportSink>();
        // D-Bus first: its Publish only hands the report to the bus thread, which then sends the
        // signal while the journal write below runs (measured: benchmarks/run-latency.sh).
        var bus = BusFor(settings, log);
        if (bus is not null)
            sinks.Add(bus);
        var journalSink = JournalFor(settings.Journal, journal, output != "none", log);
        if (journalSink is not null)
            sinks.Add(journalSink);
        if (json is not null)
            sinks.Add(json);
        else if (output == "text")
            sinks.Add(new TextSink(Console.Out));
        ErrorWatchDaemon? running = null;
        using var metrics = new ErrorWatchMetrics(() => running?.Ledger.WatchedStatus() ?? [], () => running?.EventsRead ?? 0);
        sinks.Add(metrics);
        using var telemetry = TelemetryFor(settings, log, out var endpoint);
        if (telemetry?.ReportLog is { } otlpLogs)
            sinks.Add(otlpLogs);
        using var hooks = new Recovery.HookSink(settings.Hooks, settings.Store.Directory, journal, log);
        hooks.Ran += metrics.HookRan;
        sinks.Add(hooks);

        using var stop = new CancellationTokenSource();
        void Stop()
        {
            service.Stopping();
            hooks.BeginStop();
            stop.Cancel();
        }
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; Stop(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; Stop(); });

        ErrorWatchDaemon daemon;
        try
        {
            daemon = new ErrorWatchDaemon(ToDaemonOptions(settings), FilesystemModules.CreateDefault(), sinks, log);
        }
        catch (IOException e)
        {
            log.Fatal("Cannot start: {Reason}", e.Message);
            (log as IDisposable)?.Dispose();
            return 1;
        }
        using var _ = daemon;
        running = daemon;
        using var busLifetime = bus;
        bus?.Attach(daemon);
        // SIGHUP: read the configuration again; a bad file keeps the old one. Started under nohup (or by
        // anything that ignores SIGHUP) the signal arrives ignored, and the runtime leaves an ignored signal
        // alone: reload would silently do nothing. Its default is restored for the instant until the handler is in.
        var sighupWasIgnored = Interop.Libc.IsIgnored(Interop.Libc.SIGHUP);
        if (sighupWasIgnored)
            Interop.Libc.Signal(Interop.Libc.SIGHUP, Interop.Libc.SIG_DFL);
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            settings = Reload(settings, configPath, parse, daemon, hooks, level, service, log);
        });
        if (sighupWasIgnored)
            log.Information("SIGHUP was ignored when this started (nohup?); it reloads the configuration all the same");
        var capabilities = daemon.Start();
        if (json is not null)
            json.WriteObject(capabilities.WriteJson);
        else if (output == "text")
            Console.Out.Write(capabilities.ToText());
        Console.Out.Flush();
        if (bus is not null)
        {
            bus.KernelSupportsFsError = capabilities.FsErrorMarksAccepted;
            // A short wait, so that READY=1 normally means "on the bus" too; never a condition for it.
            bus.Start(TimeSpan.FromSeconds(1));
        }

        hooks.Start();
        // Marks are placed and the outputs are up: only now is the service ready.
        service.Ready(StatusLine(daemon));
        using var watchdog = new Watchdog(service, LoopHeartbeat.AllAlive(TimeSpan.FromSeconds(10), [.. daemon.Heartbeats]), log);
        watchdog.Start();
        // STATUS= follows the counts, at most once a second and only when reports come: nothing
        // here wakes an idle daemon (storm and outage summaries have the journal sink's own timer).
        var status = new ServiceStatus(() => StatusLine(daemon), service.Status);
        daemon.ReportDone = (_, seconds) =>
        {
            metrics.ReportDone(seconds);
            status.Changed();
        };

        daemon.RunAsync(stop.Token).GetAwaiter().GetResult();
        status.Dispose();
        watchdog.Stop();
        bus?.Stop(TimeSpan.FromMilliseconds(300));
        hooks.Stop(TimeSpan.FromMilliseconds(300));
        endpoint?.Dispose();
        telemetry?.Shutdown(TimeSpan.FromMilliseconds(300));
        journalSink?.Flush();
        journalSink?.Dispose();
        (log as IDisposable)?.Dispose();
        return 0;
    }

    /// <summary>The D-Bus service, unless turned off or libsystemd (sd-bus) is missing (said once, not fatal).</summary>
    private static BusService? BusFor(ErrorWatchSettings settings, Serilog.ILogger log)
    {
        if (settings.DBus.Bus == "none")
            return null;
        if (!Interop.SdBus.TryLoad(out var problem))
        {
            log.Warning("No D-Bus service: {Problem}; reports still go to the store and the other outputs", problem);
            return null;
        }
        return new BusService(new BusOptions { Bus = settings.DBus.Bus, SignalPaths = settings.DBus.SignalPaths }, settings.Store.Directory, log);
    }

    /// <summary>
    /// The MeterProvider with its readers: the Prometheus endpoint unless Listen=none, OTLP when
    /// configured. An endpoint that cannot listen is an error in the log, never a reason to stop
    /// watching filesystems. With neither, there is no MeterProvider at all (the meter's instruments
    /// are then no-ops): the OpenTelemetry SDK and Kestrel are never started (docs/performance.md,
    /// footprint).
    /// </summary>
    private static Telemetry? TelemetryFor(ErrorWatchSettings settings, Serilog.ILogger log, out MetricsEndpoint? endpoint)
    {
        var options = new TelemetryOptions
        {
            Listen = settings.Metrics.Listen,
            OtlpEndpoint = settings.OpenTelemetry.Endpoint,
            OtlpProtocol = settings.OpenTelemetry.Protocol,
            OtlpHeaders = settings.OpenTelemetry.Headers,
            OtlpInterval = settings.OpenTelemetry.Interval,
        };
        endpoint = null;
        if (options.Listen.Count == 0 && !options.PushesOtlp)
            return null;
        PrometheusExporter? exporter = options.Listen.Count > 0 ? new PrometheusExporter() : null;
        var telemetry = new Telemetry(options, log, builder =>
        {
            if (exporter is not null)
                builder.AddPrometheusExporter(exporter);
        });
        if (exporter is not null)
        {
            try
            {
                endpoint = new MetricsEndpoint(exporter, options.Listen, log);
                endpoint.Start();
            }
            catch (MetricsEndpointException e)
            {
                log.Error("No Prometheus endpoint: {Reason}; detection, storage and the other outputs go on", e.Message);
                endpoint?.Dispose();
                endpoint = null;
            }
        }
        return telemetry;
    }

    private static string StatusLine(ErrorWatchDaemon daemon) =>
        $"Watching {daemon.WatchedCount} filesystem(s); {daemon.ReportsPublished} report(s) so far";

    /// <summary>Options given on the command line win over the configuration file.</summary>
    private static ErrorWatchSettings WithCommandLine(ErrorWatchSettings s, ParseResult parse) => SettingOptions.Override(s, parse);

    internal static DaemonOptions ToDaemonOptions(ErrorWatchSettings s) => new()
    {
        Watch = WatchOf(s),
        ResolvePaths = s.Watch.ResolvePaths,
        FanotifyMountEvents = s.Watch.MountTracking == MountTrackingMode.Auto,
        MountSource = s.Watch.MountSource,
        RescanInterval = s.Watch.RescanInterval,
        StateDirectory = s.Store.Directory,
        PriorityBoost = s.Watch.PriorityBoost,
        Store = new Store.StoreOptions { MaxReports = s.Store.MaxReports, MaxAge = s.Store.MaxAge },
        Health = new Health.HealthOptions
        {
            CheckInterval = s.Health.CheckInterval,
            KernelLog = s.Health.KernelLog,
            XfsHealthMonitor = s.Health.XfsHealthMonitor,
            XfsScanLimit = s.Health.XfsScanLimit,
        },
    };

    private static WatchOptions WatchOf(ErrorWatchSettings s) => new()
    {
        FsTypes = [.. s.Watch.Types],
        Include = [.. s.Watch.Filesystems],
        Exclude = [.. s.Watch.Exclude],
    };

    /// <summary>
    /// SIGHUP. The log level, the choice of filesystems (newly excluded ones are unwatched, newly
    /// included ones marked) and the hooks apply at once; every key <see cref="SettingKeys"/> does
    /// not mark reloadable is named as taking effect at restart.
    /// </summary>
    private static ErrorWatchSettings Reload(ErrorWatchSettings current, string? path, ParseResult parse, ErrorWatchDaemon daemon,
        Recovery.HookSink hooks, LoggingLevelSwitch level, IServiceManager service, Serilog.ILogger log)
    {
        service.Reloading();
        try
        {
            var fresh = ConfigurationLoader.Load(path, out var problems);
            if (problems.Count > 0)
            {
                foreach (var problem in problems)
                    log.Error("Configuration reload: {Problem}", problem.ToString());
                log.Error("Configuration reload refused ({Count} problem(s)); keeping the running configuration", problems.Count);
                return current;
            }
            fresh = WithCommandLine(fresh, parse);
            level.MinimumLevel = fresh.Log.Level;
            // Always: a reload decides again for every filesystem (docs/configuration.md), changed lists or not.
            daemon.Inventory.Options = WatchOf(fresh);
            daemon.Inventory.Reconcile();
            if (!fresh.Hooks.Equals(current.Hooks))
                hooks.Reload(fresh.Hooks);
            // What the table says a reload does not apply is named, to take effect at restart.
            var later = SettingKeys.All.Where(k => !k.Reloadable && k.Differs(fresh, current)).Select(k => k.ToString()).ToList();
            log.Information("Configuration reloaded; watching {Count} filesystem(s){Later}", daemon.WatchedCount,
                later.Count == 0 ? "" : "; changes to " + string.Join(", ", later) + " take effect at restart");
            return fresh;
        }
        finally
        {
            service.Ready(StatusLine(daemon));
        }
    }

    /// <summary>
    /// journald by default whenever its socket exists. Without it, "auto" still uses the sink (its
    /// fallback prints to stderr with a one-time notice) unless stdout already shows the reports.
    /// </summary>
    private static JournalSink? JournalFor(JournalSettings settings, SdJournal journal, bool stdoutShowsReports, Serilog.ILogger log)
    {
        if (settings.Enabled == JournalMode.No)
            return null;
        if (settings.Enabled == JournalMode.Auto && !journal.IsAvailable && stdoutShowsReports)
        {
            log.Information("journald is not reachable ({Reason}); reports go to stdout", journal.UnavailableReason);
            return null;
        }
        return new JournalSink(journal) { MaxEntriesPerInterval = settings.MaxEntriesPerInterval, Interval = settings.Interval };
    }
}
