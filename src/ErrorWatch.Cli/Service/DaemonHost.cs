using System.CommandLine;
using ErrorWatch.Configuration;
using ErrorWatch.Daemon;
using ErrorWatch.Modules;
using ErrorWatch.Publishing;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Publishing.Metrics;
using ErrorWatch.Recovery;
using ErrorWatch.Watching;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Hosting.Systemd;
using Microsoft.Extensions.Logging;
using Serilog.Core;
using Serilog.Extensions.Logging;

namespace ErrorWatch.Cli.Service;

/// <summary>
/// The composition root of `errorwatch run`: the pipeline and its outputs as hosted services on the
/// .NET Generic Host (an empty builder: no configuration sources, no console logger), started in the
/// order listed and stopped in the reverse order, within 2 s of SIGTERM.
/// </summary>
internal static class DaemonHost
{
    public static int Run(ErrorWatchSettings settings, string? configPath, ParseResult parse, string output,
        LoggingLevelSwitch level, SdJournal journal, Serilog.ILogger log)
    {
        var notifier = new SystemdNotifier();
        var service = ServiceManager.Detect(notifier, log);

        // The outputs, each built once from the settings; D-Bus first in the list the pipeline publishes
        // to: its Publish only hands the report to the bus thread (benchmarks/run-latency.sh).
        var stdout = Console.OpenStandardOutput();
        var json = output == "json" ? new JsonLinesSink(stdout) : null;
        using var bus = BusFor(settings, log);
        using var journalSink = JournalFor(settings.Journal, journal, output != "none", log);
        ErrorWatchDaemon? running = null;
        using var metrics = new ErrorWatchMetrics(() => running?.Ledger.WatchedStatus() ?? [], () => running?.EventsRead ?? 0);
        using var metricsOutput = MetricsOutput.Create(TelemetryOf(settings), log);
        using var hooks = new HookSink(settings.Hooks, settings.Store.Directory, journal, log);
        hooks.Ran += metrics.HookRan;
        IReportSink?[] sinks = [bus, journalSink, json, output == "text" ? new TextSink(Console.Out) : null, metrics, metricsOutput?.Telemetry.ReportLog, hooks];

        ErrorWatchDaemon daemon;
        try
        {
            daemon = new ErrorWatchDaemon(ToDaemonOptions(settings), FilesystemModules.CreateDefault(), [.. sinks.OfType<IReportSink>()], log);
        }
        catch (IOException e)
        {
            log.Fatal("Cannot start: {Reason}", e.Message);
            return 1;
        }
        using var _ = daemon;
        running = daemon;
        bus?.Attach(daemon);
        using var watchdog = new Watchdog(service, LoopHeartbeat.AllAlive(TimeSpan.FromSeconds(10), [.. daemon.Heartbeats]), log);

        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.AddProvider(new SerilogLoggerProvider(log));
        builder.Services.Configure<HostOptions>(o =>
        {
            // SIGTERM to exit within 2 s: the stages stop one after the other, the pipeline's drain bounded by its own DrainTimeout.
            o.ShutdownTimeout = TimeSpan.FromSeconds(1.9);
            o.ServicesStartConcurrently = false;
            o.ServicesStopConcurrently = false;
        });
        // Under a service manager whenever $NOTIFY_SOCKET is set, whoever started us: READY=1 once every
        // stage has started, STOPPING=1 as the stop begins, SIGTERM stops.
        if (notifier.IsEnabled)
        {
            builder.Services.AddSingleton<ISystemdNotifier>(notifier);
            builder.Services.AddSingleton<IHostLifetime, SystemdLifetime>();
        }
        else
        {
            builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
        }
        builder.Services
            .AddStage(journalSink)      // flushed last, after everything the drain published
            .AddStage(metricsOutput)    // the Prometheus endpoint and OTLP pushes
            .AddStage(hooks)
            .AddStage(bus)
            .AddSingleton<IHostedService>(sp => new ConfigurationReload(settings, configPath, parse, daemon, hooks, level, service,
                sp.GetRequiredService<IHostApplicationLifetime>(), log)) // SIGHUP handled from before the marks
            .AddStage(daemon)           // the marks (before any output starts), then the decode thread
            .AddStage(new DaemonStatus(daemon, service, bus, metrics, json, output == "text"))
            .AddStage(watchdog);

        using var host = builder.Build();
        host.Run();
        return 0;
    }

    /// <summary>A stage the host starts and stops; the composition root keeps owning it (and disposes it).</summary>
    private static IServiceCollection AddStage(this IServiceCollection services, IHostedService? stage) =>
        stage is null ? services : services.AddSingleton(stage);

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

    private static TelemetryOptions TelemetryOf(ErrorWatchSettings settings) => new()
    {
        Listen = settings.Metrics.Listen,
        OtlpEndpoint = settings.OpenTelemetry.Endpoint,
        OtlpProtocol = settings.OpenTelemetry.Protocol,
        OtlpHeaders = settings.OpenTelemetry.Headers,
        OtlpInterval = settings.OpenTelemetry.Interval,
    };

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

    internal static WatchOptions WatchOf(ErrorWatchSettings s) => new()
    {
        FsTypes = [.. s.Watch.Types],
        Include = [.. s.Watch.Filesystems],
        Exclude = [.. s.Watch.Exclude],
    };
}
