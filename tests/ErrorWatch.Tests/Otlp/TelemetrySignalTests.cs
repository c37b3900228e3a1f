using ErrorWatch.Publishing.Metrics;

namespace ErrorWatch.Tests.Otlp;

/// <summary>
/// Which OTLP signals are pushed, from [OpenTelemetry] and the standard environment: a
/// signal-specific endpoint (OTEL_EXPORTER_OTLP_LOGS_ENDPOINT, OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)
/// turns on its own signal, as OTEL_EXPORTER_OTLP_ENDPOINT turns on both.
/// </summary>
public sealed class TelemetrySignalTests
{
    private static TelemetryOptions With(params (string Name, string Value)[] env)
    {
        var variables = env.ToDictionary(e => e.Name, e => e.Value);
        return new TelemetryOptions { Listen = [], EnvironmentVariable = n => variables.GetValueOrDefault(n) };
    }

    [Fact]
    public void A_signal_specific_endpoint_turns_on_its_signal_only()
    {
        var logs = With(("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://logs:4318/v1/logs"));
        Assert.Equal((true, false, true), (logs.PushesOtlpLogs, logs.PushesOtlpMetrics, logs.PushesOtlp));
        var metrics = With(("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:4317"));
        Assert.Equal((false, true, true), (metrics.PushesOtlpLogs, metrics.PushesOtlpMetrics, metrics.PushesOtlp));
        var both = With(("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317"));
        Assert.Equal((true, true), (both.PushesOtlpLogs, both.PushesOtlpMetrics));
        var configured = With() with { OtlpEndpoint = "http://collector:4317" };
        Assert.Equal((true, true), (configured.PushesOtlpLogs, configured.PushesOtlpMetrics));
        Assert.False(With().PushesOtlp);
    }

    [Fact]
    public void Only_OTEL_EXPORTER_OTLP_LOGS_ENDPOINT_gives_the_report_log_records()
    {
        using var telemetry = new Telemetry(With(("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "http://127.0.0.1:9/v1/logs"), ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")),
            Serilog.Core.Logger.None);
        Assert.NotNull(telemetry.ReportLog);
        using var none = new Telemetry(With(), Serilog.Core.Logger.None);
        Assert.Null(none.ReportLog);
    }

    [Fact]
    public void The_metrics_endpoint_comes_from_the_configuration_then_the_metrics_variable_then_the_general_one()
    {
        var env = new[]
        {
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-tenant=ops"),
        };
        var general = Telemetry.MetricsExport(With(env), out _)!;
        Assert.Equal("http://collector:4318/v1/metrics", general.Endpoint.ToString());
        Assert.Equal(OpenTelemetry.Exporter.OtlpExportProtocol.HttpProtobuf, general.Protocol);
        Assert.Equal("x-tenant=ops", general.Headers);

        // A signal's own endpoint is its full URL.
        var own = Telemetry.MetricsExport(With([.. env, ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:9999/custom")]), out _)!;
        Assert.Equal("http://metrics:9999/custom", own.Endpoint.ToString());

        var configured = Telemetry.MetricsExport(With([.. env, ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://metrics:9999/custom")]) with
        {
            OtlpEndpoint = "http://c:4317", OtlpProtocol = "grpc",
        }, out _)!;
        Assert.Equal(("http://c:4317/", OpenTelemetry.Exporter.OtlpExportProtocol.Grpc), (configured.Endpoint.ToString(), configured.Protocol));

        Assert.Null(Telemetry.MetricsExport(With(("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "collector:4317")), out var problem));
        Assert.Contains("collector:4317", problem);
    }
}
