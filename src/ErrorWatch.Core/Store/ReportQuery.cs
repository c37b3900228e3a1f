using System.Globalization;

namespace ErrorWatch.Store;

/// <summary>Which stored reports to read (<see cref="StoredReports.Query"/>): after a report id or since a time, on one filesystem.</summary>
public sealed record ReportQuery
{
    /// <summary>Only reports stored after the one with this id.</summary>
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

    /// <summary>
    /// Whether the record is on the filesystem asked for (the time and id bounds are the store's to
    /// apply: <see cref="StoredReports.Query"/>). A record that holds no report is not on any.
    /// </summary>
    public bool Selects(in StoredRecord record)
    {
        if (Filesystem is not { } wanted)
            return true;
        try
        {
            return IsOn(record.Report().Filesystem, wanted);
        }
        catch (Reports.ReportFormatException)
        {
            return false;
        }
    }

    /// <summary>Device, major:minor, label, a mount point or the UUID names this filesystem.</summary>
    public static bool IsOn(Reports.FilesystemInfo fs, string wanted) =>
        IsOn(fs.Device, fs.MajorMinor.ToString(), fs.Label, fs.Mountpoints.Select(m => m.TextOrEscaped), fs.Uuid, wanted);

    /// <summary>The same, from a report's fields as text (a report a client received over D-Bus).</summary>
    public static bool IsOn(string device, string majorMinor, string? label, IEnumerable<string> mountpoints, Guid? uuid, string wanted) =>
        device == wanted || majorMinor == wanted || label == wanted || mountpoints.Contains(wanted)
        || Guid.TryParse(wanted, out var asked) && uuid == asked;
}
