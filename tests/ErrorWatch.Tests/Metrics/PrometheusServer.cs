using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ErrorWatch.Tests.Metrics;

/// <summary>
/// A real Prometheus (/usr/bin/prometheus, Debian package prometheus) for end-to-end tests: a
/// temporary directory with its configuration and TSDB, one scrape job over the given targets
/// (host:port, scraped at /metrics every <c>scrapeInterval</c>), listening on a free loopback
/// port. Queries go through its HTTP API. Only the PID started here is ever signalled (SIGTERM,
/// SIGKILL after 5 s); Dispose stops it and deletes the directory, also when start-up failed.
/// </summary>
public sealed partial class PrometheusServer : IDisposable
{
    public const string Binary = "/usr/bin/prometheus";

    private static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(30);

    private readonly StringBuilder _output = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private Process? _process;

    public PrometheusServer(IEnumerable<string> targets, string job = "errorwatch", TimeSpan? scrapeInterval = null)
    {
        if (!File.Exists(Binary))
            throw new InvalidOperationException($"{Binary} is missing: install the Debian package prometheus (scripts/test.sh does)");
        Job = job;
        Targets = targets.ToArray();
        TempDirectory = Directory.CreateTempSubdirectory("errorwatch-prometheus-").FullName;
        try
        {
            var interval = scrapeInterval ?? TimeSpan.FromSeconds(1);
            File.WriteAllText(ConfigPath, Configuration(job, Targets, interval));
            Port = FreePort();
            Url = new Uri($"http://127.0.0.1:{Port}/");
            Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Job { get; }
    public IReadOnlyList<string> Targets { get; }
    public string TempDirectory { get; }
    public string ConfigPath => Path.Combine(TempDirectory, "prometheus.yml");
    public int Port { get; }

    /// <summary>Prometheus' own web address (API at api/v1/...).</summary>
    public Uri Url { get; } = null!;

    public int? Pid => _process is { HasExited: false } p ? p.Id : null;

    /// <summary>What Prometheus logged (stderr), for failure messages.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    /// <summary>One series of an instant-query result: its labels (with __name__) and value.</summary>
    public sealed record Series(IReadOnlyDictionary<string, string> Labels, string Value)
    {
        public override string ToString() => "{" + string.Join(",", Labels.Select(l => $"{l.Key}=\"{l.Value}\"")) + "} " + Value;
    }

    /// <summary>An instant query (/api/v1/query); throws with Prometheus' error when it fails.</summary>
    public async Task<IReadOnlyList<Series>> QueryAsync(string promql)
    {
        var uri = new Uri(Url, "api/v1/query?query=" + Uri.EscapeDataString(promql));
        using var response = await _http.GetAsync(uri);
        var json = await response.Content.ReadAsStringAsync();
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.GetProperty("status").GetString() != "success")
            throw new InvalidOperationException($"query {promql} failed: {json}");
        var result = new List<Series>();
        foreach (var item in root.GetProperty("data").GetProperty("result").EnumerateArray())
        {
            var labels = item.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString() ?? "", StringComparer.Ordinal);
            result.Add(new Series(labels, item.GetProperty("value")[1].GetString() ?? ""));
        }
        return result;
    }

    /// <summary>Polls a query until <paramref name="done"/> holds for its result; throws after the timeout with the last result and the targets' state.</summary>
    public async Task<IReadOnlyList<Series>> WaitForAsync(string promql, Func<IReadOnlyList<Series>, bool> done, TimeSpan? timeout = null)
    {
        var deadline = Stopwatch.StartNew();
        var limit = timeout ?? TimeSpan.FromSeconds(30);
        IReadOnlyList<Series> last = [];
        while (true)
        {
            last = await QueryAsync(promql);
            if (done(last))
                return last;
            if (deadline.Elapsed > limit)
                throw new TimeoutException(
                    $"{promql} did not reach the expected result within {limit.TotalSeconds:0} s; last result:\n  {string.Join("\n  ", last)}\n" +
                    $"targets: {await TargetsAsync()}\nprometheus log:\n{Output}");
            await Task.Delay(250);
        }
    }

