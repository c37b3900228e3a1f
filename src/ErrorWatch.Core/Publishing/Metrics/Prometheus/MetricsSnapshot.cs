using System.Collections;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

/// <summary>A value as the SDK gave it: integer instruments stay integers in the output.</summary>
internal readonly record struct SampleValue(long Long, double Double, bool IsDouble)
{
    public static SampleValue Of(long value) => new(value, 0, false);
    public static SampleValue Of(double value) => new(0, value, true);
}

/// <summary>A histogram point: explicit bounds (without +Inf) and cumulative counts, one per bound.</summary>
internal sealed record HistogramValue(double Sum, long Count, string[] Bounds, long[] Cumulative);

/// <summary>One time series: its rendered label pairs (<c>a="b",c="d"</c>, already escaped) and its value.</summary>
internal sealed record Series(string Labels, SampleValue Value, HistogramValue? Histogram = null);

/// <summary>Every series of one Prometheus name, from every SDK metric stream that maps to it.</summary>
internal sealed class MetricFamily(FamilyName name, string help, string instrument)
{
    private HashSet<string>? _labelSets;

    public FamilyName Name { get; } = name;
    public string Help { get; set; } = help;

    /// <summary>The OpenTelemetry name of the first stream.</summary>
    public string Instrument { get; } = instrument;
    public List<Series> Series { get; } = [];

    /// <summary>
    /// A second stream with this name (another meter, or an instrument whose name differs only in
    /// characters Prometheus cannot carry) may repeat a label set, and Prometheus rejects duplicate
    /// series; so from the second stream on, label sets are checked and the first one wins.
    /// </summary>
    public void TrackLabelSets()
    {
        if (_labelSets is not null)
            return;
        _labelSets = new HashSet<string>(StringComparer.Ordinal);
        foreach (var series in Series)
            _labelSets.Add(series.Labels);
    }

    public bool Admits(string labels) => _labelSets is null || _labelSets.Add(labels);
}

/// <summary>
/// What one collection saw, copied out of the SDK: metric points are only valid during
/// <c>Export</c>, and a copy lets either exposition format be written afterwards, from the same
/// numbers.
/// </summary>
internal sealed class MetricsSnapshot(IReadOnlyList<MetricFamily> families, string targetInfoLabels)
{
    public IReadOnlyList<MetricFamily> Families { get; } = families;

    /// <summary>The resource attributes as the labels of target_info.</summary>
    public string TargetInfoLabels { get; } = targetInfoLabels;

    public static MetricsSnapshot Take(in Batch<Metric> metrics, Resource resource)
    {
        var families = new List<MetricFamily>();
        var byName = new Dictionary<string, MetricFamily>(StringComparer.Ordinal);
        foreach (var metric in metrics)
        {
            if (PrometheusNames.Of(metric) is not { } name)
                continue;
            // target_info (family "target" in OpenMetrics) is the resource's.
            if (name.Name is "target" or "target_info")
                continue;
            // Families are known by both their names: a counter "x" is "x_total" in text 0.0.4,
            // which a gauge "x_total" would also claim.
            if (byName.TryGetValue(name.Name, out var family) || byName.TryGetValue(name.TextName, out family))
            {
                // One name, two types (or two families behind one text name): the stream seen first keeps it.
                if (family.Name.Name != name.Name || family.Name.Type != name.Type)
                    continue;
                family.TrackLabelSets();
                if (family.Help.Length == 0)
                    family.Help = metric.Description ?? "";
            }
            else
            {
                family = new MetricFamily(name, metric.Description ?? "", metric.Name);
                byName.Add(name.Name, family);
                byName.TryAdd(name.TextName, family);
                families.Add(family);
            }
            AddPoints(family, metric);
        }
        foreach (var family in families)
        {
            // promtool flags a family without HELP; the instrument's own name says at least what it is.
            if (family.Help.Length == 0)
                family.Help = family.Instrument;
        }
        return new MetricsSnapshot(families, Labels.Render(resource.Attributes));
    }

    private static void AddPoints(MetricFamily family, Metric metric)
    {
        var type = metric.MetricType;
        foreach (ref readonly var point in metric.GetMetricPoints())
        {
            var labels = Labels.Render(point.Tags);
            if (!family.Admits(labels))
                continue;
            switch (type)
            {
                case MetricType.LongSum or MetricType.LongSumNonMonotonic:
                    family.Series.Add(new Series(labels, SampleValue.Of(point.GetSumLong())));
                    break;
                case MetricType.DoubleSum or MetricType.DoubleSumNonMonotonic:
                    family.Series.Add(new Series(labels, SampleValue.Of(point.GetSumDouble())));
                    break;
                case MetricType.LongGauge:
                    family.Series.Add(new Series(labels, SampleValue.Of(point.GetGaugeLastValueLong())));
                    break;
                case MetricType.DoubleGauge:
                    family.Series.Add(new Series(labels, SampleValue.Of(point.GetGaugeLastValueDouble())));
                    break;
                case MetricType.Histogram:
                    family.Series.Add(new Series(labels, default, Histogram(point)));
                    break;
            }
        }
    }

