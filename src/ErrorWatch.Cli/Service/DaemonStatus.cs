using ErrorWatch.Daemon;
using ErrorWatch.Publishing;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Publishing.Metrics;
using Microsoft.Extensions.Hosting;

namespace ErrorWatch.Cli.Service;

/// <summary>
/// What the daemon says about itself as it starts and runs: the capabilities once the marks are placed
/// (on stdout, as text or JSON; to the bus as KernelSupportsFsError), then systemd's STATUS= line,
/// kept in step with the counts (at most once a second, and only when reports come: nothing here wakes
/// an idle daemon).
/// </summary>
internal sealed class DaemonStatus(ErrorWatchDaemon daemon, IServiceManager service, BusService? bus, ErrorWatchMetrics metrics,
    JsonLinesSink? json, bool text) : IHostedLifecycleService, IDisposable
{
    private ServiceStatus? _status;

    public static string Line(ErrorWatchDaemon daemon) =>
        $"Watching {daemon.WatchedCount} filesystem(s); {daemon.ReportsPublished} report(s) so far";

    // Registered after the daemon: its StartingAsync has placed the marks.
    public Task StartingAsync(CancellationToken cancellationToken)
    {
        var capabilities = daemon.Capabilities ?? throw new InvalidOperationException("the pipeline has not started");
        if (json is not null)
            json.WriteObject(capabilities.WriteJson);
        else if (text)
            Console.Out.Write(capabilities.ToText());
        Console.Out.Flush();
        if (bus is not null)
            bus.KernelSupportsFsError = capabilities.FsErrorMarksAccepted;
        return Task.CompletedTask;
    }

    // Marks are placed and the outputs are up: the host's systemd lifetime sends READY=1 next.
    public Task StartedAsync(CancellationToken cancellationToken)
    {
        _status = new ServiceStatus(() => Line(daemon), service.Status);
        daemon.ReportDone = (_, seconds) =>
        {
            metrics.ReportDone(seconds);
            _status.Changed();
        };
        service.Status(Line(daemon));
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _status?.Dispose();
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose() => _status?.Dispose();
}
