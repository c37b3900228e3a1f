using System.Diagnostics;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ErrorWatch.Publishing.Metrics;

public sealed record TelemetryOptions
{
    /// <summary>Where the Prometheus endpoint listens (host:port, [v6]:port, unix:/path); empty: no endpoint.</summary>
    public IReadOnlyList<string> Listen { get; init; } = ["127.0.0.1:9464"];
    /// <summary>OTLP collector; null: the environment's (OTEL_EXPORTER_OTLP_{METRICS,LOGS}_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT), if any.</summary>
    public string? OtlpEndpoint { get; init; }
    /// <summary>grpc or http/protobuf; null: OTEL_EXPORTER_OTLP_{METRICS,LOGS}_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL, else grpc.</summary>
    public string? OtlpProtocol { get; init; }
    /// <summary>"key=value,key2=value2" (OTEL_EXPORTER_OTLP_HEADERS syntax), e.g. an API key.</summary>
    public string? OtlpHeaders { get; init; }
    public TimeSpan OtlpInterval { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>One OTLP export may take this long before it is given up (it runs on the SDK's thread).</summary>
    public TimeSpan OtlpTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>Where OTEL_EXPORTER_OTLP_* are read (a test gives its own).</summary>
    public Func<string, string?> EnvironmentVariable { get; init; } = Environment.GetEnvironmentVariable;

    /// <summary>
    /// Whether metrics are pushed: an endpoint here, or OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or
    /// OTEL_EXPORTER_OTLP_ENDPOINT, as the OpenTelemetry environment specification reads them.
    /// </summary>
    public bool PushesOtlpMetrics => Configured("METRICS");

    /// <summary>Whether log records are pushed: an endpoint here, or OTEL_EXPORTER_OTLP_LOGS_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT.</summary>
    public bool PushesOtlpLogs => Configured("LOGS");

    /// <summary>Whether OTLP push is configured for either signal, here or in the environment.</summary>
    public bool PushesOtlp => PushesOtlpMetrics || PushesOtlpLogs;

    private bool Configured(string signal) =>
        OtlpEndpoint is { Length: > 0 } || EnvironmentVariable($"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT") is { Length: > 0 }
        || EnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 };
}

/// <summary>
/// The OpenTelemetry side of ErrorWatch: one MeterProvider for the ErrorWatch meter, read by the
/// Prometheus endpoint (pull) and the OTLP exporter (push), plus one OTLP log record per report,
/// delivered from the store (<see cref="ErrorWatch.Publishing.Otlp.OtlpLogDelivery"/>).
/// Exports run on the SDK's own threads, never on the daemon's; a collector outage is logged
/// once when it starts and once when it ends.
/// </summary>
public sealed class Telemetry : IDisposable
{
    private readonly MeterProvider _meters;
    private readonly Serilog.ILogger _log;

    public Telemetry(TelemetryOptions options, Serilog.ILogger log, Action<MeterProviderBuilder>? addReaders = null)
    {
        _log = log;
        var attributes = ResourceAttributes();
        var resource = ResourceBuilder.CreateEmpty().AddAttributes(attributes.Select(a => new KeyValuePair<string, object>(a.Key, a.Value)));
        var builder = Sdk.CreateMeterProviderBuilder().SetResourceBuilder(resource).AddMeter(ErrorWatchMetrics.MeterName);
        addReaders?.Invoke(builder);
        if (options.PushesOtlpMetrics)
        {
            if (MetricsExport(options, out var where) is { } export)
            {
                builder.AddReader(new PeriodicExportingMetricReader(new OtlpMetrics(export, log), (int)options.OtlpInterval.TotalMilliseconds, (int)options.OtlpTimeout.TotalMilliseconds)
                {
                    TemporalityPreference = MetricReaderTemporalityPreference.Cumulative,
                });
                log.Information("OpenTelemetry: pushing metrics every {Interval} to {Endpoint}", options.OtlpInterval, where);
            }
            else
                log.Error("OpenTelemetry: no metrics push ({Problem}); the log records and the other outputs go on", where);
        }
        if (options.PushesOtlpLogs)
        {
            try
            {
                if (ErrorWatch.Publishing.Otlp.OtlpDestination.Resolve(options, options.EnvironmentVariable) is { } destination)
                {
                    ReportLog = new ErrorWatch.Publishing.Otlp.OtlpLogDelivery(destination, attributes, log);
                    log.Information("OpenTelemetry: one log record per report, from the store, to {Endpoint} over {Protocol}",
                        destination.Endpoint, destination.Grpc ? "grpc" : "http/protobuf");
                }
            }
            catch (FormatException e)
            {
                log.Error("OpenTelemetry: no log records ({Problem}); metrics are still pushed", e.Message);
            }
        }
        _meters = builder.Build()!;
    }

    /// <summary>
    /// The resource every OTLP export carries: ErrorWatch and this machine, the same for metrics and log
    /// records, so a collector joins them.
    /// </summary>
    private static List<KeyValuePair<string, string>> ResourceAttributes() =>
    [
        new("service.name", "errorwatch"),
        new("service.version", ProductVersion.Text),
        new("service.instance.id", InstanceId()),
        new("host.name", Environment.MachineName),
    ];

