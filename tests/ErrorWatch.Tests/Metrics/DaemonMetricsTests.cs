using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.EndToEnd;

namespace ErrorWatch.Tests.Metrics;

/// <summary>
/// The real daemon (errorwatch run, a subprocess) on a scratch ext4: its scrape endpoint read by
/// promtool and by a real Prometheus after real errors, and its OTLP push received by a real
/// receiver over gRPC and OTLP/HTTP (Otlp/OtlpReceiver).
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class DaemonMetricsTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };

    [LoopFact]
    public async Task A_real_error_reaches_Prometheus_with_device_and_errno_labels_and_the_scrape_lints_clean()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("metrics");
        var port = PrometheusServer.FreePort();
        using var daemon = Daemon.Start(scratch.Path, "--filesystem", fs.MountPoint, "--metrics-listen", $"127.0.0.1:{port}");
        var url = $"http://127.0.0.1:{port}/metrics";
        await daemon.WaitForAsync(() => Scrape(url), text => text.Contains("errorwatch_watched_filesystems 1"));

        using var prometheus = new PrometheusServer([$"127.0.0.1:{port}"], scrapeInterval: TimeSpan.FromSeconds(1));
        var before = fs.ErrorsCount;
        fs.TriggerFsError("metrics 1");
        fs.TriggerFsError("metrics 2");
        fs.TriggerFsError("metrics 3");
        var grown = fs.ErrorsCountReaching(before + 3, TimeSpan.FromSeconds(10)) - before;
        Assert.Equal(3UL, grown);

        var series = await prometheus.WaitForAsync("errorwatch_filesystem_errors_total", r => r.Sum(s => double.Parse(s.Value)) == grown, TimeSpan.FromSeconds(30));
        var only = Assert.Single(series);
        Assert.Equal(fs.LoopDevice, only.Labels["system_device"]);
        Assert.Equal("EUCLEAN", only.Labels["error_type"]);
        Assert.Equal("corruption", only.Labels["errorwatch_event"]);
        Assert.Equal(fs.MountPoint, only.Labels["system_filesystem_mountpoint"]);
        Assert.Equal("ext4", only.Labels["system_filesystem_type"]);
        Assert.Equal("errorwatch", only.Labels["job"]);
        var health = Assert.Single(await prometheus.WaitForAsync("errorwatch_filesystem_health", r => r.Count == 1));
        Assert.Equal("1", health.Value);
        Assert.Equal("1", Assert.Single(await prometheus.QueryAsync("up{job=\"errorwatch\"}")).Value);
        Assert.Single(await prometheus.QueryAsync("target_info{service_name=\"errorwatch\"}"));

        // promtool lints a scrape taken after real errors.
        var text = await Scrape(url);
        var lint = Tool.RunWithInput(text, TimeSpan.FromSeconds(30), "promtool", "check", "metrics");
        Assert.True(lint.ExitCode == 0 && lint.StdOut.Length == 0 && lint.StdErr.Length == 0, $"promtool: {lint.StdOut}{lint.StdErr}");

        // OpenMetrics carries the same samples as the text format.
        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        request.Headers.Accept.ParseAdd("application/openmetrics-text;version=1.0.0");
        using var response = await Http.SendAsync(request);
        var openMetrics = await response.Content.ReadAsStringAsync();
        Assert.StartsWith("application/openmetrics-text", response.Content.Headers.ContentType!.ToString());
        Assert.EndsWith("# EOF\n", openMetrics);
        Assert.Contains("# TYPE errorwatch_filesystem_errors counter", openMetrics);
        var errorsLine = openMetrics.Split('\n').Single(l => l.StartsWith("errorwatch_filesystem_errors_total{", StringComparison.Ordinal));
        Assert.Contains(errorsLine, text.Split('\n'));
    }

    /// <summary>
    /// Both OTLP transports to a real receiver (messages compiled from the .proto files): each report
    /// one log record with its fields, the counter equal to the kernel's count, the configured headers
    /// on every request; then the collector goes away and comes back on its port: detection goes on,
    /// the outage is logged once each way per signal, and every report stored meanwhile arrives, once.
    /// </summary>
    [LoopTheory]
    [InlineData("grpc")]
    [InlineData("http/protobuf")]
    public async Task Reports_and_metrics_reach_a_real_OTLP_receiver_with_headers_and_come_through_an_outage_whole(string protocol)
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("otlp");
        var receiver = new Otlp.OtlpReceiver();
        receiver.Require("authorization", "Bearer s3cret");
        var config = Path.Combine(scratch.Path, "errorwatch.conf");
        File.WriteAllText(config, $"""
            [Metrics]
            Listen=none
            [OpenTelemetry]
            Endpoint={receiver.Endpoint(protocol)}
            Protocol={protocol}
            Headers=authorization=Bearer%20s3cret,x-tenant=ops
            Interval=1s
            """);
        var before = fs.ErrorsCount;
        using var daemon = Daemon.Start(scratch.Path, "--config", config, "--filesystem", fs.MountPoint);
        try
        {
            fs.TriggerFsError("otlp");
            receiver.WaitFor("the report's log record", r => r.LogRecords.Any(l => l.Get("errorwatch.report.filesystem.device") == fs.LoopDevice), TimeSpan.FromSeconds(20));
            var log = Assert.Single(receiver.LogRecords);
            Assert.Equal("EUCLEAN", log["errorwatch.report.error.name"]);
            Assert.Equal(fs.MountPoint, log["errorwatch.report.filesystem.mountpoints"]);
            Assert.Equal("errorwatch", log.Resource["service.name"]);
            Assert.True(Guid.TryParse(log.Resource["service.instance.id"], out _));
            Assert.False(log.Replayed);
            receiver.WaitFor("the counter", r => r.LatestTotal("errorwatch.filesystem.errors") == fs.ErrorsCount - before, TimeSpan.FromSeconds(20));
            Assert.All(receiver.Logs.Concat<object>(receiver.Metrics), r =>
            {
                var headers = r is Otlp.OtlpReceiver.Received<ErrorWatch.Publishing.Otlp.Proto.ExportLogsServiceRequest> l ? l.Headers : ((Otlp.OtlpReceiver.Received<Otlp.Proto.ExportMetricsServiceRequest>)r).Headers;
                Assert.Equal(("Bearer s3cret", "ops"), (headers["authorization"], headers["x-tenant"]));
            });
            Assert.All(receiver.Logs, r => Assert.Equal(protocol, r.Transport));

            // The collector goes away: detection goes on, and the outage is said once per signal, not per export.
            var (grpcPort, httpPort) = (receiver.GrpcPort, receiver.HttpPort);
            receiver.Dispose();
            fs.TriggerFsError("while the collector is away 1");
            fs.TriggerFsError("while the collector is away 2");
            await Task.Delay(TimeSpan.FromSeconds(4.5));
            Assert.Equal(1, daemon.Count("collector is unreachable"));
            Assert.Equal(1, daemon.Count("did not take them"));
            receiver = new Otlp.OtlpReceiver(grpcPort, httpPort);
            receiver.Require("authorization", "Bearer s3cret");
            var growth = fs.ErrorsCountReaching(before + 3, TimeSpan.FromSeconds(10)) - before;
            static long Errors(Otlp.OtlpReceiver r) => r.LogRecords.Sum(l => long.Parse(l["errorwatch.report.error.count"], CultureInfo.InvariantCulture));
            // The first record came before the outage; those stored during it come now, from the store.
            receiver.WaitFor("the records stored during the outage", r => Errors(r) >= (long)growth - 1, TimeSpan.FromSeconds(40));
            receiver.WaitFor("the counter after the outage", r => r.LatestTotal("errorwatch.filesystem.errors") == growth, TimeSpan.FromSeconds(20));
            await daemon.WaitForAsync(() => Task.FromResult(daemon.Stderr), s => s.Contains("accepts exports again") && s.Contains("takes them again"));
            Thread.Sleep(500);
            var records = receiver.LogRecords;
            Assert.Equal((long)growth - 1, Errors(receiver));
            Assert.Equal(records.Count, records.Select(r => r["errorwatch.report.id"]).Distinct().Count());
            Assert.Equal(1, daemon.Count("collector is unreachable"));
            Assert.Equal(0, receiver.Refusals);
        }
        finally
        {
            receiver.Dispose();
        }
        Assert.True(daemon.Stop() < TimeSpan.FromSeconds(2), "SIGTERM to exit took 2 s or more");
    }

    private static async Task<string> Scrape(string url)
    {
        try
        {
            return await Http.GetStringAsync(url);
        }
        catch (HttpRequestException)
        {
            return "";
        }
    }

    /// <summary>errorwatch run as a subprocess with its own state directory, no D-Bus, no journal.</summary>
    private sealed class Daemon : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _stderr = new();

        private Daemon(ProcessStartInfo psi) => _process = ErrorWatchBinary.StartCollecting(psi, _stderr);

        public static Daemon Start(string scratch, params string[] args) =>
            new(ErrorWatchBinary.StartInfo(["run", "--state-dir", Path.Combine(scratch, "state"), "--bus", "none", "--journal", "no", "--output", "none", .. args]));

        public string Stderr
        {
            get { lock (_stderr) return _stderr.ToString(); }
        }

        public int Count(string text) => Stderr.Split('\n').Count(l => l.Contains(text, StringComparison.Ordinal));

        public async Task WaitForAsync(Func<Task<string>> read, Func<string, bool> done, TimeSpan? timeout = null)
        {
            var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(20));
            var last = "";
            while (DateTime.UtcNow < deadline)
            {
                Assert.False(_process.HasExited, "errorwatch exited: " + Stderr);
                if (done(last = await read()))
                    return;
                await Task.Delay(100);
            }
            Assert.Fail($"timed out; last: {last}\nerrorwatch: {Stderr}");
        }

        /// <summary>SIGTERM, and how long it took to exit.</summary>
        public TimeSpan Stop()
        {
            var watch = Stopwatch.StartNew();
            if (!_process.HasExited)
            {
                Tool.Run("kill", "-TERM", _process.Id.ToString());
                _process.WaitForExit(5000);
            }
            return watch.Elapsed;
        }

        public void Dispose()
        {
            Stop();
            if (!_process.HasExited)
                _process.Kill();
            _process.Dispose();
        }
    }
}
