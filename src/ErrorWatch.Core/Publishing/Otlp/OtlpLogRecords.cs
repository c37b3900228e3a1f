using ErrorWatch.Publishing.Otlp.Proto;
using ErrorWatch.Reports;
using Google.Protobuf;

namespace ErrorWatch.Publishing.Otlp;

/// <summary>
/// Reports as OTLP log records (opentelemetry/proto/logs/v1): one record per report, its summary
/// the body, its severity the record's, and every report field an attribute named as in the JSON
/// with dots (<c>errorwatch.report.filesystem.device</c>), written from the report itself
/// (<see cref="ReportFields"/>). A report stored by an earlier run carries
/// <c>errorwatch.replayed=true</c>.
/// </summary>
internal sealed class OtlpLogRecords(IEnumerable<KeyValuePair<string, string>> resource)
{
    public const string ScopeName = "ErrorWatch.Reports";
    public const string Prefix = "errorwatch.report";
    public const string ReplayedAttribute = "errorwatch.replayed";

    private readonly Resource _resource = ResourceOf(resource);
    // Attribute names ("errorwatch.report.error.count"), made once rather than per record: a storm
    // sends thousands of records of the same few dozen names. Used by one thread (otlp-logs).
    private readonly Dictionary<(string Prefix, string Name), string> _names = new();
    private readonly Stack<string> _prefix = new();

    /// <summary>One request carrying <paramref name="records"/>, under ErrorWatch's resource and scope.</summary>
    public ExportLogsServiceRequest Request(IEnumerable<LogRecord> records)
    {
        var scope = new ScopeLogs { Scope = new InstrumentationScope { Name = ScopeName, Version = ProductVersion.Text } };
        scope.LogRecords.AddRange(records);
        var logs = new ResourceLogs { Resource = _resource };
        logs.ScopeLogs.Add(scope);
        var request = new ExportLogsServiceRequest();
        request.ResourceLogs.Add(logs);
        return request;
    }

    public LogRecord Record(CorruptionReport report, bool replayed, DateTimeOffset observed)
    {
        var record = new LogRecord
        {
            TimeUnixNano = UnixNanos(report.Time),
            ObservedTimeUnixNano = UnixNanos(observed),
            SeverityNumber = report.Severity switch
            {
                Severity.Critical => SeverityNumber.Fatal,
                Severity.Error => SeverityNumber.Error,
                _ => SeverityNumber.Warn,
            },
            SeverityText = report.Severity.Word(),
            Body = new AnyValue { StringValue = report.Summary },
        };
        _prefix.Clear();
        _prefix.Push(Prefix);
        var fields = new Attributes(record.Attributes, _prefix, _names);
        ReportFields.Write(ref fields, report);
        if (replayed)
            record.Attributes.Add(new KeyValue { Key = ReplayedAttribute, Value = new AnyValue { BoolValue = true } });
        return record;
    }

    private static ulong UnixNanos(DateTimeOffset time) => (ulong)Math.Max(0, (time - DateTimeOffset.UnixEpoch).Ticks) * 100;

    private static Resource ResourceOf(IEnumerable<KeyValuePair<string, string>> attributes)
    {
        var resource = new Resource();
        foreach (var (key, value) in attributes)
            resource.Attributes.Add(new KeyValue { Key = key, Value = new AnyValue { StringValue = value } });
        return resource;
    }

    /// <summary>Report fields as flat attributes: objects become a dotted prefix, a null is left out.</summary>
    private readonly struct Attributes(Google.Protobuf.Collections.RepeatedField<KeyValue> into, Stack<string> prefix,
        Dictionary<(string Prefix, string Name), string> names) : IReportFieldWriter
    {
        private string Name(string name)
        {
            var key = (prefix.Peek(), name);
            if (names.TryGetValue(key, out var dotted))
                return dotted;
            dotted = key.Item1 + "." + name;
            // The names are the schema's, a few dozen; the bound is for detail keys nobody foresaw.
            if (names.Count < 4096)
                names[key] = dotted;
            return dotted;
        }

        private void Add(string name, AnyValue value) => into.Add(new KeyValue { Key = Name(name), Value = value });

        public void StartObject(string name) => prefix.Push(Name(name));
        public void EndObject() => prefix.Pop();

        public void String(string name, string? value)
        {
            if (value is not null)
                Add(name, new AnyValue { StringValue = value });
        }

        public void String(string name, ReadOnlySpan<char> value) => Add(name, new AnyValue { StringValue = value.ToString() });
        public void Int32(string name, int value) => Add(name, new AnyValue { IntValue = value });
        public void UInt32(string name, uint value) => Add(name, new AnyValue { IntValue = value });
        public void Int64(string name, long value) => Add(name, new AnyValue { IntValue = value });

        // OTLP integers are int64: a larger one (an inode number near 2^64) is kept exact as text.
        public void UInt64(string name, ulong value) =>
            Add(name, value <= long.MaxValue ? new AnyValue { IntValue = (long)value } : new AnyValue { StringValue = value.ToString(System.Globalization.CultureInfo.InvariantCulture) });

        public void Boolean(string name, bool value) => Add(name, new AnyValue { BoolValue = value });

        public void StartStrings(string name)
        {
            var array = new AnyValue { ArrayValue = new ArrayValue() };
            Add(name, array);
            _arrays.Push(array.ArrayValue);
        }

        public void StringItem(string value) => _arrays.Peek().Values.Add(new AnyValue { StringValue = value });

        public void EndStrings() => _arrays.Pop();

        public void Bytes(string name, ReadOnlySpan<byte> value) => Add(name, new AnyValue { BytesValue = ByteString.CopyFrom(value) });

        private readonly Stack<ArrayValue> _arrays = new();
    }
}