    /// <summary>The report output for OTLP log records (from the store), or null when OTLP is not configured.</summary>
    public ErrorWatch.Publishing.Otlp.OtlpLogDelivery? ReportLog { get; }


    /// <summary>
    /// The metric exporter's options, resolved as <see cref="ErrorWatch.Publishing.Otlp.OtlpDestination"/>
    /// resolves the log records': [OpenTelemetry] first, then OTEL_EXPORTER_OTLP_METRICS_*, then
    /// OTEL_EXPORTER_OTLP_* (the SDK's options read only the latter). A base endpoint gets
    /// <c>/v1/metrics</c> over OTLP/HTTP; a signal's own endpoint is the full URL. Null, with the problem
    /// in <paramref name="where"/>, when there is no usable endpoint; else <paramref name="where"/> is it.
    /// </summary>
    internal static OtlpExporterOptions? MetricsExport(TelemetryOptions options, out string where)
    {
        string? Env(string name) => options.EnvironmentVariable(name) is { Length: > 0 } v ? v.Trim() : null;
        var http = (options.OtlpProtocol ?? Env("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL") ?? Env("OTEL_EXPORTER_OTLP_PROTOCOL")) == "http/protobuf";
        var (url, full) = options.OtlpEndpoint is { Length: > 0 } configured ? (configured, false)
            : Env("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT") is { } metrics ? (metrics, true)
            : (Env("OTEL_EXPORTER_OTLP_ENDPOINT"), false);
        if (url is null || !Uri.TryCreate(http && !full ? url.TrimEnd('/') + "/v1/metrics" : url, UriKind.Absolute, out var endpoint)
            || endpoint.Scheme is not ("http" or "https"))
        {
            where = $"the OTLP metrics endpoint \"{url}\" is not an http:// or https:// URL";
            return null;
        }
        where = endpoint.ToString();
        var o = new OtlpExporterOptions
        {
            TimeoutMilliseconds = (int)options.OtlpTimeout.TotalMilliseconds,
            Protocol = http ? OtlpExportProtocol.HttpProtobuf : OtlpExportProtocol.Grpc,
            Endpoint = endpoint,
        };
        if ((options.OtlpHeaders ?? Env("OTEL_EXPORTER_OTLP_METRICS_HEADERS") ?? Env("OTEL_EXPORTER_OTLP_HEADERS")) is { } headers)
            o.Headers = headers;
        return o;
    }

    /// <summary>
    /// A stable id per machine, derived from /etc/machine-id for ErrorWatch alone (never the id
    /// itself, which is confidential): the same series continue across restarts. A random id where
    /// libsystemd or the machine id is missing.
    /// </summary>
    private static unsafe string InstanceId()
    {
        // ErrorWatch's application id for sd_id128_get_machine_app_specific: fixed, arbitrary.
        ReadOnlySpan<byte> app = [0xe5, 0x5c, 0x9a, 0x1a, 0xed, 0xc5, 0x4a, 0xb4, 0x8f, 0x4e, 0xfa, 0xb8, 0x2e, 0xc2, 0xab, 0x0e];
        try
        {
            Interop.SdId128.Id id;
            if (Interop.SdId128.GetMachineAppSpecific(System.Runtime.InteropServices.MemoryMarshal.Read<Interop.SdId128.Id>(app), &id) == 0)
                return new Guid(new ReadOnlySpan<byte>(&id, sizeof(Interop.SdId128.Id)), bigEndian: true).ToString();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
        return Guid.NewGuid().ToString();
    }

    /// <summary>Final exports, bounded: a gone collector must not hold up SIGTERM.</summary>
    public void Shutdown(TimeSpan budget)
    {
        var watch = Stopwatch.StartNew();
        // Both at once: the last log records and the last metrics each get the whole budget.
        var logs = Task.Run(() => ReportLog?.Stop(budget));
        _meters.Shutdown((int)budget.TotalMilliseconds);
        logs.Wait(budget + TimeSpan.FromMilliseconds(200));
        if (watch.Elapsed > budget + TimeSpan.FromMilliseconds(200))
            _log.Warning("OpenTelemetry shutdown took {Elapsed}", watch.Elapsed);
    }

    public void Dispose()
    {
        _meters.Dispose();
        ReportLog?.Dispose();
    }

    /// <summary>
    /// The OTLP metric exporter, logging the start and the end of a collector outage once each
    /// instead of every failed export. A subclass rather than a wrapper: the exporter reads the
    /// resource from the provider it is attached to.
    /// </summary>
    private sealed class OtlpMetrics(OtlpExporterOptions options, Serilog.ILogger log) : OtlpMetricExporter(options)
    {
        private int _failing;

        public override ExportResult Export(in Batch<Metric> metrics)
        {
            var result = base.Export(metrics);
            if (result == ExportResult.Failure && Interlocked.Exchange(ref _failing, 1) == 0)
                log.Warning("OpenTelemetry: the collector is unreachable or refused the export; retrying at each interval (logged again when it recovers)");
            else if (result == ExportResult.Success && Interlocked.Exchange(ref _failing, 0) == 1)
                log.Information("OpenTelemetry: the collector accepts exports again");
            return result;
        }
    }
}
