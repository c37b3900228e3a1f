using ErrorWatch.Publishing.Metrics.Prometheus;
using OpenTelemetry.Metrics;

namespace ErrorWatch.Tests.Metrics;

/// <summary>The small rules: unit words, label names, canonical bucket bounds, Accept, addresses.</summary>
public class PrometheusNamesTests
{
    [Theory]
    [InlineData("s", false, "seconds")]
    [InlineData("ms", false, "milliseconds")]
    [InlineData("By", false, "bytes")]
    [InlineData("KiBy", false, "kibibytes")]
    [InlineData("{error}", false, "")]
    [InlineData("{error}", true, "")]
    [InlineData("1", true, "ratio")]
    [InlineData("1", false, "")]
    [InlineData("By/s", false, "bytes_per_second")]
    [InlineData("{packet}/s", false, "per_second")]
    [InlineData("1/s", false, "per_second")]
    [InlineData("m/s", false, "meters_per_second")]
    [InlineData("%", true, "percent")]
    [InlineData("", false, "")]
    [InlineData(null, true, "")]
    [InlineData("things", false, "things")]
    [InlineData("wei rd.unit", false, "wei_rd_unit")]
    public void Unit_words(string? unit, bool gauge, string expected) => Assert.Equal(expected, PrometheusNames.UnitWord(unit, gauge));

    [Theory]
    [InlineData("errorwatch.check.duration", "s", MetricType.Histogram, "errorwatch_check_duration_seconds", "seconds")]
    [InlineData("errorwatch.errors", "{error}", MetricType.LongSum, "errorwatch_errors", "")]
    [InlineData("requests_total", "s", MetricType.DoubleSum, "requests_seconds", "seconds")]
    [InlineData("seconds", "s", MetricType.DoubleGauge, "seconds", "")]
    [InlineData("fill", "1", MetricType.DoubleGauge, "fill_ratio", "ratio")]
    [InlineData("fill", "1", MetricType.LongSumNonMonotonic, "fill", "")]
    public void Family_names_and_unit_lines(string name, string unit, MetricType type, string family, string unitWord)
    {
        var names = PrometheusNames.Family(name, unit, type)!;
        Assert.Equal(family, names.Name);
        Assert.Equal(unitWord, names.Unit);
        // OpenMetrics: a UNIT line needs "_" + unit as the family name's suffix.
        Assert.True(unitWord.Length == 0 || names.Name.EndsWith("_" + unitWord, StringComparison.Ordinal));
    }

    [Fact]
    public void Exponential_histograms_have_no_family() => Assert.Null(PrometheusNames.Family("x", "s", MetricType.ExponentialHistogram));

    [Theory]
    [InlineData("fs-errors/by.kind", "fs_errors_by_kind")]
    [InlineData("9lives", "_9lives")]
    [InlineData("a:b", "a_b")]
    [InlineData("ok_name", "ok_name")]
    public void Metric_names(string name, string expected) => Assert.Equal(expected, PrometheusNames.MetricName(name));

    [Theory]
    [InlineData("system.device", "system_device")]
    [InlineData("error.type", "error_type")]
    [InlineData("already_fine", "already_fine")]
    [InlineData("ünï", "_n_")]
    [InlineData("1st", "key_1st")]
    [InlineData("__name__", "key__name__")]
    [InlineData("_private", "_private")]
    [InlineData("", "_")]
    public void Label_names(string key, string expected) => Assert.Equal(expected, PrometheusNames.LabelName(key));

