using System.Diagnostics;
using System.Text;
using System.Text.Json;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.Recovery;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.Metrics;

/// <summary>
/// Any local user can connect to the metrics endpoint. Holding its connections (idle keep-alive
/// ones, and slowloris ones that never finish their headers) must not shut out the scrapes: a real
/// Prometheus keeps scraping the shipped daemon while uid nobody holds 200 of each and opens again
/// every one that is closed. Kestrel's refusing cap of 64 failed every scrape here.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class MetricsEndpointFloodTests
{
    private static readonly string Flood = Path.Combine(ServicePaths.RepositoryRoot, "tests", "ErrorWatch.Tests", "Metrics", "connection-flood.py");

    [RootFact("to hold the connections as uid nobody")]
    public async Task Two_hundred_idle_and_two_hundred_slowloris_connections_from_nobody_do_not_stop_prometheus_scraping()
    {
        var state = Directory.CreateTempSubdirectory("errorwatch-flood-").FullName;
        var port = PrometheusServer.FreePort();
        var stderr = new StringBuilder();
        using var daemon = ErrorWatchBinary.StartCollecting(ErrorWatchBinary.StartInfo(
            ["run", "--state-dir", state, "--bus", "none", "--journal", "no", "--output", "none", "--filesystem", "/nonexistent", "--metrics-listen", $"127.0.0.1:{port}"]), stderr);
        Process? flood = null;
        try
        {
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    await http.GetStringAsync($"http://127.0.0.1:{port}/metrics");
                    break;
                }
                catch (HttpRequestException) when (deadline.Elapsed < TimeSpan.FromSeconds(20) && !daemon.HasExited)
                {
                    await Task.Delay(100);
                }
            }

            var psi = new ProcessStartInfo("setpriv") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in (string[])["--reuid", "65534", "--regid", "65534", "--clear-groups", "/usr/bin/python3", Flood, "127.0.0.1", $"{port}", "200", "200", "120"])
                psi.ArgumentList.Add(a);
            flood = Process.Start(psi)!;
            // Full: the flood holds more established connections to the port than Kestrel's old cap (64).
            var held = 0;
            for (var waited = Stopwatch.StartNew(); held <= 64 && waited.Elapsed < TimeSpan.FromSeconds(30) && !flood.HasExited; Thread.Sleep(200))
                held = Tool.Run("ss", "-Htn", "state", "established", $"( dport = :{port} )").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
            Assert.True(held > 64, $"the flood holds {held} connections");
            // Then a scraper that connects anew, as Prometheus does at its start or after a restart.
            using var prometheus = new PrometheusServer([$"127.0.0.1:{port}"], job: "flooded", scrapeInterval: TimeSpan.FromSeconds(1));
            await prometheus.WaitForAsync("up{job=\"flooded\"}", r => r.Count == 1, TimeSpan.FromSeconds(60));
            await Task.Delay(TimeSpan.FromSeconds(12));
            // The flood held on all along; ended now, so Prometheus (as starved as the rest) answers the queries at once.
            if (flood.HasExited)
                Assert.Fail("the flood stopped early: " + flood.StandardError.ReadToEnd());
            OwnProcess.Signal(flood.Id, 9);
            flood.WaitForExit(5000);
            Assert.False(daemon.HasExited, "the daemon exited: " + stderr);

            // Scrapes came every second through the flood, and every one succeeded.
            var scrapes = Assert.Single(await prometheus.QueryAsync("count_over_time(up{job=\"flooded\"}[10s])"));
            Assert.True(double.Parse(scrapes.Value, System.Globalization.CultureInfo.InvariantCulture) >= 6, $"{scrapes.Value} scrapes in 10 s");
            Assert.Equal("1", Assert.Single(await prometheus.QueryAsync("min_over_time(up{job=\"flooded\"}[10s])")).Value);
            Assert.Single(await prometheus.QueryAsync("errorwatch_watched_filesystems{job=\"flooded\"}"));
        }
        finally
        {
            if (flood is { HasExited: false })
                OwnProcess.Signal(flood.Id, 9);
            flood?.WaitForExit(5000);
            flood?.Dispose();
            if (!daemon.HasExited)
                OwnProcess.Signal(daemon.Id, 15);
            Assert.True(daemon.WaitForExit(5000));
            Directory.Delete(state, recursive: true);
        }
    }
}
