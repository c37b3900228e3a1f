using System.Diagnostics.Metrics;
using System.Text;
using ErrorWatch.Publishing.Metrics.Prometheus;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace ErrorWatch.Tests.Metrics;

/// <summary>
/// The exposition written from a real MeterProvider (one test meter each): names, units, labels,
/// escaping, histograms, target_info, and the two formats side by side.
/// </summary>
public class PrometheusSerializerTests
{
    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    [Fact]
    public void Counter_with_attributes_is_a_total_with_labels()
    {
        using var metrics = new TestMetrics();
        var counter = metrics.Meter.CreateCounter<long>("test.requests", "{request}", "Requests served");
        counter.Add(1, Tag("a", "b"));
        counter.Add(2, Tag("a", "b"));
        counter.Add(5, Tag("a", "c"));

        var text = metrics.Text();

        var lines = text.Split('\n');
        Assert.Contains("test_requests_total{a=\"b\"} 3", lines);
        Assert.Contains("test_requests_total{a=\"c\"} 5", lines);
        Assert.Contains("# HELP test_requests_total Requests served", lines);
        Assert.Contains("# TYPE test_requests_total counter", lines);
        // HELP and TYPE before the samples, once.
        Assert.Single(lines, l => l.StartsWith("# TYPE test_requests_total ", StringComparison.Ordinal));
        Assert.True(Array.IndexOf(lines, "# TYPE test_requests_total counter") < Array.FindIndex(lines, l => l.StartsWith("test_requests_total{", StringComparison.Ordinal)));
        Assert.EndsWith("\n", text);
        Assert.DoesNotContain("# EOF", text);
    }

    public static TheoryData<string, string, string?, string> UnitCases => new()
    {
        // instrument kind, OTel name, unit, the sample name Prometheus gets
        { "counter", "io.read", "By", "io_read_bytes_total" },
        { "counter", "fs.errors", "{error}", "fs_errors_total" },
        { "counter", "scan.time", "s", "scan_time_seconds_total" },
        { "counter", "scan.time_seconds", "s", "scan_time_seconds_total" },
        { "counter", "events_total", "{event}", "events_total" },
        { "counter", "ratio.things", "1", "ratio_things_total" },
        { "gauge", "disk.fill", "1", "disk_fill_ratio" },
        { "gauge", "disk.fill_ratio", "1", "disk_fill_ratio" },
        { "gauge", "disk.used", "By", "disk_used_bytes" },
        { "gauge", "throughput", "By/s", "throughput_bytes_per_second" },
        { "gauge", "error.rate", "{error}/s", "error_rate_per_second" },
        { "gauge", "temperature", "Cel", "temperature_celsius" },
        { "gauge", "plain", null, "plain" },
        { "updown", "queue.depth", "1", "queue_depth" },
        { "updown", "queue.bytes", "By", "queue_bytes" },
        { "histogram", "check.duration", "s", "check_duration_seconds_count" },
        { "histogram", "record.size", "By", "record_size_bytes_count" },
        { "counter", "fs-errors/by.kind", "{error}", "fs_errors_by_kind_total" },
    };

    [Theory]
    [MemberData(nameof(UnitCases))]
    public void Names_get_their_unit_suffix_once(string kind, string name, string? unit, string sample)
    {
        using var metrics = new TestMetrics();
        var m = metrics.Meter;
        switch (kind)
        {
            case "counter":
                m.CreateCounter<long>(name, unit, "d").Add(1);
                break;
            case "gauge":
                m.CreateGauge<double>(name, unit, "d").Record(0.5);
                break;
            case "updown":
                m.CreateUpDownCounter<long>(name, unit, "d").Add(-2);
                break;
            case "histogram":
                m.CreateHistogram<double>(name, unit, "d").Record(1);
                break;
        }

        var exposition = Exposition.Parse(metrics.Text(), openMetrics: false);

        Assert.Single(exposition.Named(sample));
        var type = exposition.Metadata.Single(md => md.Kind == "TYPE" && md.Family != "target_info");
        Assert.Equal(kind switch { "counter" => "counter", "histogram" => "histogram", _ => "gauge" }, type.Text);
    }

