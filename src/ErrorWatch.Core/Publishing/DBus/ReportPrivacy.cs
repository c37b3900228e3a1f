using System.Text.Json;
using System.Text.Json.Nodes;
using ErrorWatch.Filesystems;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing.DBus;

/// <summary>
/// Takes the file's path out of a report for audiences that should not see it (every local user
/// receives broadcast signals; a path under someone's home says what they keep there). The path
/// is in object.path, object.path_base64 and, in brackets, in the summary.
/// </summary>
public static class ReportPrivacy
{
    /// <summary>
    /// A live report without its path: the summary, made from the report, then names no file, and
    /// object.path_withheld says why. Written from the report, not by taking its JSON apart (the
    /// signal's way, on the way from the kernel to subscribers).
    /// </summary>
    public static CorruptionReport Withheld(CorruptionReport report) => report.Object.Path is null
        ? report
        : report with { Object = report.Object with { Path = null, PathWithheld = true } };

    /// <summary>A stored report's JSON without its path (GetReport(s) for callers who may not see it).</summary>
    public static byte[] WithoutPath(ReadOnlySpan<byte> json)
    {
        var report = JsonNode.Parse(json)!.AsObject();
        if (report["object"] is not JsonObject obj || obj["path"] is not JsonValue pathValue)
            return json.ToArray();
        var text = pathValue.GetValue<string>();
        var bytes = obj["path_base64"] is JsonValue b64 ? Convert.FromBase64String(b64.GetValue<string>()) : System.Text.Encoding.UTF8.GetBytes(text);
        var escaped = new FsPath(bytes).Escaped;
        obj.Remove("path");
        obj.Remove("path_base64");
        obj["path_withheld"] = true;
        if (report["summary"] is JsonValue summary)
            report["summary"] = summary.GetValue<string>().Replace($" ({escaped})", "", StringComparison.Ordinal);
        return System.Text.Encoding.UTF8.GetBytes(report.ToJsonString());
    }
}
