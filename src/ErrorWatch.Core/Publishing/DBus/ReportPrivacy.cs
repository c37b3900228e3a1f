using System.Text.Json;
using System.Text.Json.Nodes;
using ErrorWatch.Filesystems;

namespace ErrorWatch.Publishing.DBus;

/// <summary>
/// Takes the file's path out of a report for audiences that should not see it (every local user
/// receives broadcast signals; a path under someone's home says what they keep there). The path
/// is in object.path, object.path_base64 and, in brackets, in the summary.
/// </summary>
public static class ReportPrivacy
{
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
