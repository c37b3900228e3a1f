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
        var fields = new JsonFields(w);
        ReportFields.Write(ref fields, r);
        w.WriteEndObject();
    }

    private readonly struct JsonFields(Utf8JsonWriter w) : IReportFieldWriter
    {
        public void StartObject(string name) => w.WriteStartObject(name);
        public void EndObject() => w.WriteEndObject();
        public void String(string name, string? value)
        {
            if (value is null) w.WriteNull(name); else w.WriteString(name, value);
        }
        public void String(string name, ReadOnlySpan<char> value) => w.WriteString(name, value);
        public void Number(string name, long value) => w.WriteNumber(name, value);
        public void Number(string name, ulong value) => w.WriteNumber(name, value);
        public void Boolean(string name, bool value) => w.WriteBoolean(name, value);
        public void StartStrings(string name) => w.WriteStartArray(name);
        public void StringItem(string value) => w.WriteStringValue(value);
        public void EndStrings() => w.WriteEndArray();
        public void Bytes(string name, ReadOnlySpan<byte> value) => w.WriteBase64String(name, value);
    }
}
