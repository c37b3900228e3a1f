using System.Diagnostics.Metrics;
using System.Text;
using ErrorWatch.Publishing.Metrics.Prometheus;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ErrorWatch.Tests.Metrics;

/// <summary>
/// A real MeterProvider listening to one Meter of a name unique to the test, with the Prometheus
/// exporter as its reader; no response cache unless asked, so every scrape sees the latest numbers.
/// </summary>
internal sealed class TestMetrics : IDisposable
{
    public const string ServiceName = "errorwatch-test";
    public const string ServiceVersion = "1.2.3";
    public const string InstanceId = "instance-7";
    public const string HostName = "test-host";

    private readonly List<Meter> _meters = [];

    public TestMetrics(TimeSpan? cache = null, int meters = 1)
    {
        Exporter = new PrometheusExporter { CacheDuration = cache ?? TimeSpan.Zero };
        var prefix = "ErrorWatch.Tests.Metrics." + Guid.NewGuid().ToString("N");
        for (var i = 0; i < meters; i++)
            _meters.Add(new Meter($"{prefix}.{i}", "0.1"));
        Provider = Sdk.CreateMeterProviderBuilder()
            .AddMeter([.. _meters.Select(m => m.Name)])
            .ConfigureResource(r => r.Clear()
                .AddService(ServiceName, serviceVersion: ServiceVersion, serviceInstanceId: InstanceId, autoGenerateServiceInstanceId: false)
                .AddAttributes([new("host.name", HostName)]))
            .AddPrometheusExporter(Exporter)
            .Build();
    }

    public Meter Meter => _meters[0];
    public IReadOnlyList<Meter> Meters => _meters;
    public PrometheusExporter Exporter { get; }
    public MeterProvider Provider { get; }

    public string Scrape(ExpositionFormat format) =>
        Encoding.UTF8.GetString(Exporter.ScrapeAsync().AsTask().GetAwaiter().GetResult().In(format).Span);

    public string Text() => Scrape(ExpositionFormat.Text);
    public string OpenMetrics() => Scrape(ExpositionFormat.OpenMetrics);

    public void Dispose()
    {
        Provider.Dispose();
        foreach (var meter in _meters)
            meter.Dispose();
    }
}

/// <summary>A sample line: metric name, labels (unescaped) and the value as written.</summary>
internal sealed record Sample(string Name, IReadOnlyDictionary<string, string> Labels, string Value)
{
    public string Label(string name) => Labels.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"{Name} has no label {name}: {this}");

    public override string ToString() =>
        Name + "{" + string.Join(",", Labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}")) + "} " + Value;
}

/// <summary>
/// A strict reader of the exposition formats, for tests: metadata lines and samples, every label
/// value unescaped; throws on anything malformed (an unknown escape, a missing quote, a
/// timestamp, a stray comment in OpenMetrics).
/// </summary>
internal sealed class Exposition
{
    public List<Sample> Samples { get; } = [];

    /// <summary>(kind, family, rest) for each # line: ("TYPE", "x_total", "counter").</summary>
    public List<(string Kind, string Family, string Text)> Metadata { get; } = [];

    public IEnumerable<Sample> Named(string name) => Samples.Where(s => s.Name == name);

    public Sample Single(string name, params (string Key, string Value)[] labels)
    {
        var matches = Named(name).Where(s => labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value)).ToList();
        return matches.Count == 1 ? matches[0]
            : throw new InvalidOperationException($"{matches.Count} samples {name} with {string.Join(",", labels)}; all samples:\n{string.Join("\n", Samples)}");
    }

    public static Exposition Parse(string text, bool openMetrics)
    {
        var result = new Exposition();
        if (openMetrics)
        {
            if (!text.EndsWith("# EOF\n", StringComparison.Ordinal))
                throw new FormatException("OpenMetrics exposition does not end with # EOF");
            text = text[..^"# EOF\n".Length];
        }
        else if (!text.EndsWith('\n'))
        {
            throw new FormatException("text exposition does not end with a newline");
        }
        foreach (var line in text[..^1].Split('\n'))
        {
            if (line.StartsWith('#'))
            {
                var parts = line.Split(' ', 4);
                if (parts.Length < 3 || parts[0] != "#" || parts[1] is not ("HELP" or "TYPE" or "UNIT"))
                    throw new FormatException($"unexpected comment line: {line}");
                result.Metadata.Add((parts[1], parts[2], parts.Length > 3 ? parts[3] : ""));
                continue;
            }
            result.Samples.Add(ParseSample(line));
        }
        return result;
    }

    private static Sample ParseSample(string line)
    {
        var i = 0;
        while (i < line.Length && (char.IsAsciiLetterOrDigit(line[i]) || line[i] is '_' or ':'))
            i++;
        var name = line[..i];
        if (name.Length == 0)
            throw new FormatException($"no metric name: {line}");
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (i < line.Length && line[i] == '{')
        {
            i++;
            while (line[i] != '}')
            {
                var eq = line.IndexOf('=', i);
                var key = line[i..eq];
                if (line[eq + 1] != '"')
                    throw new FormatException($"label value not quoted: {line}");
                var value = new StringBuilder();
                var j = eq + 2;
                for (; line[j] != '"'; j++)
                {
                    if (line[j] == '\\')
                    {
                        j++;
                        value.Append(line[j] switch
                        {
                            '\\' => '\\',
                            '"' => '"',
                            'n' => '\n',
                            _ => throw new FormatException($"unknown escape \\{line[j]}: {line}"),
                        });
                    }
                    else
                    {
                        value.Append(line[j]);
                    }
                }
                if (!labels.TryAdd(key, value.ToString()))
                    throw new FormatException($"label {key} twice: {line}");
                i = j + 1;
                if (line[i] == ',')
                    i++;
            }
            i++;
        }
        if (i >= line.Length || line[i] != ' ')
            throw new FormatException($"no space before the value: {line}");
        var rest = line[(i + 1)..];
        if (rest.Length == 0 || rest.Contains(' '))
            throw new FormatException($"expected exactly one value and no timestamp: {line}");
        return new Sample(name, labels, rest);
    }
}
