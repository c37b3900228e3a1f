using System.Text.Json;
using ErrorWatch.Filesystems;

namespace ErrorWatch.Publishing.DBus;

/// <summary>What a report says about its filesystem, read from its JSON (live or stored alike).</summary>
public readonly record struct ReportFacts(string Id, DateTimeOffset Time, string FilesystemKey, string Event, ulong Count)
{
    public static ReportFacts Read(ReadOnlySpan<byte> json, DateTimeOffset time)
    {
        var reader = new Utf8JsonReader(json);
        using var doc = JsonDocument.ParseValue(ref reader);
        return Read(doc.RootElement, time);
    }

    public static ReportFacts Read(JsonElement report, DateTimeOffset time)
    {
        var fs = report.GetProperty("filesystem");
        var uuid = fs.TryGetProperty("uuid", out var u) && u.ValueKind == JsonValueKind.String ? u.GetString() : null;
        var count = report.GetProperty("error").TryGetProperty("count", out var c) && c.TryGetUInt64(out var n) ? n : 1;
        return new ReportFacts(report.GetProperty("id").GetString() ?? "", time,
            FilesystemObject.Key(uuid, fs.GetProperty("major_minor").GetString() ?? ""), report.GetProperty("event").GetString() ?? "", count);
    }
}

/// <summary>What the stored and live reports of one filesystem add up to (kept across mounts).</summary>
public sealed class ReportTotals
{
    public ulong ErrorCount { get; private set; }
    public long Reports { get; private set; }
    public DateTimeOffset? FirstErrorTime { get; private set; }
    public DateTimeOffset? LastErrorTime { get; private set; }
    public string LastReportId { get; private set; } = "";

    public void Add(ReportFacts report)
    {
        Reports++;
        ErrorCount += report.Count;
        if (FirstErrorTime is null || report.Time < FirstErrorTime)
            FirstErrorTime = report.Time;
        if (LastErrorTime is null || report.Time >= LastErrorTime)
            LastErrorTime = report.Time;
        if (string.CompareOrdinal(report.Id, LastReportId) > 0)
            LastReportId = report.Id;
    }
}

/// <summary>
/// One watched filesystem as the bus shows it (io.github.errorwatch.ErrorWatch1.Filesystem).
/// Lives on the bus thread only.
/// </summary>
public sealed class FilesystemObject
{
    public FilesystemObject(Superblock sb, string path, ReportTotals totals)
    {
        Superblock = sb;
        Path = path;
        Totals = totals;
        Mountpoints = [.. sb.MountsByPreference.Select(m => m.MountPoint.Text ?? m.MountPoint.Escaped)];
    }

    /// <summary>
    /// Identity across restarts for history and acknowledgements: UUID and device together, because
    /// clones share a UUID and loop devices are reused.
    /// </summary>
    public static string Key(string? uuid, string majorMinor) => $"{uuid ?? "-"}/{majorMinor}";

    public static string Key(Superblock sb) => Key(sb.Uuid?.ToString(), sb.Device.ToString());

    public Superblock Superblock { get; }
    public string Path { get; }
    public ReportTotals Totals { get; }
    public string[] Mountpoints { get; set; }
    /// <summary>Read-only or shut down, as found during this mount (ends with it: a new mount is a new object).</summary>
    public FilesystemHealth State { get; private set; } = FilesystemHealth.Ok;

    public FilesystemHealth Health(string? acknowledged) =>
        State != FilesystemHealth.Ok ? State
        : Totals.LastReportId.Length > 0 && !Acknowledgements.Covers(acknowledged, Totals.LastReportId) ? FilesystemHealth.Errors
        : FilesystemHealth.Ok;

    /// <summary>Raises the state to what a live report says (shutdown, readonly); returns whether it changed.</summary>
    public bool Observe(string eventName)
    {
        var state = eventName switch
        {
            "shutdown" => FilesystemHealth.ShutDown,
            "readonly" => FilesystemHealth.ReadOnly,
            _ => FilesystemHealth.Ok,
        };
        if (state <= State)
            return false;
        State = state;
        return true;
    }

    public static ulong Microseconds(DateTimeOffset? time) =>
        time is { } t ? (ulong)Math.Max(0, (t - DateTimeOffset.UnixEpoch).Ticks / 10) : 0;
}
