using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using OpenTelemetry.Metrics;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

/// <summary>The three Prometheus types an OpenTelemetry metric can become.</summary>
internal enum PrometheusType
{
    Counter,
    Gauge,
    Histogram,
}

/// <summary>
/// A metric family's Prometheus identity. <see cref="Name"/> never ends in <c>_total</c>: that is
/// the OpenMetrics family name; text format 0.0.4 names a counter family after its sample
/// (<see cref="TextName"/>). <see cref="Unit"/> is the unit word the name ends with, or empty.
/// </summary>
internal sealed record FamilyName(string Name, PrometheusType Type, string Unit)
{
    public string TextName => Type == PrometheusType.Counter ? Name + "_total" : Name;
}

/// <summary>
/// OpenTelemetry to Prometheus naming (OpenTelemetry's Prometheus compatibility specification):
/// invalid characters become <c>_</c>, the unit is spelled out and appended unless the name
/// already ends with it, counters get <c>_total</c>, attribute keys become label names.
/// </summary>
internal static class PrometheusNames
{
    // Metric objects live as long as their instrument; names are worked out once per metric.
    private static readonly ConditionalWeakTable<Metric, FamilyName?> Cache = new();

    /// <summary>The family a metric stream belongs to; null for exponential histograms, which the text formats cannot carry.</summary>
    public static FamilyName? Of(Metric metric) =>
        Cache.GetValue(metric, static m => Family(m.Name, m.Unit, m.MetricType));

    public static FamilyName? Family(string name, string? unit, MetricType metricType)
    {
        PrometheusType type;
        switch (metricType)
        {
            case MetricType.LongSum or MetricType.DoubleSum:
                type = PrometheusType.Counter;
                break;
            // An up-down counter goes down: Prometheus calls that a gauge.
            case MetricType.LongGauge or MetricType.DoubleGauge or MetricType.LongSumNonMonotonic or MetricType.DoubleSumNonMonotonic:
                type = PrometheusType.Gauge;
                break;
            case MetricType.Histogram:
                type = PrometheusType.Histogram;
                break;
            default:
                return null;
        }
        var familyName = MetricName(name);
        if (type == PrometheusType.Counter && familyName.EndsWith("_total", StringComparison.Ordinal) && familyName.Length > "_total".Length)
            familyName = familyName[..^"_total".Length];
        // The specification makes "1" a ratio on gauges only: an up-down counter of "1" has no unit word.
        var unitWord = UnitWord(unit, metricType is MetricType.LongGauge or MetricType.DoubleGauge);
        // OpenMetrics wants "_" + unit as the name's suffix; a metric called just "seconds" keeps its name and has no unit line.
        if (familyName == unitWord)
            unitWord = "";
        else if (unitWord.Length > 0 && !familyName.EndsWith("_" + unitWord, StringComparison.Ordinal))
            familyName += "_" + unitWord;
        return new FamilyName(familyName, type, unitWord);
    }

    /// <summary>[a-zA-Z_][a-zA-Z0-9_]*: every other character becomes '_' (colons are left to recording rules).</summary>
    public static string MetricName(string name)
    {
        var sanitized = Sanitize(name);
        return char.IsAsciiDigit(sanitized[0]) ? "_" + sanitized : sanitized;
    }

    /// <summary>
    /// An attribute key as a label name: invalid characters become '_', a leading digit gets
    /// "key_" and a leading "__" (reserved for Prometheus itself) gets "key".
    /// </summary>
    public static string LabelName(string key)
    {
        var sanitized = Sanitize(key);
        if (char.IsAsciiDigit(sanitized[0]))
            return "key_" + sanitized;
        return sanitized.StartsWith("__", StringComparison.Ordinal) ? "key" + sanitized : sanitized;
    }

    private static string Sanitize(string name)
    {
        if (name.Length == 0)
            return "_";
        var i = 0;
        while (i < name.Length && (char.IsAsciiLetterOrDigit(name[i]) || name[i] == '_'))
            i++;
        if (i == name.Length)
            return name;
        return string.Create(name.Length, name, static (span, source) =>
        {
            for (var j = 0; j < source.Length; j++)
                span[j] = char.IsAsciiLetterOrDigit(source[j]) || source[j] == '_' ? source[j] : '_';
        });
    }

    /// <summary>
    /// The unit as Prometheus spells it: UCUM abbreviations become words (s: seconds, By: bytes),
    /// "a/b" becomes "a_per_b", annotations in braces ({error}) are dropped, and "1" is "ratio"
    /// on gauges and nothing elsewhere.
    /// </summary>
    public static string UnitWord(string? unit, bool gauge)
    {
        if (string.IsNullOrWhiteSpace(unit))
            return "";
        var stripped = StripAnnotations(unit).Trim();
        if (stripped.Length == 0)
            return "";
        if (stripped == "1")
            return gauge ? "ratio" : "";
        string word;
        var slash = stripped.IndexOf('/');
        if (slash < 0)
        {
            word = Words.TryGetValue(stripped, out var w) ? w : stripped;
        }
        else
        {
            var numerator = stripped[..slash].Trim();
            var denominator = stripped[(slash + 1)..].Trim();
            var top = numerator is "" or "1" ? "" : Words.TryGetValue(numerator, out var n) ? n : numerator;
            var bottom = PerWords.TryGetValue(denominator, out var d) ? d : denominator;
            word = bottom.Length == 0 ? top : top.Length == 0 ? "per_" + bottom : top + "_per_" + bottom;
        }
        return Clean(word);
    }

