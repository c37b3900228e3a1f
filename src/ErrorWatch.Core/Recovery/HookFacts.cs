using System.Globalization;
using System.Text;
using System.Text.Json;
using ErrorWatch.Reports;

namespace ErrorWatch.Recovery;

/// <summary>
/// What a hook learns about one report: the ERRORWATCH_* variables for its fields, as exact bytes
/// (a path or mount point with a newline or invalid UTF-8 reaches the hook unchanged), and the
/// report's JSON for ERRORWATCH_REPORT_JSON. Kept in this form, not as the report, so that a run
/// recorded in the ledger can be run again after a restart exactly as it would have run before.
/// </summary>
public sealed class HookFacts
{
    private readonly List<(string Name, byte[] Value)> _variables;

    private HookFacts(string reportId, DateTimeOffset time, string eventWord, ulong count, string filesystem, List<(string, byte[])> variables, byte[] json)
    {
        ReportId = reportId;
        Time = time;
        Event = eventWord;
        Count = count;
        Filesystem = filesystem;
        _variables = variables;
        ReportJson = json;
    }

    public string ReportId { get; }
    public DateTimeOffset Time { get; }
    /// <summary>The ERRORWATCH_EVENT word (history, corruption, io, ..., or test).</summary>
    public string Event { get; }
    /// <summary>The report's error.count.</summary>
    public ulong Count { get; }
    /// <summary>Which filesystem, for "one run per hook per filesystem": uuid:UUID, else dev:MAJOR:MINOR.</summary>
    public string Filesystem { get; }
    public byte[] ReportJson { get; }

    /// <summary>The per-report variables, in a fixed order; values are bytes without NUL.</summary>
    public IReadOnlyList<(string Name, byte[] Value)> Variables => _variables;

    public byte[] Get(string name) => _variables.FirstOrDefault(v => v.Name == name).Value ?? [];

    public string GetText(string name) => Encoding.UTF8.GetString(Get(name));

    /// <summary>The filesystem key of a report: its UUID survives reboots and device renumbering; major:minor where there is none.</summary>
    public static string KeyOf(FilesystemInfo fs) => fs.Uuid is { } uuid ? "uuid:" + uuid : "dev:" + fs.MajorMinor;

    /// <param name="eventWord">ERRORWATCH_EVENT (test for errorwatch hooks test); null: <see cref="HookEvent.Of"/>.</param>
    public static HookFacts From(CorruptionReport r, string? eventWord = null)
    {
        eventWord ??= HookEvent.Of(r);
        var fs = r.Filesystem;
        var o = r.Object;
        var v = new List<(string, byte[])>(24);
        void Add(string name, string value) => v.Add(("ERRORWATCH_" + name, Encoding.UTF8.GetBytes(value)));
        void AddBytes(string name, ReadOnlySpan<byte> value) => v.Add(("ERRORWATCH_" + name, value.ToArray()));

        // Unknown values are empty rather than absent, so that hooks written with set -u still run.
        Add("REPORT_ID", r.Id);
        Add("TIME", Rfc3339(r.Time));
        Add("HOST", r.Host);
        Add("EVENT", eventWord);
        Add("SOURCE", r.Source);
        Add("SEVERITY", r.Severity.Word());
        Add("DEVICE", fs.Device);
        Add("MAJOR_MINOR", fs.MajorMinor.ToString());
        Add("UUID", fs.Uuid?.ToString() ?? "");
        Add("LABEL", fs.Label ?? "");
        Add("FSTYPE", fs.Type);
        AddBytes("MOUNTPOINT", fs.Mountpoints.Length > 0 ? fs.Mountpoints[0].Bytes : []);
        AddBytes("MOUNTPOINTS", Join(fs.Mountpoints.Select(m => m.Bytes.ToArray())));
        Add("ERRNO", r.Error.Errno.ToString(CultureInfo.InvariantCulture));
        Add("ERRNO_NAME", r.Error.Name);
        Add("ERROR_MEANING", r.Error.Meaning);
        Add("SCOPE", o.Scope);
        Add("INODE", o.Inode?.ToString(CultureInfo.InvariantCulture) ?? "");
        Add("GENERATION", o.Generation?.ToString(CultureInfo.InvariantCulture) ?? "");
        AddBytes("PATH", o.Path is { } path ? path.Bytes : []);
        Add("MESSAGE", Publishing.Journal.ReportJournal.OneLine(r.Summary));
        for (var i = 0; i < v.Count; i++)
            if (Array.IndexOf(v[i].Item2, (byte)0) >= 0) // execve ends a value at NUL; no report field should hold one
                v[i] = (v[i].Item1, v[i].Item2[..Array.IndexOf(v[i].Item2, (byte)0)]);
        return new HookFacts(r.Id, r.Time, eventWord, r.Error.Count, KeyOf(fs), v, Reports.ReportJson.Utf8Of(r).ToArray());
    }

    internal static string Rfc3339(DateTimeOffset time) => time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture);

    private static byte[] Join(IEnumerable<byte[]> parts)
    {
        var result = new List<byte>();
        foreach (var part in parts)
        {
            if (result.Count > 0)
                result.Add((byte)'\n');
            result.AddRange(part);
        }
        return [.. result];
    }

    /// <summary>The ledger's form: variables as base64 (any bytes), the report JSON embedded as it is.</summary>
    public void Write(Utf8JsonWriter w)
    {
        w.WriteString("report", ReportId);
        w.WriteString("time", Rfc3339(Time));
        w.WriteString("event", Event);
        w.WriteNumber("count", Count);
        w.WriteString("fs", Filesystem);
        w.WriteStartObject("env");
        foreach (var (name, value) in _variables)
            w.WriteBase64String(name, value);
        w.WriteEndObject();
        w.WritePropertyName("json");
        w.WriteRawValue(ReportJson, skipInputValidation: true);
    }

    /// <summary>Reads what <see cref="Write"/> wrote; null when something is missing.</summary>
    public static HookFacts? Read(JsonElement e)
    {
        if (!e.TryGetProperty("report", out var id) || !e.TryGetProperty("time", out var time) || !e.TryGetProperty("event", out var ev)
            || !e.TryGetProperty("count", out var count) || !e.TryGetProperty("fs", out var fs) || !e.TryGetProperty("env", out var env)
            || !e.TryGetProperty("json", out var json) || env.ValueKind != JsonValueKind.Object)
            return null;
        var variables = new List<(string, byte[])>();
        foreach (var p in env.EnumerateObject())
            variables.Add((p.Name, p.Value.GetBytesFromBase64()));
        return new HookFacts(id.GetString()!, time.GetDateTimeOffset(), ev.GetString()!, count.GetUInt64(), fs.GetString()!,
            variables, Encoding.UTF8.GetBytes(json.GetRawText()));
    }
}
