using ErrorWatch.Publishing.Metrics.Prometheus;
using Microsoft.Extensions.Hosting;
using Serilog;

namespace ErrorWatch.Publishing.Metrics;

/// <summary>
/// The metrics on the Generic Host: the MeterProvider with its readers (the Prometheus endpoint unless
/// Listen=none, OTLP when configured). An endpoint that cannot listen is an error in the log, never a
/// reason to stop watching filesystems. With neither there is no output at all (<see cref="Create"/>
/// gives null; the meter's instruments are then no-ops): the OpenTelemetry SDK and Kestrel are never
/// started (docs/performance.md, footprint).
/// </summary>
public sealed class MetricsOutput : IHostedService, IDisposable
{
    private readonly PrometheusExporter? _exporter;
    private readonly IReadOnlyList<string> _listen;
    private readonly ILogger _log;
    private MetricsEndpoint? _endpoint;

    private MetricsOutput(TelemetryOptions options, ILogger log)
    {
        _listen = options.Listen;
        _log = log;
        _exporter = options.Listen.Count > 0 ? new PrometheusExporter() : null;
        var exporter = _exporter;
        Telemetry = new Telemetry(options, log, builder =>
        {
            if (exporter is not null)
                builder.AddPrometheusExporter(exporter);
        });
    }

    public Telemetry Telemetry { get; }

    public static MetricsOutput? Create(TelemetryOptions options, ILogger log) =>
        options.Listen.Count == 0 && !options.PushesOtlp ? null : new MetricsOutput(options, log);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_exporter is null)
            return Task.CompletedTask;
        try
        {
            _endpoint = new MetricsEndpoint(_exporter, _listen, _log);
            _endpoint.Start();
        }
        catch (MetricsEndpointException e)
        {
            _log.Error("No Prometheus endpoint: {Reason}; detection, storage and the other outputs go on", e.Message);
            _endpoint?.Dispose();
            _endpoint = null;
        }
        return Task.CompletedTask;
    }

    /// <summary>The endpoint closed, then the final exports, bounded: a gone collector must not hold up SIGTERM.</summary>
    public Task StopAsync(CancellationToken cancellationToken)
    {
        _endpoint?.Dispose();
        Telemetry.Shutdown(TimeSpan.FromMilliseconds(300));
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _endpoint?.Dispose();
        Telemetry.Dispose();
    }
}