    [Fact]
    public async Task Hostile_label_values_are_escaped_and_read_back_unchanged()
    {
        using var metrics = new TestMetrics();
        const string hostile = "quote\" backslash\\ newline\n end \\n literal";
        const string unicode = "Ünïcødé ✓ 日本 😀";
        var counter = metrics.Meter.CreateCounter<long>("hostile.values", null, "Hostile");
        counter.Add(1, Tag("system.device", hostile), Tag("system.filesystem.mountpoint", unicode), Tag("9.key", "x"), Tag("__reserved", "y"));

        var text = metrics.Text();

        Assert.Contains("""system_device="quote\" backslash\\ newline\n end \\n literal" """.TrimEnd(), text);
        // Non-ASCII stays UTF-8, unescaped.
        Assert.Contains("system_filesystem_mountpoint=\"" + unicode + "\"", text);
        var raw = (await metrics.Exporter.ScrapeAsync()).In(ExpositionFormat.Text).ToArray();
        Assert.True(raw.AsSpan().IndexOf(Encoding.UTF8.GetBytes(unicode)) >= 0, "the value is not in the body as UTF-8");
        foreach (var om in new[] { false, true })
        {
            var sample = Exposition.Parse(metrics.Scrape(om ? ExpositionFormat.OpenMetrics : ExpositionFormat.Text), om).Single("hostile_values_total");
            Assert.Equal(hostile, sample.Label("system_device"));
            Assert.Equal(unicode, sample.Label("system_filesystem_mountpoint"));
            Assert.Equal("x", sample.Label("key_9_key"));
            Assert.Equal("y", sample.Label("key__reserved"));
        }
    }

    [Fact]
    public void Help_text_is_escaped_per_format()
    {
        using var metrics = new TestMetrics();
        metrics.Meter.CreateCounter<long>("help.escape", null, "line one\nline \"two\" C:\\path").Add(1);

        Assert.Contains("# HELP help_escape_total line one\\nline \"two\" C:\\\\path\n", metrics.Text());
        Assert.Contains("# HELP help_escape line one\\nline \\\"two\\\" C:\\\\path\n", metrics.OpenMetrics());
    }

    [Fact]
    public void Missing_description_still_gets_a_help_line()
    {
        using var metrics = new TestMetrics();
        metrics.Meter.CreateCounter<long>("no.description").Add(1);

        Assert.Contains("# HELP no_description_total no.description\n", metrics.Text());
    }

    [Fact]
    public void An_instrument_cannot_take_the_name_of_target_info()
    {
        using var metrics = new TestMetrics();
        metrics.Meter.CreateGauge<long>("target_info").Record(5);
        metrics.Meter.CreateGauge<long>("target").Record(6);

        foreach (var om in new[] { false, true })
        {
            var exposition = Exposition.Parse(metrics.Scrape(om ? ExpositionFormat.OpenMetrics : ExpositionFormat.Text), om);
            Assert.Equal("1", exposition.Single("target_info").Value);
            Assert.Empty(exposition.Named("target"));
        }
    }