    private static HistogramValue Histogram(in MetricPoint point)
    {
        var bounds = new List<string>();
        var cumulative = new List<long>();
        long running = 0;
        foreach (var bucket in point.GetHistogramBuckets())
        {
            running += bucket.BucketCount;
            // The last bucket is +Inf; it is written from the count, so +Inf always equals _count.
            if (double.IsPositiveInfinity(bucket.ExplicitBound))
                continue;
            bounds.Add(PrometheusNames.CanonicalNumber(bucket.ExplicitBound));
            cumulative.Add(running);
        }
        return new HistogramValue(point.GetHistogramSum(), point.GetHistogramCount(), [.. bounds], [.. cumulative]);
    }
}

/// <summary>Attributes as Prometheus label pairs.</summary>
internal static class Labels
{
    /// <summary>
    /// <c>key="value",...</c> in attribute order, keys made label names, values escaped (backslash,
    /// double quote, newline). Two keys that become the same label name share it, values joined by
    /// ';' (the specification's rule).
    /// </summary>
    public static string Render(IEnumerable<KeyValuePair<string, object>> attributes)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        foreach (var attribute in attributes)
            Add(pairs, attribute.Key, attribute.Value);
        return Render(pairs);
    }

    public static string Render(ReadOnlyTagCollection tags)
    {
        if (tags.Count == 0)
            return "";
        var pairs = new List<KeyValuePair<string, string>>(tags.Count);
        foreach (var tag in tags)
            Add(pairs, tag.Key, tag.Value);
        return Render(pairs);
    }

    private static void Add(List<KeyValuePair<string, string>> pairs, string key, object? value)
    {
        var name = PrometheusNames.LabelName(key);
        var text = ValueText(value);
        for (var i = 0; i < pairs.Count; i++)
        {
            if (pairs[i].Key == name)
            {
                pairs[i] = new(name, pairs[i].Value + ";" + text);
                return;
            }
        }
        pairs.Add(new(name, text));
    }

    private static string Render(List<KeyValuePair<string, string>> pairs)
    {
        if (pairs.Count == 0)
            return "";
        var sb = new StringBuilder();
        foreach (var (name, value) in pairs)
        {
            if (sb.Length > 0)
                sb.Append(',');
            sb.Append(name).Append("=\"");
            AppendEscaped(sb, value, quotes: true);
            sb.Append('"');
        }
        return sb.ToString();
    }

    /// <summary>Backslash and newline always; double quotes in label values and OpenMetrics HELP.</summary>
    public static void AppendEscaped(StringBuilder sb, string value, bool quotes)
    {
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\':
                    sb.Append(@"\\");
                    break;
                case '\n':
                    sb.Append(@"\n");
                    break;
                case '"' when quotes:
                    sb.Append("\\\"");
                    break;
                default:
                    sb.Append(c);
                    break;
            }
        }
    }

    private static string ValueText(object? value) => value switch
    {
        null => "",
        string s => s,
        bool b => b ? "true" : "false",
        double d => Number(d),
        float f => float.IsFinite(f) ? f.ToString("R", CultureInfo.InvariantCulture) : Number(f),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        // Array attributes as JSON arrays, as the specification asks.
        IEnumerable e => Json(e),
        _ => value.ToString() ?? "",
    };

    private static string Json(IEnumerable values)
    {
        var sb = new StringBuilder("[");
        foreach (var item in values)
        {
            if (sb.Length > 1)
                sb.Append(',');
            sb.Append(item switch
            {
                null => "null",
                string s => "\"" + JsonEncodedText.Encode(s, JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value + "\"",
                _ => ValueText(item),
            });
        }
        return sb.Append(']').ToString();
    }

    /// <summary>Invariant culture, shortest round-trip digits, and Prometheus' spelling of the specials.</summary>
    public static string Number(double value) =>
        double.IsPositiveInfinity(value) ? "+Inf"
        : double.IsNegativeInfinity(value) ? "-Inf"
        : double.IsNaN(value) ? "NaN"
        : value.ToString("R", CultureInfo.InvariantCulture);
}
