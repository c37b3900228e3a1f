using ErrorWatch.Filesystems;

namespace ErrorWatch.Reports;

/// <summary>
/// Where a report's fields go, one encoding each: the JSON of the store, stdout and hooks
/// (<see cref="ReportJson"/>), and D-Bus <c>a{sv}</c> (Publishing/DBus/ReportVariant). A struct,
/// so <see cref="ReportFields.Write{TWriter}"/> is compiled once per encoding with direct calls.
/// A null string is a JSON null, and absent from an <c>a{sv}</c> (which has no null). Each integer
/// field has one width and sign, whatever its value, so that an encoding with types (D-Bus: i, u,
/// x, t) gives a key one type everywhere.
/// </summary>
public interface IReportFieldWriter
{
    void StartObject(string name);
    void EndObject();
    void String(string name, string? value);
    void String(string name, ReadOnlySpan<char> value);
    /// <summary>D-Bus <c>i</c>.</summary>
    void Int32(string name, int value);
    /// <summary>D-Bus <c>u</c>.</summary>
    void UInt32(string name, uint value);
    /// <summary>D-Bus <c>x</c>.</summary>
    void Int64(string name, long value);
    /// <summary>D-Bus <c>t</c>.</summary>
    void UInt64(string name, ulong value);
    void Boolean(string name, bool value);
    /// <summary>An array of strings (possibly empty): <see cref="StringItem"/> for each, then <see cref="EndStrings"/>.</summary>
    void StartStrings(string name);
    void StringItem(string value);
    void EndStrings();
    /// <summary>Exact bytes beside a text that could not hold them (base64 in JSON and on D-Bus).</summary>
    void Bytes(string name, ReadOnlySpan<byte> value);
}

/// <summary>
/// The report's schema (docs/report-schema.md): every field, its name, its order and when it is
/// present, in one place for every encoding.
/// </summary>
public static class ReportFields
{
    public static void Write<TWriter>(ref TWriter w, CorruptionReport r) where TWriter : struct, IReportFieldWriter
    {
        w.String("type", "report");
        w.String("id", r.Id);
        Span<char> time = stackalloc char[32];
        r.Time.UtcDateTime.TryFormat(time, out var timeLength, "yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture);
        w.String("time", time[..timeLength]);
        w.String("host", r.Host);
        w.String("source", r.Source);
        w.String("event", r.EventName);
        w.String("severity", r.Severity.Word());
        w.String("summary", r.Summary);
        w.String("finding", r.Finding);

        var fs = r.Filesystem;
        w.StartObject("filesystem");
        w.String("device", fs.Device);
        w.String("major_minor", fs.MajorMinor.ToString());
        w.String("uuid", fs.Uuid?.ToString());
        w.String("label", fs.Label);
        w.String("type", fs.Type);
        w.StartStrings("mountpoints");
        foreach (var mountpoint in fs.Mountpoints)
            w.StringItem(mountpoint.TextOrEscaped);
        w.EndStrings();
        // Exact bytes beside a list with a mount point that is not plain text, as object.path_base64 is
        // beside the path: the store's copy must give back the same report (its summary names the mount).
        if (fs.Mountpoints.Any(m => !m.IsPlainText))
        {
            w.StartStrings("mountpoints_base64");
            foreach (var mountpoint in fs.Mountpoints)
                w.StringItem(Convert.ToBase64String(mountpoint.Bytes));
            w.EndStrings();
        }
        w.String("fsid", fs.Fsid);
        w.EndObject();

        var e = r.Error;
        w.StartObject("error");
        w.Int32("errno", e.Errno);
        w.Int32("raw_errno", e.RawErrno);
        w.String("name", e.Name);
        w.String("description", e.Description);
        w.String("meaning", e.Meaning);
        w.String("alias", e.Alias);
        w.UInt64("count", e.Count);
        if (!e.Folded.IsEmpty)
        {
            w.StartObject("folded");
            foreach (var kv in e.Folded.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                w.UInt64(kv.Key, kv.Value);
            w.EndObject();
        }
        w.EndObject();

        var o = r.Object;
        w.StartObject("object");
        w.String("scope", o.Scope);
        if (o.Inode is { } inode) w.UInt64("inode", inode); else w.String("inode", null);
        if (o.Generation is { } generation) w.UInt32("generation", generation); else w.String("generation", null);
        if (o.ParentInode is { } parent)
            w.UInt64("parent_inode", parent);
        Span<char> handleType = stackalloc char[10];
        "0x".CopyTo(handleType);
        o.HandleType.TryFormat(handleType[2..], out var handleTypeLength, "x", System.Globalization.CultureInfo.InvariantCulture);
        w.String("handle_type", handleType[..(2 + handleTypeLength)]);
        w.String("handle", o.Handle);
        Path(ref w, "path", o.Path);
        w.String("path_error", o.PathError);
        if (o.Deleted)
            w.Boolean("deleted", true);
        if (o.HandleProblem is { } hp)
            w.String("handle_problem", hp);
        if (o.PathWithheld)
            w.Boolean("path_withheld", true);
        w.EndObject();

        w.String("decoder", r.Decoder);
        Details(ref w, "details", r.Details);

        w.StartObject("process");
        w.Int32("pid", r.Pid);
        w.Boolean("errorwatch", r.RaisedByErrorWatch);
        w.EndObject();
        w.Int32("kernel_events", r.KernelEvents);
        if (r.ParseProblem is { } problem)
            w.String("parse_problem", problem);
    }

    /// <summary>A path as text, C-escaped when it is not plain text, with its exact bytes beside it then.</summary>
    private static void Path<TWriter>(ref TWriter w, string name, FsPath? path) where TWriter : struct, IReportFieldWriter
    {
        if (path is null)
        {
            w.String(name, null);
            return;
        }
        w.String(name, path.TextOrEscaped);
        if (!path.IsPlainText)
            w.Bytes(name + "_base64", path.Bytes);
    }

    private static void Details<TWriter>(ref TWriter w, string name, ReportDetails details) where TWriter : struct, IReportFieldWriter
    {
        w.StartObject(name);
        foreach (var (key, value) in details.Items)
        {
            switch (value)
            {
                case string s: w.String(key, s); break;
                case long l: w.Int64(key, l); break;
                case ulong ul: w.UInt64(key, ul); break;
                case bool b: w.Boolean(key, b); break;
                case string[] array:
                    w.StartStrings(key);
                    foreach (var item in array)
                        w.StringItem(item);
                    w.EndStrings();
                    break;
                case ReportDetails nested: Details(ref w, key, nested); break;
            }
        }
        w.EndObject();
    }
}
