using System.Text.Json;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing;

/// <summary>One JSON object per line (JSON Lines), flushed per report so pipes see it at once.</summary>
public sealed class JsonLinesSink(Stream output) : IReportSink
{
    private readonly Lock _lock = new();

    public string Name => "json";

    public void Publish(CorruptionReport report)
    {
        var bytes = ReportJson.Utf8Of(report).Span;
        lock (_lock)
        {
            output.Write(bytes);
            output.WriteByte((byte)'\n');
            output.Flush();
        }
    }

    /// <summary>Writes any other line-shaped JSON object (the capability report) to the same stream.</summary>
    public void WriteObject(Action<Utf8JsonWriter> write)
    {
        lock (_lock)
        {
            using (var writer = new Utf8JsonWriter(output, ReportJson.Options))
                write(writer);
            output.WriteByte((byte)'\n');
            output.Flush();
        }
    }
}

/// <summary>One readable line per report.</summary>
public sealed class TextSink(TextWriter output) : IReportSink
{
    private readonly Lock _lock = new();

    public string Name => "text";

    public void Publish(CorruptionReport report)
    {
        var line = ReportText.Format(report);
        lock (_lock)
        {
            output.WriteLine(line);
            output.Flush();
        }
    }
}

/// <summary>Calls a delegate per report (tests, the demo's summary).</summary>
public sealed class CallbackSink(Action<CorruptionReport> callback, string name = "callback") : IReportSink
{
    public string Name => name;
    public void Publish(CorruptionReport report) => callback(report);
}