    [Fact]
    public void Histogram_buckets_are_cumulative_and_inf_equals_count()
    {
        using var metrics = new TestMetrics();
        var histogram = metrics.Meter.CreateHistogram<double>("check.duration", "s", "Check time", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.5, 1, 10] });
        foreach (var v in new[] { 0.0005, 0.2, 0.3, 0.7, 2, 3, 100 })
            histogram.Record(v, Tag("fs", "ext4"));

        var exposition = Exposition.Parse(metrics.Text(), openMetrics: false);

        var buckets = exposition.Named("check_duration_seconds_bucket").ToList();
        Assert.Equal(["0.001", "0.5", "1.0", "10.0", "+Inf"], buckets.Select(b => b.Label("le")));
        Assert.Equal(["1", "3", "4", "6", "7"], buckets.Select(b => b.Value));
        Assert.All(buckets, b => Assert.Equal("ext4", b.Label("fs")));
        var counts = buckets.Select(b => long.Parse(b.Value)).ToList();
        Assert.Equal(counts.OrderBy(c => c), counts);
        Assert.Equal(exposition.Single("check_duration_seconds_count").Value, buckets[^1].Value);
        Assert.Equal(106.2005, double.Parse(exposition.Single("check_duration_seconds_sum").Value, System.Globalization.CultureInfo.InvariantCulture), 9);
        Assert.Contains(exposition.Metadata, md => md is ("TYPE", "check_duration_seconds", "histogram"));
    }

    [Fact]
    public void OpenMetrics_has_unit_lines_counter_families_without_total_and_ends_with_eof()
    {
        using var metrics = new TestMetrics();
        metrics.Meter.CreateCounter<double>("scan.time", "s", "Scan time").Add(1.5);
        metrics.Meter.CreateCounter<long>("fs.errors", "{error}", "Errors").Add(2);
        metrics.Meter.CreateGauge<double>("disk.fill", "1", "Fill").Record(0.25);

        var om = metrics.OpenMetrics();

        Assert.EndsWith("\n# EOF\n", om);
        var exposition = Exposition.Parse(om, openMetrics: true);
        Assert.Contains(exposition.Metadata, md => md is ("TYPE", "scan_time_seconds", "counter"));
        Assert.Contains(exposition.Metadata, md => md is ("UNIT", "scan_time_seconds", "seconds"));
        Assert.Contains(exposition.Metadata, md => md is ("TYPE", "fs_errors", "counter"));
        Assert.DoesNotContain(exposition.Metadata, md => md is ("UNIT", "fs_errors", _));
        Assert.Contains(exposition.Metadata, md => md is ("UNIT", "disk_fill_ratio", "ratio"));
        Assert.DoesNotContain(exposition.Metadata, md => md.Family.EndsWith("_total", StringComparison.Ordinal));
        Assert.Equal("1.5", exposition.Single("scan_time_seconds_total").Value);
        Assert.Equal("2", exposition.Single("fs_errors_total").Value);
        // TYPE, UNIT, HELP in this order, as OpenMetrics recommends.
        var order = exposition.Metadata.Where(md => md.Family == "scan_time_seconds").Select(md => md.Kind);
        Assert.Equal(["TYPE", "UNIT", "HELP"], order);
        Assert.DoesNotContain("# UNIT", metrics.Text());
    }

    [Fact]
    public void Text_and_OpenMetrics_carry_the_same_samples()
    {
        using var metrics = new TestMetrics();
        var m = metrics.Meter;
        m.CreateCounter<long>("fs.errors", "{error}", "Errors").Add(7, Tag("system.device", "sda1"), Tag("error.type", "EUCLEAN"));
        m.CreateCounter<double>("io.read", "By", "Bytes").Add(1234.5);
        m.CreateUpDownCounter<long>("watched", "{filesystem}", "Watched").Add(3);
        m.CreateHistogram<double>("check.duration", "s", "Check").Record(0.3, Tag("fs", "xfs"));
        m.CreateObservableGauge("health", () => new Measurement<long>(1, Tag("system.device", "sdb \"2\"")), "1", "Health");

        var text = Exposition.Parse(metrics.Text(), openMetrics: false);
        var om = Exposition.Parse(metrics.OpenMetrics(), openMetrics: true);

        Assert.Equal(Canonical(text.Samples), Canonical(om.Samples));
        Assert.True(text.Samples.Count > 20, $"only {text.Samples.Count} samples");

        static List<string> Canonical(IEnumerable<Sample> samples) => samples.Select(s => s.ToString()).Order(StringComparer.Ordinal).ToList();
    }

    [Fact]
    public void Gauges_and_up_down_counters_are_gauges_and_specials_are_spelled_the_prometheus_way()
    {
        using var metrics = new TestMetrics();
        metrics.Meter.CreateObservableGauge("odd.values", () => new[]
        {
            new Measurement<double>(double.PositiveInfinity, Tag("v", "pinf")),
            new Measurement<double>(double.NegativeInfinity, Tag("v", "ninf")),
            new Measurement<double>(double.NaN, Tag("v", "nan")),
            new Measurement<double>(0.1, Tag("v", "tenth")),
            new Measurement<double>(1.5e300, Tag("v", "huge")),
            new Measurement<double>(-2.5e-7, Tag("v", "tiny")),
        }, null, "Odd");
        metrics.Meter.CreateUpDownCounter<long>("in.flight", null, "In flight").Add(-4);

        var text = metrics.Text();
        var exposition = Exposition.Parse(text, openMetrics: false);

        Assert.Contains(exposition.Metadata, md => md is ("TYPE", "odd_values", "gauge"));
        Assert.Contains(exposition.Metadata, md => md is ("TYPE", "in_flight", "gauge"));
        Assert.Equal("-4", exposition.Single("in_flight").Value);
        Assert.Equal("+Inf", exposition.Single("odd_values", ("v", "pinf")).Value);
        Assert.Equal("-Inf", exposition.Single("odd_values", ("v", "ninf")).Value);
        Assert.Equal("NaN", exposition.Single("odd_values", ("v", "nan")).Value);
        Assert.Equal("0.1", exposition.Single("odd_values", ("v", "tenth")).Value);
        Assert.Equal(1.5e300, double.Parse(exposition.Single("odd_values", ("v", "huge")).Value, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(-2.5e-7, double.Parse(exposition.Single("odd_values", ("v", "tiny")).Value, System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public void Doubles_do_not_follow_the_current_culture()
    {
        var saved = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            // InvariantGlobalization makes every culture behave as invariant; the serializer must not rely on that.
            System.Globalization.CultureInfo.CurrentCulture = System.Globalization.CultureInfo.InvariantCulture;
            using var metrics = new TestMetrics();
            metrics.Meter.CreateGauge<double>("half", null, "Half").Record(0.5);
            Assert.Contains("\nhalf 0.5\n", metrics.Text());
        }
        finally
        {
            System.Globalization.CultureInfo.CurrentCulture = saved;
        }
    }

    [Fact]
    public void Streams_of_one_name_from_two_meters_form_one_family()
    {
        using var metrics = new TestMetrics(meters: 2);
        metrics.Meters[0].CreateCounter<long>("shared.count", null, "Shared").Add(1, Tag("from", "a"));
        metrics.Meters[1].CreateCounter<long>("shared.count", null, "Shared").Add(2, Tag("from", "b"));
        // Same label set in both: Prometheus would reject the duplicate series; the first wins.
        metrics.Meters[0].CreateCounter<long>("dup.count", null, "Dup").Add(1, Tag("k", "v"));
        metrics.Meters[1].CreateCounter<long>("dup.count", null, "Dup").Add(9, Tag("k", "v"));
        // Same Prometheus name, another type: the family keeps the first type.
        metrics.Meters[0].CreateCounter<long>("mixed", null, "Mixed").Add(1);
        metrics.Meters[1].CreateGauge<long>("mixed_total", null, "Mixed").Record(5);

        foreach (var om in new[] { false, true })
        {
            var exposition = Exposition.Parse(metrics.Scrape(om ? ExpositionFormat.OpenMetrics : ExpositionFormat.Text), om);
            var family = om ? "shared_count" : "shared_count_total";
            Assert.Single(exposition.Metadata, md => md is ("TYPE", _, _) && md.Family == family);
            Assert.Single(exposition.Metadata, md => md is ("HELP", _, _) && md.Family == family);
            Assert.Equal("1", exposition.Single("shared_count_total", ("from", "a")).Value);
            Assert.Equal("2", exposition.Single("shared_count_total", ("from", "b")).Value);
            Assert.Single(exposition.Named("dup_count_total"));
            Assert.Single(exposition.Metadata, md => md.Kind == "TYPE" && md.Family.StartsWith("mixed", StringComparison.Ordinal));
            // Every family's samples are contiguous (neither format allows interleaving).
            var names = exposition.Samples.Select(s => s.Name).ToList();
            Assert.Equal(names.Distinct().Count(), names.Where((n, i) => i == 0 || names[i - 1] != n).Count());
        }
    }

    [Fact]
    public void Target_info_carries_the_resource_attributes()
    {
        using var metrics = new TestMetrics();
        metrics.Meter.CreateCounter<long>("anything").Add(1);

        var text = metrics.Text();
        var om = metrics.OpenMetrics();

        Assert.StartsWith("# HELP target_info Target metadata\n# TYPE target_info gauge\ntarget_info{", text);
        Assert.StartsWith("# TYPE target info\n# HELP target Target metadata\ntarget_info{", om);
        foreach (var (exposition, _) in new[] { (Exposition.Parse(text, false), 0), (Exposition.Parse(om, true), 1) })
        {
            var info = exposition.Single("target_info");
            Assert.Equal("1", info.Value);
            Assert.Equal(TestMetrics.ServiceName, info.Label("service_name"));
            Assert.Equal(TestMetrics.ServiceVersion, info.Label("service_version"));
            Assert.Equal(TestMetrics.InstanceId, info.Label("service_instance_id"));
            Assert.Equal(TestMetrics.HostName, info.Label("host_name"));
        }
    }

    [Fact]
    public void No_sample_carries_a_timestamp()
    {
        using var metrics = new TestMetrics();
        metrics.Meter.CreateCounter<long>("c").Add(1);
        metrics.Meter.CreateHistogram<long>("h").Record(3);

        // The parser throws on a third field.
        Assert.NotEmpty(Exposition.Parse(metrics.Text(), false).Samples);
        Assert.NotEmpty(Exposition.Parse(metrics.OpenMetrics(), true).Samples);
    }

    [Fact]
    public async Task A_delta_reader_is_refused_with_the_reason()
    {
        using var meter = new Meter("ErrorWatch.Tests.Metrics.Delta." + Guid.NewGuid().ToString("N"));
        var exporter = new PrometheusExporter { CacheDuration = TimeSpan.Zero };
        using var provider = Sdk.CreateMeterProviderBuilder().AddMeter(meter.Name)
            .AddReader(new BaseExportingMetricReader(exporter) { TemporalityPreference = MetricReaderTemporalityPreference.Delta })
            .Build();
        meter.CreateCounter<long>("deltas").Add(1);

        var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await exporter.ScrapeAsync());
        Assert.Contains("deltas has delta temporality", e.Message);
    }

    [Fact]
    public void Counters_are_cumulative_across_scrapes()
    {
        using var metrics = new TestMetrics();
        var counter = metrics.Meter.CreateCounter<long>("grows");
        counter.Add(2);
        Assert.Equal("2", Exposition.Parse(metrics.Text(), false).Single("grows_total").Value);
        counter.Add(3);
        Assert.Equal("5", Exposition.Parse(metrics.Text(), false).Single("grows_total").Value);
    }
}