    [Theory]
    // OpenMetrics' own examples of canonical numbers.
    [InlineData(0.0, "0.0")]
    [InlineData(0.001, "0.001")]
    [InlineData(0.002, "0.002")]
    [InlineData(0.01, "0.01")]
    [InlineData(0.1, "0.1")]
    [InlineData(0.9, "0.9")]
    [InlineData(0.95, "0.95")]
    [InlineData(0.99, "0.99")]
    [InlineData(0.999, "0.999")]
    [InlineData(1.0, "1.0")]
    [InlineData(1.7, "1.7")]
    [InlineData(10.0, "10.0")]
    [InlineData(1e-10, "1e-10")]
    [InlineData(1e-09, "1e-09")]
    [InlineData(1e-05, "1e-05")]
    [InlineData(0.0001, "0.0001")]
    [InlineData(100000.0, "100000.0")]
    [InlineData(1e+06, "1e+06")]
    [InlineData(1e+10, "1e+10")]
    [InlineData(2.5e+10, "2.5e+10")]
    [InlineData(123456.5, "123456.5")]
    [InlineData(-0.25, "-0.25")]
    [InlineData(-1e+20, "-1e+20")]
    [InlineData(double.PositiveInfinity, "+Inf")]
    [InlineData(double.NegativeInfinity, "-Inf")]
    public void Bucket_bounds_are_canonical_numbers(double value, string expected) => Assert.Equal(expected, PrometheusNames.CanonicalNumber(value));

    [Theory]
    // What Prometheus 2.42 sends.
    [InlineData("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", true)]
    [InlineData("application/openmetrics-text; version=1.0.0; charset=utf-8", true)]
    [InlineData("text/plain;q=0.9, APPLICATION/OpenMetrics-Text;q=0.5", true)]
    [InlineData("application/openmetrics-text;q=0, text/plain", false)]
    [InlineData("text/plain; version=0.0.4", false)]
    [InlineData("*/*", false)]
    [InlineData("", false)]
    [InlineData(null, false)]
    public void Accept_header_picks_the_format(string? accept, bool openMetrics) =>
        Assert.Equal(openMetrics, ExpositionFormat.FromAccept(accept).IsOpenMetrics);

    [Fact]
    public void Content_types()
    {
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", ExpositionFormat.Text.ContentType);
        Assert.Equal("application/openmetrics-text; version=1.0.0; charset=utf-8", ExpositionFormat.OpenMetrics.ContentType);
    }

    [Theory]
    [InlineData("127.0.0.1:9464", "127.0.0.1:9464", null)]
    [InlineData("[::1]:9464", "[::1]:9464", null)]
    [InlineData("0.0.0.0:9464", "0.0.0.0:9464", null)]
    [InlineData("[::]:0", "[::]:0", null)]
    [InlineData("localhost:9464", null, null)]
    [InlineData("LocalHost:9464", null, null)]
    [InlineData("unix:/run/errorwatch/metrics.sock", null, "/run/errorwatch/metrics.sock")]
    public void Valid_addresses(string text, string? ip, string? socket)
    {
        var address = MetricsAddress.Parse(text);
        Assert.Equal(text, address.Text);
        Assert.Equal(ip, address.IpEndPoint?.ToString());
        Assert.Equal(socket, address.SocketPath);
        Assert.Equal(text.StartsWith("localhost", StringComparison.OrdinalIgnoreCase), address.IsLocalhost);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("127.0.0.1", "no port")]
    [InlineData("127.0.0.1:", "is not a port")]
    [InlineData("127.0.0.1:65536", "is not a port")]
    [InlineData("127.0.0.1:-1", "is not a port")]
    [InlineData("127.0.0.1:http", "is not a port")]
    [InlineData("::1:9464", "brackets")]
    [InlineData("[::1]", "port after the bracket")]
    [InlineData("[127.0.0.1]:9464", "not an IP address")]
    [InlineData("example.com:9464", "host names are not resolved")]
    [InlineData("1:9464", "not an IP address")]
    [InlineData("300.1.1.1:9464", "not an IP address")]
    [InlineData("localhost:0", "fixed port")]
    [InlineData("unix:", "absolute")]
    [InlineData("unix:relative.sock", "absolute")]
    [InlineData("unix:/run/errorwatch/", "absolute")]
    public void Invalid_addresses_say_what_is_wrong(string text, string reason)
    {
        var e = Assert.Throws<FormatException>(() => MetricsAddress.Parse(text));
        Assert.Contains($"\"{text}\"", e.Message);
        Assert.Contains(reason, e.Message);
    }

    [Fact]
    public void Socket_path_longer_than_sun_path_is_refused()
    {
        var e = Assert.Throws<FormatException>(() => MetricsAddress.Parse("unix:/" + new string('a', 120)));
        Assert.Contains("107 bytes", e.Message);
    }
}
