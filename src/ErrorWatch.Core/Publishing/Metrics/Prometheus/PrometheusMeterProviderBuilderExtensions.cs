using OpenTelemetry.Metrics;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

public static class PrometheusMeterProviderBuilderExtensions
{
    /// <summary>
    /// Adds the exporter through a reader of its own with cumulative temporality, which Prometheus
    /// needs (a delta counter would look like a counter reset at every scrape). Serve it with a
    /// <see cref="MetricsEndpoint"/>.
    /// </summary>
    public static MeterProviderBuilder AddPrometheusExporter(this MeterProviderBuilder builder, PrometheusExporter exporter) =>
        builder.AddReader(new BaseExportingMetricReader(exporter) { TemporalityPreference = MetricReaderTemporalityPreference.Cumulative });
}
