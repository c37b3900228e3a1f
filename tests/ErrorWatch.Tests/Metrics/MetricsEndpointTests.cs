using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.Versioning;
using System.Text;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Publishing.Metrics.Prometheus;

namespace ErrorWatch.Tests.Metrics;

/// <summary>
/// The endpoint over real sockets: TCP on 127.0.0.1 with a kernel-chosen port, unix sockets in a
/// temporary directory; promtool on a real scrape; caching under a scrape storm; Accept; errors.
/// </summary>
[SupportedOSPlatform("linux")]
[Collection(TimingCollection.Name)]
public sealed class MetricsEndpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("errorwatch-metrics-").FullName;
    private readonly List<IDisposable> _cleanup = [];

    public void Dispose()
    {
        for (var i = _cleanup.Count - 1; i >= 0; i--)
            _cleanup[i].Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private T Own<T>(T disposable) where T : IDisposable
    {
        _cleanup.Add(disposable);
        return disposable;
    }

    private MetricsEndpoint Start(TestMetrics metrics, params string[] addresses) => Start(metrics.Exporter, addresses);

    private MetricsEndpoint Start(PrometheusExporter exporter, params string[] addresses)
    {
        var endpoint = Own(new MetricsEndpoint(exporter, addresses.Length == 0 ? ["127.0.0.1:0"] : addresses, Serilog.Core.Logger.None));
        endpoint.Start();
        return endpoint;
    }

    private static Uri MetricsUri(MetricsEndpoint endpoint) =>
        new(endpoint.Addresses.First(a => a.StartsWith("http://127.", StringComparison.Ordinal) || a.StartsWith("http://[", StringComparison.Ordinal)) + "/metrics");

    private HttpClient Http() => Own(new HttpClient { Timeout = TimeSpan.FromSeconds(30) });

    private static KeyValuePair<string, object?> Tag(string key, object? value) => new(key, value);

    /// <summary>A bit of everything the daemon will export, with the units the specification recommends.</summary>
    private static void Populate(Meter meter)
    {
        meter.CreateCounter<long>("errorwatch.fs.errors", "{error}", "Filesystem errors reported, by device and errno")
            .Add(3, Tag("system.device", "/dev/sda1"), Tag("system.filesystem.type", "ext4"), Tag("error.type", "EUCLEAN"));
        meter.CreateCounter<long>("errorwatch.reports", "{report}", "Reports published").Add(2);
        meter.CreateCounter<double>("errorwatch.read", "By", "Bytes read from fanotify").Add(4096);
        meter.CreateUpDownCounter<long>("errorwatch.filesystems.watched", "{filesystem}", "Filesystems watched").Add(4);
        meter.CreateObservableGauge("errorwatch.filesystem.health", () => new Measurement<long>(1, Tag("system.device", "/dev/sda1")), "1", "1 when healthy");
        meter.CreateHistogram<double>("errorwatch.check.duration", "s", "Time of one health check", tags: null,
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.01, 0.1, 1] }).Record(0.004, Tag("system.filesystem.type", "xfs"));
    }

    [Fact]
    public async Task Promtool_finds_no_problem_in_a_real_scrape()
    {
        using var metrics = new TestMetrics();
        Populate(metrics.Meter);
        var endpoint = Start(metrics);

        var body = await Http().GetStringAsync(MetricsUri(endpoint));
        var result = Tool.RunWithInput(body, TimeSpan.FromSeconds(30), "promtool", "check", "metrics");

        Assert.True(result.ExitCode == 0 && result.StdOut.Trim().Length == 0 && result.StdErr.Trim().Length == 0,
            $"promtool check metrics exited {result.ExitCode}:\n{result.StdOut}{result.StdErr}\nscrape:\n{body}");
        Assert.Contains("errorwatch_fs_errors_total{", body);
    }

    [Fact]
    public async Task Get_and_head_on_metrics_other_paths_404_other_methods_405()
    {
        using var metrics = new TestMetrics();
        Populate(metrics.Meter);
        var endpoint = Start(metrics);
        var http = Http();
        var uri = MetricsUri(endpoint);

        using var get = await http.GetAsync(uri);
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        var body = await get.Content.ReadAsByteArrayAsync();
        Assert.Equal(body.Length, get.Content.Headers.ContentLength);

        using var head = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, uri));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", head.Content.Headers.ContentType?.ToString());
        Assert.True(head.Content.Headers.ContentLength > 0);
        Assert.Empty(await head.Content.ReadAsByteArrayAsync());

        foreach (var path in new[] { "/", "/metric", "/metrics/", "/metrics/x", "/METRICS", "/favicon.ico" })
        {
            using var other = await http.GetAsync(new Uri(uri, path));
            Assert.True(other.StatusCode == HttpStatusCode.NotFound, $"{path}: {other.StatusCode}");
        }
        // A query string does not change the path.
        using var query = await http.GetAsync(new Uri(uri + "?x=1"));
        Assert.Equal(HttpStatusCode.OK, query.StatusCode);

        foreach (var method in new[] { HttpMethod.Post, HttpMethod.Put, HttpMethod.Delete, HttpMethod.Options, HttpMethod.Patch })
        {
            using var request = new HttpRequestMessage(method, uri) { Content = method == HttpMethod.Post ? new StringContent("x") : null };
            using var response = await http.SendAsync(request);
            Assert.True(response.StatusCode == HttpStatusCode.MethodNotAllowed, $"{method}: {response.StatusCode}");
            Assert.Equal("GET, HEAD", string.Join(", ", response.Content.Headers.Allow));
        }
    }

    [Fact]
    public async Task Accept_header_chooses_OpenMetrics_or_text()
    {
        using var metrics = new TestMetrics();
        Populate(metrics.Meter);
        var endpoint = Start(metrics);
        var http = Http();
        var uri = MetricsUri(endpoint);

        async Task<(string ContentType, string Body)> Get(string? accept)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, uri);
            if (accept is not null)
                request.Headers.TryAddWithoutValidation("Accept", accept);
            using var response = await http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return (response.Content.Headers.ContentType!.ToString(), await response.Content.ReadAsStringAsync());
        }

        var prometheus = await Get("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1");
        Assert.Equal("application/openmetrics-text; version=1.0.0; charset=utf-8", prometheus.ContentType);
        Assert.EndsWith("# EOF\n", prometheus.Body);
        Exposition.Parse(prometheus.Body, openMetrics: true);

        foreach (var accept in new[] { null, "text/plain", "*/*", "application/openmetrics-text;q=0" })
        {
            var text = await Get(accept);
            Assert.Equal("text/plain; version=0.0.4; charset=utf-8", text.ContentType);
            Assert.DoesNotContain("# EOF", text.Body);
            Exposition.Parse(text.Body, openMetrics: false);
        }
    }

    [Fact]
    public async Task Fifty_parallel_scrapes_cost_a_few_collections_on_pool_threads()
    {
        using var metrics = new TestMetrics(cache: TimeSpan.FromMilliseconds(300));
        Populate(metrics.Meter);
        var callbackThreads = new ConcurrentBag<(bool Pool, int Id)>();
        // A slow callback makes the scrapes pile up behind the first collection.
        metrics.Meter.CreateObservableGauge("slow.gauge", () =>
        {
            callbackThreads.Add((Thread.CurrentThread.IsThreadPoolThread, Environment.CurrentManagedThreadId));
            Thread.Sleep(100);
            return 1;
        }, null, "Slow");
        var endpoint = Start(metrics);
        var uri = MetricsUri(endpoint);
        var http = Http();
        var before = metrics.Exporter.Collections;

        using var start = new ManualResetEventSlim();
        var scrapes = Enumerable.Range(0, 50).Select(_ => Task.Run(async () =>
        {
            start.Wait();
            using var response = await http.GetAsync(uri);
            return (response.StatusCode, Body: await response.Content.ReadAsStringAsync());
        })).ToArray();
        start.Set();
        var results = await Task.WhenAll(scrapes);

        Assert.All(results, r => Assert.Equal(HttpStatusCode.OK, r.StatusCode));
        Assert.All(results, r => Assert.Contains("slow_gauge 1", r.Body));
        var collections = metrics.Exporter.Collections - before;
        Assert.InRange(collections, 1, 5);
        Assert.Equal(collections, callbackThreads.Count);
        Assert.All(callbackThreads, t => Assert.True(t.Pool, "an observable callback ran outside the thread pool"));
    }

    [Fact]
    public async Task Unix_socket_serves_metrics_with_the_configured_mode()
    {
        using var metrics = new TestMetrics();
        Populate(metrics.Meter);
        var path = Path.Combine(_dir, "run", "metrics.sock");
        var endpoint = Start(metrics, "unix:" + path, "127.0.0.1:0");

        Assert.Contains("http://unix:" + path, endpoint.Addresses);
        Assert.Equal(MetricsEndpoint.DefaultSocketMode, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite, File.GetUnixFileMode(path));

        var curl = Tool.RunWithTimeout(TimeSpan.FromSeconds(30), "curl", "--silent", "--show-error", "--fail", "--unix-socket", path, "http://localhost/metrics");
        Assert.True(curl.ExitCode == 0, $"curl exited {curl.ExitCode}: {curl.StdErr}");
        Assert.Contains("errorwatch_fs_errors_total{", curl.StdOut);

        using var http = UnixSocketClient(path);
        using var request = new HttpRequestMessage(HttpMethod.Get, "/metrics");
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/openmetrics-text"));
        using var response = await http.SendAsync(request);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.EndsWith("# EOF\n", await response.Content.ReadAsStringAsync());

        endpoint.Stop();
        Assert.False(File.Exists(path), "the socket file outlived the endpoint");
    }

    [Fact]
    public void Unix_socket_mode_can_be_configured()
    {
        using var metrics = new TestMetrics();
        var path = Path.Combine(_dir, "private.sock");
        var endpoint = Own(new MetricsEndpoint(metrics.Exporter, ["unix:" + path], Serilog.Core.Logger.None)
        {
            SocketMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        });
        endpoint.Start();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public async Task Stale_socket_is_replaced_but_a_live_one_or_another_file_is_not()
    {
        using var metrics = new TestMetrics();
        var stale = Path.Combine(_dir, "stale.sock");
        // A socket left behind by a process that is gone (.NET would unlink its own on close; python does not).
        var python = Tool.RunWithTimeout(TimeSpan.FromSeconds(30), "/usr/bin/python3", "-c",
            "import socket, sys; s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(sys.argv[1]); s.listen()", stale);
        Assert.True(python.ExitCode == 0, python.StdErr);
        Assert.True(File.Exists(stale));
        Start(metrics, "unix:" + stale);
        using (var http = UnixSocketClient(stale))
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/metrics")).StatusCode);

        var live = Path.Combine(_dir, "live.sock");
        using var listening = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listening.Bind(new UnixDomainSocketEndPoint(live));
        listening.Listen();
        var e = Assert.Throws<MetricsEndpointException>(() => Start(metrics, "unix:" + live));
        Assert.Equal("unix:" + live, e.Endpoint);
        Assert.Contains("already in use", e.Message);
        Assert.True(File.Exists(live), "a live socket was removed");

        var file = Path.Combine(_dir, "regular");
        File.WriteAllText(file, "keep me");
        e = Assert.Throws<MetricsEndpointException>(() => Start(metrics, "unix:" + file));
        Assert.Contains("not a socket", e.Message);
        Assert.Equal("keep me", File.ReadAllText(file));
    }

    [Fact]
    public void Address_in_use_names_the_address()
    {
        using var metrics = new TestMetrics();
        var first = Start(metrics);
        var port = new Uri(first.Addresses[0]).Port;
        var taken = $"127.0.0.1:{port}";

        var second = Own(new MetricsEndpoint(metrics.Exporter, [taken], Serilog.Core.Logger.None));
        var e = Assert.Throws<MetricsEndpointException>(second.Start);
        Assert.Equal(taken, e.Endpoint);
        Assert.Equal($"metrics endpoint \"{taken}\": address already in use", e.Message);
        Assert.False(second.IsRunning);

        // All or nothing: the free address and the socket bound before the failure are released.
        var free = PrometheusServer.FreePort();
        var socket = Path.Combine(_dir, "partial.sock");
        var mixed = Own(new MetricsEndpoint(metrics.Exporter, [$"127.0.0.1:{free}", "unix:" + socket, taken], Serilog.Core.Logger.None));
        e = Assert.Throws<MetricsEndpointException>(mixed.Start);
        Assert.Equal(taken, e.Endpoint);
        Assert.False(File.Exists(socket), "the unix socket of a failed start was left behind");
        var probe = new TcpListener(IPAddress.Loopback, free);
        probe.Start(); // throws if the failed start still holds the port
        probe.Stop();
    }

    [Theory]
    [InlineData("example.com:9464")]
    [InlineData("127.0.0.1")]
    [InlineData("unix:relative.sock")]
    public void Invalid_address_names_the_address(string address)
    {
        using var metrics = new TestMetrics();
        var endpoint = Own(new MetricsEndpoint(metrics.Exporter, ["127.0.0.1:0", address], Serilog.Core.Logger.None));
        var e = Assert.Throws<MetricsEndpointException>(endpoint.Start);
        Assert.Equal(address, e.Endpoint);
        Assert.StartsWith($"metrics endpoint \"{address}\": ", e.Message);
    }

    [Fact]
    public void Unusable_ip_address_names_the_address()
    {
        using var metrics = new TestMetrics();
        // TEST-NET-1 (RFC 5737) is on no interface of this machine.
        var endpoint = Own(new MetricsEndpoint(metrics.Exporter, ["192.0.2.1:9464"], Serilog.Core.Logger.None));
        var e = Assert.Throws<MetricsEndpointException>(endpoint.Start);
        Assert.Equal("metrics endpoint \"192.0.2.1:9464\": address not available on this host", e.Message);
    }

    [Fact]
    public async Task Ipv6_and_localhost_listen_too()
    {
        using var metrics = new TestMetrics();
        Populate(metrics.Meter);
        var port = PrometheusServer.FreePort();
        var endpoint = Start(metrics, "[::1]:0", $"localhost:{port}");
        var http = Http();
        foreach (var address in endpoint.Addresses)
            Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(address + "/metrics")).StatusCode);
        Assert.Contains(endpoint.Addresses, a => a.StartsWith("http://[::1]:", StringComparison.Ordinal));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync($"http://127.0.0.1:{port}/metrics")).StatusCode);
    }

    [Fact]
    public async Task Stop_is_bounded_with_connections_and_a_stuck_collection()
    {
        using var metrics = new TestMetrics();
        using var release = new ManualResetEventSlim();
        var stuck = 0;
        metrics.Meter.CreateObservableGauge("stuck.gauge", () =>
        {
            if (Interlocked.Exchange(ref stuck, 1) == 1)
                release.Wait(TimeSpan.FromSeconds(10)); // every collection but the first hangs until released
            return 1;
        });
        var endpoint = Start(metrics);
        var uri = MetricsUri(endpoint);
        var http = Http();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(uri)).StatusCode); // leaves an idle keep-alive connection

        using var partial = new TcpClient();
        await partial.ConnectAsync(uri.Host, uri.Port);
        await partial.GetStream().WriteAsync(Encoding.ASCII.GetBytes("GET /metrics HTTP/1.1\r\nHost: x\r\n")); // headers never finished
        var hanging = http.GetAsync(uri);
        await Task.Delay(200);

        var watch = Stopwatch.StartNew();
        endpoint.Stop();
        watch.Stop();
        release.Set();

        Assert.True(watch.ElapsedMilliseconds <= 500, $"Stop took {watch.ElapsedMilliseconds} ms");
        try
        {
            using var _ = await hanging; // cut off or answered late: either way no longer the endpoint's concern
        }
        catch (HttpRequestException)
        {
        }
    }

    [Fact]
    public async Task Stop_is_quick_and_frees_the_port()
    {
        using var metrics = new TestMetrics();
        var endpoint = Start(metrics);
        var uri = MetricsUri(endpoint);
        Assert.Equal(HttpStatusCode.OK, (await Http().GetAsync(uri)).StatusCode);

        var watch = Stopwatch.StartNew();
        endpoint.Dispose();
        Assert.True(watch.ElapsedMilliseconds <= 500, $"Dispose took {watch.ElapsedMilliseconds} ms");
        endpoint.Dispose();
        var probe = new TcpListener(IPAddress.Loopback, uri.Port);
        probe.Start();
        probe.Stop();
    }

    [Fact]
    public async Task Without_a_meter_provider_the_scrape_is_a_503_with_the_reason()
    {
        using var lonely = new PrometheusExporter();
        var endpoint = Start(lonely);
        using var response = await Http().GetAsync(MetricsUri(endpoint));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Contains("not part of a MeterProvider", await response.Content.ReadAsStringAsync());

        var metrics = new TestMetrics();
        var afterDispose = Start(metrics);
        metrics.Dispose();
        using var gone = await Http().GetAsync(MetricsUri(afterDispose));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, gone.StatusCode);
    }

    internal static HttpClient UnixSocketClient(string path) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (_, cancellationToken) =>
        {
            var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                await socket.ConnectAsync(new UnixDomainSocketEndPoint(path), cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    {
        BaseAddress = new Uri("http://localhost"),
        Timeout = TimeSpan.FromSeconds(30),
    };
}
