using System.CommandLine;
using System.Runtime.InteropServices;
using ErrorWatch.Configuration;
using ErrorWatch.Daemon;
using ErrorWatch.Recovery;
using Microsoft.Extensions.Hosting;
using Serilog.Core;

namespace ErrorWatch.Cli.Service;

/// <summary>
/// SIGHUP reads the configuration again; a bad file keeps the old one. The log level, the choice of
/// filesystems (newly excluded ones are unwatched, newly included ones marked) and the hooks apply at
/// once; every key <see cref="SettingKeys"/> does not mark reloadable is named as taking effect at
/// restart. SIGINT stops the daemon under systemd as on a terminal (the systemd lifetime only takes SIGTERM).
/// </summary>
internal sealed class ConfigurationReload(ErrorWatchSettings settings, string? path, ParseResult parse, ErrorWatchDaemon daemon,
    HookSink hooks, LoggingLevelSwitch level, IServiceManager service, IHostApplicationLifetime lifetime, Serilog.ILogger log) : IHostedLifecycleService, IDisposable
{
    private ErrorWatchSettings _settings = settings;
    private PosixSignalRegistration? _sighup;
    private PosixSignalRegistration? _sigint;

    // Before the pipeline places its marks (registered ahead of it), as the handler always was.
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        // Started under nohup (or by anything that ignores SIGHUP) the signal arrives ignored, and the
        // runtime leaves an ignored signal alone: reload would silently do nothing. Its default is
        // restored for the instant until the handler is in.
        var sighupWasIgnored = Interop.Libc.IsIgnored(Interop.Libc.SIGHUP);
        if (sighupWasIgnored)
            Interop.Libc.Signal(Interop.Libc.SIGHUP, Interop.Libc.SIG_DFL);
        _sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, ctx =>
        {
            ctx.Cancel = true;
            _settings = Reload(_settings);
        });
        if (sighupWasIgnored)
            log.Information("SIGHUP was ignored when this started (nohup?); it reloads the configuration all the same");
        _sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx =>
        {
            ctx.Cancel = true;
            lifetime.StopApplication();
        });
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        Dispose();
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        _sighup?.Dispose();
        _sigint?.Dispose();
    }

    private ErrorWatchSettings Reload(ErrorWatchSettings current)
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
            fresh = SettingOptions.Override(fresh, parse);
            level.MinimumLevel = fresh.Log.Level;
            // Always: a reload decides again for every filesystem (docs/configuration.md), changed lists or not.
            daemon.Inventory.Options = DaemonHost.WatchOf(fresh);
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
            service.Ready(DaemonStatus.Line(daemon));
        }
    }
}