    /// <summary>What Prometheus learned from the scrapes' metadata lines about a metric family: (type, help, unit) per target kind.</summary>
    public async Task<IReadOnlyList<(string Type, string Help, string Unit)>> MetadataAsync(string family)
    {
        var json = await _http.GetStringAsync(new Uri(Url, "api/v1/metadata?metric=" + Uri.EscapeDataString(family)));
        using var document = JsonDocument.Parse(json);
        if (!document.RootElement.GetProperty("data").TryGetProperty(family, out var entries))
            return [];
        return entries.EnumerateArray()
            .Select(e => (e.GetProperty("type").GetString() ?? "", e.GetProperty("help").GetString() ?? "", e.GetProperty("unit").GetString() ?? ""))
            .ToList();
    }

    /// <summary>The scrape targets' state (/api/v1/targets): health, lastError, scrapeUrl, as JSON.</summary>
    public async Task<string> TargetsAsync()
    {
        try
        {
            return await _http.GetStringAsync(new Uri(Url, "api/v1/targets"));
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return "(unavailable: " + e.Message + ")";
        }
    }

    public void Stop()
    {
        OwnProcess.Stop(_process);
        _process = null;
    }

    public void Dispose()
    {
        Stop();
        _http.Dispose();
        if (Directory.Exists(TempDirectory))
            Directory.Delete(TempDirectory, recursive: true);
    }

    private void Start()
    {
        var start = new ProcessStartInfo(Binary)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = TempDirectory,
        };
        foreach (var argument in new[]
        {
            "--config.file=" + ConfigPath,
            "--storage.tsdb.path=" + Path.Combine(TempDirectory, "data"),
            "--web.listen-address=127.0.0.1:" + Port.ToString(CultureInfo.InvariantCulture),
            "--web.console.templates=" + Path.Combine(TempDirectory, "consoles"),
            "--web.console.libraries=" + Path.Combine(TempDirectory, "console_libraries"),
            "--log.level=info",
        })
            start.ArgumentList.Add(argument);
        var process = Process.Start(start) ?? throw new InvalidOperationException("cannot start " + Binary);
        _process = process;
        process.OutputDataReceived += (_, e) => Capture(e.Data);
        process.ErrorDataReceived += (_, e) => Capture(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
                throw new InvalidOperationException($"prometheus exited with {process.ExitCode}:\n{Output}");
            try
            {
                using var response = _http.GetAsync(new Uri(Url, "-/ready")).GetAwaiter().GetResult();
                if (response.StatusCode == HttpStatusCode.OK)
                    return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }
            if (deadline.Elapsed > StartTimeout)
                throw new InvalidOperationException($"prometheus (pid {process.Id}) not ready within {StartTimeout.TotalSeconds:0} s:\n{Output}");
            Thread.Sleep(100);
        }
    }

    private void Capture(string? line)
    {
        if (line is not null)
            lock (_output)
                _output.AppendLine(line);
    }

    public static string Configuration(string job, IEnumerable<string> targets, TimeSpan interval)
    {
        var seconds = Math.Max(1, (int)interval.TotalSeconds);
        var list = string.Join(", ", targets.Select(t => "'" + t.Replace("'", "''") + "'"));
        return $"""
            global:
              scrape_interval: {seconds}s
              scrape_timeout: {seconds}s
              evaluation_interval: {seconds}s
            scrape_configs:
              - job_name: '{job}'
                metrics_path: /metrics
                static_configs:
                  - targets: [{list}]
            """;
    }

    /// <summary>A loopback port nothing listens on right now (the kernel's pick; free again when returned).</summary>
    public static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        try
        {
            return ((IPEndPoint)listener.LocalEndpoint).Port;
        }
        finally
        {
            listener.Stop();
        }
    }
}
