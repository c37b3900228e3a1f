using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using ErrorWatch.Filesystems;

namespace ErrorWatch.Reports;

/// <summary>
/// Writes a report as one JSON object (schema: docs/report-schema.md). Paths that are not plain
/// text (invalid UTF-8, or noncharacters D-Bus refuses) are written C-escaped with the exact bytes
/// beside them in base64, so nothing is lost.
/// </summary>
public static class ReportJson
{
    public static readonly JsonWriterOptions Options = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping, // keeps é readable; still escapes controls, quotes, backslash
        Indented = false,
    };

    // Keyed by the report object: a `with` copy is another report and is encoded anew.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<CorruptionReport, byte[]> Encoded = new();

    /// <summary>
    /// The report's JSON, encoded once per report and shared by every output that needs it (the
    /// store, stdout, D-Bus, OTLP, hooks), instead of once per output on the decode thread.
    /// </summary>
    public static ReadOnlyMemory<byte> Utf8Of(CorruptionReport report) => Encoded.GetValue(report, ToUtf8);

    // One buffer and writer per thread that encodes (the decode and bus threads): a report then
    // allocates only its exact-size result, not a writer and a buffer grown by doubling (a storm
    // encodes thousands a second; docs/performance.md, footprint). One that grew past
    // KeptBufferBytes for a large report is not kept.
    private const int KeptBufferBytes = 64 << 10;
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    public static byte[] ToUtf8(CorruptionReport report)
    {
        var buffer = t_buffer ?? new ArrayBufferWriter<byte>(4096);
        var writer = t_writer ?? new Utf8JsonWriter(buffer, Options);
        // A report encoded while this one is (none today) gets its own.
        t_buffer = null;
        t_writer = null;
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        try
        {
            Write(writer, report);
            writer.Flush();
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            if (buffer.Capacity <= KeptBufferBytes)
                (t_buffer, t_writer) = (buffer, writer);
        }
    }

    public static void Write(Utf8JsonWriter w, CorruptionReport r)
    {
        w.WriteStartObject();
        w.WriteString("type", "report");
        w.WriteString("id", r.Id);
        Span<char> time = stackalloc char[32];
        r.Time.UtcDateTime.TryFormat(time, out var timeLength, "yyyy-MM-ddTHH:mm:ss.ffffffZ", System.Globalization.CultureInfo.InvariantCulture);
        w.WriteString("time", time[..timeLength]);
        w.WriteString("host", r.Host);
        w.WriteString("source", r.Source);
        w.WriteString("event", r.EventName);
        w.WriteString("severity", r.Severity.Word());
        w.WriteString("summary", r.Summary);
        if (r.Finding is { } finding) w.WriteString("finding", finding); else w.WriteNull("finding");

        var fs = r.Filesystem;
        w.WriteStartObject("filesystem");
        w.WriteString("device", fs.Device);
        w.WriteString("major_minor", fs.MajorMinor.ToString());
        if (fs.Uuid is { } uuid) w.WriteString("uuid", uuid.ToString()); else w.WriteNull("uuid");
        if (fs.Label is { } label) w.WriteString("label", label); else w.WriteNull("label");
        w.WriteString("type", fs.Type);
        w.WriteStartArray("mountpoints");
        foreach (var m in fs.Mountpoints)
            w.WriteStringValue(m.TextOrEscaped);
        w.WriteEndArray();
        w.WriteString("fsid", fs.Fsid);
        w.WriteEndObject();

        var e = r.Error;
        w.WriteStartObject("error");
        w.WriteNumber("errno", e.Errno);
        w.WriteNumber("raw_errno", e.RawErrno);
        w.WriteString("name", e.Name);
        w.WriteString("description", e.Description);
        w.WriteString("meaning", e.Meaning);
        if (e.Alias is { } alias) w.WriteString("alias", alias); else w.WriteNull("alias");
        w.WriteNumber("count", e.Count);
        if (!e.Folded.IsEmpty)
        {
            w.WriteStartObject("folded");
            foreach (var kv in e.Folded.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                w.WriteNumber(kv.Key, kv.Value);
            w.WriteEndObject();
        }
        w.WriteEndObject();

        var o = r.Object;
        w.WriteStartObject("object");
        w.WriteString("scope", o.Scope);
        WriteNumberOrNull(w, "inode", o.Inode);
        WriteNumberOrNull(w, "generation", o.Generation);
        if (o.ParentInode is { } parent)
            w.WriteNumber("parent_inode", parent);
        w.WriteString("handle_type", $"0x{o.HandleType:x}");
        w.WriteString("handle", o.Handle);
        WritePath(w, "path", o.Path);
        if (o.PathError is { } pathError) w.WriteString("path_error", pathError); else w.WriteNull("path_error");
        if (o.Deleted)
            w.WriteBoolean("deleted", true);
        if (o.HandleProblem is { } hp)
            w.WriteString("handle_problem", hp);
        if (o.PathWithheld)
            w.WriteBoolean("path_withheld", true);
        w.WriteEndObject();

        w.WriteString("decoder", r.Decoder);
        w.WritePropertyName("details");
        WriteDetails(w, r.Details);

        w.WriteStartObject("process");
        w.WriteNumber("pid", r.Pid);
        w.WriteBoolean("errorwatch", r.RaisedByErrorWatch);
        w.WriteEndObject();
        w.WriteNumber("kernel_events", r.KernelEvents);
        if (r.ParseProblem is { } problem)
            w.WriteString("parse_problem", problem);
        w.WriteEndObject();
    }

    public static void WritePath(Utf8JsonWriter w, string name, FsPath? path)
    {
        if (path is null)
        {
            w.WriteNull(name);
            return;
        }
        w.WriteString(name, path.TextOrEscaped);
        if (!path.IsPlainText) // the escaped form is not the name: the exact bytes go beside it
            w.WriteBase64String(name + "_base64", path.Bytes);
    }

    public static void WriteDetails(Utf8JsonWriter w, ReportDetails details)
    {
        w.WriteStartObject();
        foreach (var (key, value) in details.Items)
        {
            switch (value)
            {
                case string s: w.WriteString(key, s); break;
                case long l: w.WriteNumber(key, l); break;
                case ulong ul: w.WriteNumber(key, ul); break;
                case int i: w.WriteNumber(key, i); break;
                case uint ui: w.WriteNumber(key, ui); break;
                case bool b: w.WriteBoolean(key, b); break;
                case string[] array:
                    w.WriteStartArray(key);
                    foreach (var item in array)
                        w.WriteStringValue(item);
                    w.WriteEndArray();
                    break;
                case ReportDetails nested:
                    w.WritePropertyName(key);
                    WriteDetails(w, nested);
                    break;
            }
        }
        w.WriteEndObject();
    }

    private static void WriteNumberOrNull(Utf8JsonWriter w, string name, ulong? value)
    {
        if (value is { } v) w.WriteNumber(name, v); else w.WriteNull(name);
    }

    private static void WriteNumberOrNull(Utf8JsonWriter w, string name, uint? value)
    {
        if (value is { } v) w.WriteNumber(name, v); else w.WriteNull(name);
    }
}
