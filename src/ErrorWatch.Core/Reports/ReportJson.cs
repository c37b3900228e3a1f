using System.Buffers;
using System.Collections.Immutable;
using System.Text.Encodings.Web;
using System.Text.Json;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;

namespace ErrorWatch.Reports;

/// <summary>
/// Writes a report as one JSON object (schema: docs/report-schema.md), and reads one back
/// (<see cref="Read"/>: the store's records, replayed to an output after a restart). Paths that are
/// not plain text (invalid UTF-8, or noncharacters D-Bus refuses) are written C-escaped with the exact
/// bytes beside them in base64, so nothing is lost.
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
        public void Int32(string name, int value) => w.WriteNumber(name, value);
        public void UInt32(string name, uint value) => w.WriteNumber(name, value);
        public void Int64(string name, long value) => w.WriteNumber(name, value);
        public void UInt64(string name, ulong value) => w.WriteNumber(name, value);
        public void Boolean(string name, bool value) => w.WriteBoolean(name, value);
        public void StartStrings(string name) => w.WriteStartArray(name);
        public void StringItem(string value) => w.WriteStringValue(value);
        public void EndStrings() => w.WriteEndArray();
        public void Bytes(string name, ReadOnlySpan<byte> value) => w.WriteBase64String(name, value);
    }

    /// <summary>
    /// The report a record of <see cref="Write"/> holds: writing it again gives the same JSON. What the
    /// JSON does not carry stays at its default (the decode time).
    /// </summary>
    /// <exception cref="FormatException">Not a report's JSON; the message names the field.</exception>
    public static CorruptionReport Read(ReadOnlySpan<byte> json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray());
        }
        catch (JsonException e)
        {
            throw new ReportFormatException($"not JSON: {e.Message}", e);
        }
        using (doc)
        {
            try
            {
                return FromElement(doc.RootElement);
            }
            catch (Exception e) when (e is InvalidOperationException or OverflowException or FormatException and not ReportFormatException)
            {
                throw new ReportFormatException($"a report's field is not what ErrorWatch writes: {e.Message}", e);
            }
        }

        static CorruptionReport FromElement(JsonElement r)
        {
            if (r.ValueKind != JsonValueKind.Object || Text(r, "type") != "report")
                throw new ReportFormatException("not a report (its \"type\" is not \"report\")");
            var fs = Member(r, "filesystem");
            var error = Member(r, "error");
            var obj = Member(r, "object");
            var process = Member(r, "process");
            var path = OptionalText(obj, "path");
            return new CorruptionReport
            {
                Id = Text(r, "id"),
                Time = DateTimeOffset.TryParse(Text(r, "time"), System.Globalization.CultureInfo.InvariantCulture,
                    System.Globalization.DateTimeStyles.AssumeUniversal, out var time)
                    ? time.ToUniversalTime() : throw Bad("time"),
                Host = Text(r, "host"),
                Source = Text(r, "source"),
                Category = CategoryOf(Text(r, "event")),
                Severity = Text(r, "severity") switch
                {
                    "critical" => Severity.Critical,
                    "error" => Severity.Error,
                    "warning" => Severity.Warning,
                    _ => throw Bad("severity"),
                },
                Finding = OptionalText(r, "finding"),
                Filesystem = new FilesystemInfo
                {
                    Device = Text(fs, "device"),
                    MajorMinor = DeviceNumber.TryParse(Text(fs, "major_minor"), out var device) ? device : throw Bad("filesystem.major_minor"),
                    Uuid = OptionalText(fs, "uuid") is { } uuid ? Guid.TryParse(uuid, out var g) ? g : throw Bad("filesystem.uuid") : null,
                    Label = OptionalText(fs, "label"),
                    Type = Text(fs, "type"),
                    Mountpoints = fs.TryGetProperty("mountpoints_base64", out var exactMounts)
                        ? [.. exactMounts.EnumerateArray().Select(m => new FsPath(m.GetBytesFromBase64()))]
                        : [.. Member(fs, "mountpoints").EnumerateArray().Select(m => FsPath.FromString(m.GetString() ?? throw Bad("filesystem.mountpoints")))],
                    Fsid = Text(fs, "fsid"),
                },
                Error = new ErrorInfo
                {
                    Errno = Member(error, "errno").GetInt32(),
                    RawErrno = Member(error, "raw_errno").GetInt32(),
                    Name = Text(error, "name"),
                    Description = Text(error, "description"),
                    Meaning = Text(error, "meaning"),
                    Alias = OptionalText(error, "alias"),
                    Count = Member(error, "count").GetUInt64(),
                    Folded = error.TryGetProperty("folded", out var folded)
                        ? folded.EnumerateObject().ToImmutableDictionary(p => p.Name, p => p.Value.GetUInt64())
                        : ImmutableDictionary<string, ulong>.Empty,
                },
                Object = new ObjectInfo
                {
                    WholeFilesystem = Text(obj, "scope") == "filesystem",
                    Inode = OptionalNumber(obj, "inode"),
                    Generation = OptionalNumber(obj, "generation") is { } generation ? checked((uint)generation) : null,
                    ParentInode = OptionalNumber(obj, "parent_inode"),
                    HandleType = Text(obj, "handle_type") is ['0', 'x', .. var hex] && int.TryParse(hex, System.Globalization.NumberStyles.AllowHexSpecifier, null, out var handleType)
                        ? handleType : throw Bad("object.handle_type"),
                    Handle = Text(obj, "handle"),
                    Path = obj.TryGetProperty("path_base64", out var exact) ? new FsPath(exact.GetBytesFromBase64())
                        : path is null ? null : FsPath.FromString(path),
                    PathError = OptionalText(obj, "path_error"),
                    Deleted = obj.TryGetProperty("deleted", out var deleted) && deleted.GetBoolean(),
                    HandleProblem = OptionalText(obj, "handle_problem"),
                    PathWithheld = obj.TryGetProperty("path_withheld", out var withheld) && withheld.GetBoolean(),
                },
                Decoder = Text(r, "decoder"),
                Details = DetailsOf(Member(r, "details")),
                Pid = Member(process, "pid").GetInt32(),
                RaisedByErrorWatch = Member(process, "errorwatch").GetBoolean(),
                KernelEvents = Member(r, "kernel_events").GetInt32(),
                ParseProblem = OptionalText(r, "parse_problem"),
            };
        }

        static FormatException Bad(string field) => new ReportFormatException($"a report's \"{field}\" is missing or not what ErrorWatch writes");

        static JsonElement Member(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null ? value : throw Bad(name);

        static string Text(JsonElement parent, string name) =>
            Member(parent, name) is { ValueKind: JsonValueKind.String } value ? value.GetString()! : throw Bad(name);

        static string? OptionalText(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;

        static ulong? OptionalNumber(JsonElement parent, string name) =>
            parent.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number ? value.GetUInt64() : null;

        static ErrorCategory CategoryOf(string name)
        {
            foreach (var category in Enum.GetValues<ErrorCategory>())
                if (CorruptionReport.EventNameOf(category) == name)
                    return category;
            throw Bad("event");
        }

        static ReportDetails DetailsOf(JsonElement element)
        {
            var details = new ReportDetails();
            foreach (var property in element.EnumerateObject())
            {
                var value = property.Value;
                switch (value.ValueKind)
                {
                    case JsonValueKind.String: details.Set(property.Name, value.GetString()!); break;
                    case JsonValueKind.Number: details.Set(property.Name, value.TryGetInt64(out var l) ? l : value.GetUInt64()); break;
                    case JsonValueKind.True or JsonValueKind.False: details.Set(property.Name, value.GetBoolean()); break;
                    case JsonValueKind.Array: details.Set(property.Name, value.EnumerateArray().Select(i => i.GetString() ?? "").ToArray()); break;
                    case JsonValueKind.Object: details.Set(property.Name, DetailsOf(value)); break;
                }
            }
            return details;
        }
    }

    /// <summary>
    /// The <see cref="ReportFacts"/> of a report's JSON, read in one pass without building the report
    /// or a document (the ledger reads every stored report at start: docs/performance.md, store reads).
    /// A missing count is taken as 1 error.
    /// </summary>
    /// <exception cref="ReportFormatException">Not a report's JSON, or without its id, event or filesystem.</exception>
    public static ReportFacts ReadFacts(ReadOnlySpan<byte> json, DateTimeOffset time)
    {
        string? id = null, source = null, eventWord = null, fsType = null, majorMinor = null;
        Guid? uuid = null;
        ulong count = 1;
        try
        {
            var r = new Utf8JsonReader(json);
            if (!r.Read() || r.TokenType != JsonTokenType.StartObject)
                throw new ReportFormatException("not a report (not a JSON object)");
            while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
            {
                if (r.ValueTextEquals("id"u8)) id = NextString(ref r);
                else if (r.ValueTextEquals("source"u8)) source = NextString(ref r);
                else if (r.ValueTextEquals("event"u8)) eventWord = NextString(ref r);
                else if (r.ValueTextEquals("filesystem"u8) && r.Read() && r.TokenType == JsonTokenType.StartObject)
                {
                    while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                    {
                        if (r.ValueTextEquals("type"u8)) fsType = NextString(ref r);
                        else if (r.ValueTextEquals("major_minor"u8)) majorMinor = NextString(ref r);
                        else if (r.ValueTextEquals("uuid"u8))
                            uuid = NextString(ref r) is { } text ? Guid.TryParse(text, out var g) ? g : throw new ReportFormatException("a report's \"filesystem.uuid\" is not a UUID") : null;
                        else
                            SkipValue(ref r);
                    }
                }
                else if (r.ValueTextEquals("error"u8) && r.Read() && r.TokenType == JsonTokenType.StartObject)
                {
                    while (r.Read() && r.TokenType == JsonTokenType.PropertyName)
                    {
                        if (r.ValueTextEquals("count"u8) && r.Read() && r.TokenType == JsonTokenType.Number)
                            count = r.GetUInt64();
                        else
                            SkipValue(ref r);
                    }
                }
                else
                    SkipValue(ref r);
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException and not ReportFormatException)
        {
            throw new ReportFormatException($"not a report's JSON: {e.Message}", e);
        }
        if (id is null || eventWord is null || fsType is null || !DeviceNumber.TryParse(majorMinor, out var device))
            throw new ReportFormatException("a report's \"id\", \"event\", \"filesystem.type\" or \"filesystem.major_minor\" is missing");
        return new ReportFacts(id, time, source ?? "", eventWord, fsType, uuid, device, count);

        static string? NextString(ref Utf8JsonReader r) =>
            r.Read() && r.TokenType == JsonTokenType.String ? r.GetString() : SkipTo(ref r);

        static string? SkipTo(ref Utf8JsonReader r)
        {
            r.Skip();
            return null;
        }

        // On a property name: past its value (a nested object or array whole).
        static void SkipValue(ref Utf8JsonReader r)
        {
            r.Read();
            r.Skip();
        }
    }
}

/// <summary>JSON that is not a report as <see cref="ReportJson.Write"/> writes it; the message names what is wrong.</summary>
public sealed class ReportFormatException(string message, Exception? inner = null) : FormatException(message, inner);
