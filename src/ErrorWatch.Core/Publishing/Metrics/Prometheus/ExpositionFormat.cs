using System.Globalization;

namespace ErrorWatch.Publishing.Metrics.Prometheus;

/// <summary>
/// The two exposition formats a scrape can ask for: Prometheus text 0.0.4 (the default, and what
/// promtool checks) and OpenMetrics 1.0.0 (what Prometheus asks for first).
/// </summary>
public sealed class ExpositionFormat
{
    public static readonly ExpositionFormat Text = new("text/plain; version=0.0.4; charset=utf-8", openMetrics: false);
    public static readonly ExpositionFormat OpenMetrics = new("application/openmetrics-text; version=1.0.0; charset=utf-8", openMetrics: true);

    private ExpositionFormat(string contentType, bool openMetrics)
    {
        ContentType = contentType;
        IsOpenMetrics = openMetrics;
    }

    public string ContentType { get; }
    public bool IsOpenMetrics { get; }

    /// <summary>
    /// OpenMetrics when the Accept header lists application/openmetrics-text (with a q above 0),
    /// else text 0.0.4. Every OpenMetrics version asked for gets 1.0.0, the only one written.
    /// </summary>
    public static ExpositionFormat FromAccept(string? accept)
    {
        if (string.IsNullOrEmpty(accept))
            return Text;
        foreach (var range in accept.AsSpan().Split(','))
        {
            var mediaRange = accept.AsSpan()[range];
            var parameters = mediaRange.Split(';');
            if (!parameters.MoveNext() || !mediaRange[parameters.Current].Trim().Equals("application/openmetrics-text", StringComparison.OrdinalIgnoreCase))
                continue;
            var refused = false;
            while (parameters.MoveNext())
                refused |= IsQZero(mediaRange[parameters.Current]);
            if (!refused)
                return OpenMetrics;
        }
        return Text;
    }

    private static bool IsQZero(ReadOnlySpan<char> parameter)
    {
        var eq = parameter.IndexOf('=');
        if (eq < 0 || !parameter[..eq].Trim().Equals("q", StringComparison.OrdinalIgnoreCase))
            return false;
        return double.TryParse(parameter[(eq + 1)..].Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out var q) && q <= 0;
    }

    public override string ToString() => IsOpenMetrics ? "OpenMetrics 1.0.0" : "text 0.0.4";
}
