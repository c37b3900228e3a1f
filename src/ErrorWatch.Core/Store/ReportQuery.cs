using System.Globalization;
using System.Text.Json;

namespace ErrorWatch.Store;

/// <summary>Which stored reports <c>errorwatch list</c> shows: after a report id or a time, on one filesystem.</summary>
public sealed record ReportQuery
{
    /// <summary>Only reports after this id (ids are time-ordered UUIDv7s).</summary>
    public string? AfterId { get; init; }
    public DateTimeOffset? Since { get; init; }
    /// <summary>Device, major:minor, UUID, label or mount point.</summary>
    public string? Filesystem { get; init; }

    /// <summary>
    /// "--since" accepts a report id, an RFC 3339 time, or an age ("90s", "30min", "12h", "7d").
    /// Returns null and names the problem when it is none of these.
    /// </summary>
    public static ReportQuery? WithSince(ReportQuery query, string since, DateTimeOffset now, out string? problem)
    {
        problem = null;
        if (Guid.TryParse(since, out var id))
            return query with { AfterId = id.ToString() };
        if (DateTimeOffset.TryParse(since, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
            return query with { Since = time };
        if (TryParseAge(since, out var age))
            return query with { Since = now - age };
        problem = $"--since '{since}' is not a report id, a time (2026-11-21T10:00:00Z) or an age (30min, 12h, 7d)";
        return null;
    }

    private static bool TryParseAge(string text, out TimeSpan age)
    {
        age = default;
        var digits = 0;
        while (digits < text.Length && char.IsAsciiDigit(text[digits]))
            digits++;
        if (digits == 0 || !long.TryParse(text.AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
            return false;
        var unit = text[digits..];
        double? seconds = unit switch
        {
            "s" or "sec" => 1,
            "m" or "min" => 60,
            "h" => 3600,
            "d" => 86400,
            "w" => 7 * 86400,
            _ => null,
        };
        if (seconds is not { } s || n * s > TimeSpan.MaxValue.TotalSeconds / 2)
            return false;
        age = TimeSpan.FromSeconds(n * s);
        return true;
    }

    public bool Matches(ReadOnlySpan<byte> json, DateTimeOffset time)
    {
        if (Since is { } since && time < since)
            return false;
        if (AfterId is null && Filesystem is null)
            return true;
        using var doc = JsonDocument.Parse(json.ToArray());
        var root = doc.RootElement;
        if (AfterId is { } after && string.CompareOrdinal(root.GetProperty("id").GetString(), after) <= 0)
            return false;
        if (Filesystem is { } wanted && root.TryGetProperty("filesystem", out var fs))
        {
            bool Is(string name) => fs.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String && v.GetString() == wanted;
            var onMount = fs.TryGetProperty("mountpoints", out var mounts) && mounts.EnumerateArray().Any(m => m.GetString() == wanted);
            var uuid = Guid.TryParse(wanted, out var u) && fs.TryGetProperty("uuid", out var fu) && fu.ValueKind == JsonValueKind.String
                && Guid.TryParse(fu.GetString(), out var have) && have == u;
            if (!(Is("device") || Is("major_minor") || Is("label") || onMount || uuid))
                return false;
        }
        return true;
    }
}
