using System.Buffers;
using System.Globalization;
using System.Text;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

/// <summary>
/// Writes a <see cref="MetricsSnapshot"/> as Prometheus text 0.0.4 or OpenMetrics 1.0.0, in UTF-8:
/// target_info first (the resource attributes), then one block per family (HELP and TYPE once,
/// UNIT in OpenMetrics), no timestamps. Text ends with a newline, OpenMetrics with <c># EOF</c>.
/// </summary>
internal static class PrometheusSerializer
{
    private const string TargetInfoHelp = "Target metadata";

    public static byte[] Write(MetricsSnapshot snapshot, ExpositionFormat format)
    {
        var output = new ArrayBufferWriter<byte>(4096);
        var om = format.IsOpenMetrics;

        // target_info: an info family in OpenMetrics (family "target"), a gauge in text 0.0.4 which has no info type.
        if (om)
            output.Write("# TYPE target info\n# HELP target " + TargetInfoHelp + "\n");
        else
            output.Write("# HELP target_info " + TargetInfoHelp + "\n# TYPE target_info gauge\n");
        output.Write("target_info");
        output.WriteLabels(snapshot.TargetInfoLabels, null);
        output.Write(" 1\n");

        foreach (var family in snapshot.Families)
            WriteFamily(output, family, om);

        if (om)
            output.Write("# EOF\n");
        return output.WrittenSpan.ToArray();
    }

    private static void WriteFamily(ArrayBufferWriter<byte> output, MetricFamily family, bool om)
    {
        var name = family.Name;
        var type = name.Type switch
        {
            PrometheusType.Counter => "counter",
            PrometheusType.Gauge => "gauge",
            _ => "histogram",
        };
        var help = new StringBuilder(family.Help.Length + 8);
        Labels.AppendEscaped(help, family.Help, quotes: om);
        if (om)
        {
            output.Write($"# TYPE {name.Name} {type}\n");
            if (name.Unit.Length > 0)
                output.Write($"# UNIT {name.Name} {name.Unit}\n");
            output.Write($"# HELP {name.Name} {help}\n");
        }
        else
        {
            output.Write($"# HELP {name.TextName} {help}\n");
            output.Write($"# TYPE {name.TextName} {type}\n");
        }

        foreach (var series in family.Series)
        {
            switch (name.Type)
            {
                case PrometheusType.Counter:
                    output.WriteSample(name.Name + "_total", series.Labels, null, series.Value);
                    break;
                case PrometheusType.Gauge:
                    output.WriteSample(name.Name, series.Labels, null, series.Value);
                    break;
                default:
                    var histogram = series.Histogram!;
                    var bucket = name.Name + "_bucket";
                    for (var i = 0; i < histogram.Bounds.Length; i++)
                        output.WriteSample(bucket, series.Labels, histogram.Bounds[i], SampleValue.Of(histogram.Cumulative[i]));
                    output.WriteSample(bucket, series.Labels, "+Inf", SampleValue.Of(histogram.Count));
                    output.WriteSample(name.Name + "_sum", series.Labels, null, SampleValue.Of(histogram.Sum));
                    output.WriteSample(name.Name + "_count", series.Labels, null, SampleValue.Of(histogram.Count));
                    break;
            }
        }
    }

    private static void WriteSample(this ArrayBufferWriter<byte> output, string name, string labels, string? le, SampleValue value)
    {
        output.Write(name);
        output.WriteLabels(labels, le);
        output.Write(" ");
        if (value.IsDouble)
            output.WriteNumber(value.Double);
        else
            output.WriteNumber(value.Long);
        output.Write("\n");
    }

    private static void WriteLabels(this ArrayBufferWriter<byte> output, string labels, string? le)
    {
        if (labels.Length == 0 && le is null)
            return;
        output.Write("{");
        output.Write(labels);
        if (le is not null)
            output.Write(labels.Length == 0 ? $"le=\"{le}\"" : $",le=\"{le}\"");
        output.Write("}");
    }

    private static void WriteNumber(this ArrayBufferWriter<byte> output, long value)
    {
        var span = output.GetSpan(20);
        value.TryFormat(span, out var written, default, CultureInfo.InvariantCulture);
        output.Advance(written);
    }

    private static void WriteNumber(this ArrayBufferWriter<byte> output, double value)
    {
        if (!double.IsFinite(value))
        {
            output.Write(Labels.Number(value));
            return;
        }
        var span = output.GetSpan(32);
        value.TryFormat(span, out var written, "R", CultureInfo.InvariantCulture);
        output.Advance(written);
    }

    private static void Write(this ArrayBufferWriter<byte> output, string text) => Encoding.UTF8.GetBytes(text, output);
}
