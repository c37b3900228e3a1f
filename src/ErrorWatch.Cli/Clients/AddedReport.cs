using ErrorWatch.Bus;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Reports;
using ErrorWatch.Store;
using ErrorWatch.Publishing;

namespace ErrorWatch.Cli.Clients;

/// <summary>
/// One ReportAdded signal: the Filesystem object it is about and the report as a{sv}, which mirrors
/// the JSON report (docs/report-schema.md) minus its null fields (and the file's path unless the
/// service signals paths).
/// </summary>
public sealed record AddedReport(string FilesystemPath, IReadOnlyDictionary<string, object?> Fields)
{
    /// <summary>Reads the body of a ReportAdded signal, (o filesystem, a{sv} report).</summary>
    public static AddedReport Read(BusMessage signal)
    {
        var path = signal.ReadObjectPath();
        return new AddedReport(path, signal.ReadValue() as IReadOnlyDictionary<string, object?> ?? new Dictionary<string, object?>());
    }

    public string Id => Text(Fields, "id") ?? "";
    public string Event => Text(Fields, "event") ?? "";
    public string Summary => Text(Fields, "summary") ?? "";
    public DateTimeOffset? Time => DateTimeOffset.TryParse(Text(Fields, "time"), System.Globalization.CultureInfo.InvariantCulture, out var t) ? t : null;

    private IReadOnlyDictionary<string, object?> Filesystem =>
        Fields.TryGetValue("filesystem", out var fs) && fs is IReadOnlyDictionary<string, object?> d ? d : new Dictionary<string, object?>();

    public string Severity => Text(Fields, "severity") ?? "";
    public string Source => Text(Fields, "source") ?? "";

    public string Device => Text(Filesystem, "device") ?? "";
    public string FilesystemType => Text(Filesystem, "type") ?? "";

    public IReadOnlyList<string> Mountpoints =>
        Filesystem.TryGetValue("mountpoints", out var m) && m is List<object?> list ? [.. list.OfType<string>()] : [];

    /// <summary>The same identity the service keeps history under: UUID and device number together.</summary>
    public string FilesystemKey => FilesystemLedger.Key(Text(Filesystem, "uuid"), Text(Filesystem, "major_minor") ?? Device);

    /// <summary>error.count: errors of the kernel's count this report stands for (0 for state changes).</summary>
    public ulong ErrorCount =>
        Fields.TryGetValue("error", out var e) && e is IReadOnlyDictionary<string, object?> error && error.TryGetValue("count", out var c)
            ? c switch { long l when l > 0 => (ulong)l, ulong u => u, int i when i > 0 => (ulong)i, uint u => u, _ => 0 }
            : 0;

    /// <summary>Whether the report is about the filesystem an admin named (as <c>errorwatch list --filesystem</c> takes it).</summary>
    public bool IsOn(string wanted) =>
        ReportQuery.IsOn(Device, Text(Filesystem, "major_minor") ?? "", Text(Filesystem, "label"), Mountpoints,
            Guid.TryParse(Text(Filesystem, "uuid"), out var uuid) ? uuid : null, wanted);

    /// <summary>The report as one JSON object, members in the order of the signal.</summary>
    public byte[] ToJson() => BusValueJson.ToUtf8(Fields);

    private static string? Text(IReadOnlyDictionary<string, object?> d, string key) => d.TryGetValue(key, out var v) && v is string s ? s : null;
}