    private static string StripAnnotations(string unit)
    {
        if (!unit.Contains('{'))
            return unit;
        var sb = new StringBuilder(unit.Length);
        var depth = 0;
        foreach (var c in unit)
        {
            if (c == '{')
                depth++;
            else if (c == '}' && depth > 0)
                depth--;
            else if (depth == 0)
                sb.Append(c);
        }
        return sb.ToString();
    }

    // Invalid characters to '_', runs of '_' to one, none at either end: the unit joins a name after one '_'.
    private static string Clean(string word)
    {
        var sb = new StringBuilder(word.Length);
        foreach (var c in word)
        {
            var ch = char.IsAsciiLetterOrDigit(c) ? c : '_';
            if (ch == '_' && (sb.Length == 0 || sb[^1] == '_'))
                continue;
            sb.Append(ch);
        }
        if (sb.Length > 0 && sb[^1] == '_')
            sb.Length--;
        return sb.ToString();
    }

    private static readonly Dictionary<string, string> Words = new(StringComparer.Ordinal)
    {
        ["d"] = "days", ["h"] = "hours", ["min"] = "minutes", ["s"] = "seconds",
        ["ms"] = "milliseconds", ["us"] = "microseconds", ["ns"] = "nanoseconds",
        ["By"] = "bytes", ["KiBy"] = "kibibytes", ["MiBy"] = "mebibytes", ["GiBy"] = "gibibytes", ["TiBy"] = "tibibytes",
        ["KBy"] = "kilobytes", ["MBy"] = "megabytes", ["GBy"] = "gigabytes", ["TBy"] = "terabytes",
        ["m"] = "meters", ["V"] = "volts", ["A"] = "amperes", ["J"] = "joules", ["W"] = "watts", ["g"] = "grams",
        ["Cel"] = "celsius", ["Hz"] = "hertz", ["%"] = "percent",
    };

    private static readonly Dictionary<string, string> PerWords = new(StringComparer.Ordinal)
    {
        ["s"] = "second", ["m"] = "minute", ["min"] = "minute", ["h"] = "hour", ["d"] = "day",
        ["w"] = "week", ["mo"] = "month", ["y"] = "year",
    };

    /// <summary>
    /// A histogram bound as OpenMetrics' canonical numbers want it (Go's %g with ".0" when it has
    /// neither point nor exponent: 0.005, 1.0, 100000.0, 1e+06). Used in both formats, so a series
    /// keeps its le label when Prometheus switches format.
    /// </summary>
    public static string CanonicalNumber(double value)
    {
        if (double.IsPositiveInfinity(value))
            return "+Inf";
        if (double.IsNegativeInfinity(value))
            return "-Inf";
        if (double.IsNaN(value))
            return "NaN";
        if (value == 0)
            return double.IsNegative(value) ? "-0.0" : "0.0";
        // "E16" would not be shortest; "R" gives the shortest round-trip digits, in either notation.
        var r = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        var e = r.IndexOf('E');
        var mantissa = e < 0 ? r : r[..e];
        var exponent = e < 0 ? 0 : int.Parse(r.AsSpan(e + 1), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        var point = mantissa.IndexOf('.');
        var integral = point < 0 ? mantissa : mantissa[..point];
        var digits = (integral + (point < 0 ? "" : mantissa[(point + 1)..])).TrimStart('0');
        var leadingZeros = (integral + (point < 0 ? "" : mantissa[(point + 1)..])).Length - digits.Length;
        digits = digits.TrimEnd('0');
        // Position of the decimal point relative to the first significant digit, as Go's decimal.dp.
        var dp = integral.Length - leadingZeros + exponent;
        var x = dp - 1;
        var sb = new StringBuilder(24);
        if (value < 0)
            sb.Append('-');
        if (x < -4 || x >= 6)
        {
            sb.Append(digits[0]);
            if (digits.Length > 1)
                sb.Append('.').Append(digits, 1, digits.Length - 1);
            sb.Append('e').Append(x < 0 ? '-' : '+');
            var ax = Math.Abs(x);
            if (ax < 10)
                sb.Append('0');
            sb.Append(ax.ToString(CultureInfo.InvariantCulture));
            return sb.ToString();
        }
        if (dp <= 0)
        {
            sb.Append("0.").Append('0', -dp).Append(digits);
        }
        else if (dp >= digits.Length)
        {
            sb.Append(digits).Append('0', dp - digits.Length).Append(".0");
        }
        else
        {
            sb.Append(digits, 0, dp).Append('.').Append(digits, dp, digits.Length - dp);
        }
        return sb.ToString();
    }
}
