using System.Diagnostics.Metrics;
using System.Globalization;
using ErrorWatch.Publishing.Metrics.Prometheus;

namespace ErrorWatch.Tests.Metrics;

/// <summary>
/// A real Prometheus scrapes the endpoint (it asks for OpenMetrics first, so this is the
/// OpenMetrics path end to end) and its query API returns what was counted, with the labels.
/// </summary>
public sealed class PrometheusScrapeTests
{
    [Fact]
    public async Task Prometheus_scrapes_the_endpoint_and_answers_queries()
    {
        using var metrics = new TestMetrics(cache: TimeSpan.FromMilliseconds(300));
        var errors = metrics.Meter.CreateCounter<long>("errorwatch.e2e.errors", "{error}", "Errors seen by the end-to-end test");
        errors.Add(2, new("system.device", "/dev/loop7"), new("error.type", "EUCLEAN"));
        errors.Add(5, new("system.device", "/dev/loop7"), new("error.type", "EUCLEAN"));
        errors.Add(1, new("system.device", "/dev/loop8"), new("error.type", "EIO"));
        metrics.Meter.CreateHistogram<double>("errorwatch.e2e.check.duration", "s", "Check time", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.01, 0.1, 1] }).Record(0.05);
        metrics.Meter.CreateObservableGauge("errorwatch.e2e.fill", () => 0.25, "1", "Fill ratio");

        using var endpoint = new MetricsEndpoint(metrics.Exporter, ["127.0.0.1:0"], Serilog.Core.Logger.None);
        endpoint.Start();
        var target = new Uri(endpoint.Addresses[0]).Authority;
        using var prometheus = new PrometheusServer([target], job: "errorwatch", scrapeInterval: TimeSpan.FromSeconds(1));

        var series = await prometheus.WaitForAsync("errorwatch_e2e_errors_total", r => r.Count == 2);
        var loop7 = series.Single(s => s.Labels["system_device"] == "/dev/loop7");
        Assert.Equal("7", loop7.Value);
        Assert.Equal("EUCLEAN", loop7.Labels["error_type"]);
        Assert.Equal("errorwatch", loop7.Labels["job"]);
        Assert.Equal(target, loop7.Labels["instance"]);
        Assert.Equal("1", series.Single(s => s.Labels["system_device"] == "/dev/loop8").Value);

        var up = await prometheus.QueryAsync("up{job=\"errorwatch\"}");
        Assert.Equal("1", Assert.Single(up).Value);

        // A later count arrives with the next scrape.
        errors.Add(10, new("system.device", "/dev/loop8"), new("error.type", "EIO"));
        await prometheus.WaitForAsync("errorwatch_e2e_errors_total{system_device=\"/dev/loop8\"}", r => r.Count == 1 && r[0].Value == "11");

        var info = Assert.Single(await prometheus.QueryAsync("target_info{job=\"errorwatch\"}"));
        Assert.Equal(TestMetrics.ServiceName, info.Labels["service_name"]);
        Assert.Equal(TestMetrics.InstanceId, info.Labels["service_instance_id"]);
        Assert.Equal("1", (await prometheus.QueryAsync("errorwatch_e2e_check_duration_seconds_bucket{le=\"0.1\"}")).Single().Value);
        Assert.Equal("1", (await prometheus.QueryAsync("errorwatch_e2e_check_duration_seconds_count")).Single().Value);
        Assert.Equal(0.25, double.Parse((await prometheus.QueryAsync("errorwatch_e2e_fill_ratio")).Single().Value, CultureInfo.InvariantCulture));
        // Prometheus asked for OpenMetrics and got it: the unit comes from "# UNIT", which text 0.0.4 has not,
        // and the counter family is named without _total.
        Assert.Contains(("histogram", "Check time", "seconds"), await prometheus.MetadataAsync("errorwatch_e2e_check_duration_seconds"));
        Assert.Contains(("counter", "Errors seen by the end-to-end test", ""), await prometheus.MetadataAsync("errorwatch_e2e_errors"));
        // Nothing in the scrape was dropped or rejected.
        Assert.Equal("0", (await prometheus.QueryAsync("scrape_samples_post_metric_relabeling - scrape_samples_scraped")).Single().Value);
        var targets = await prometheus.TargetsAsync();
        Assert.Contains("\"lastError\":\"\"", targets);
    }
}
