using System.Globalization;
using System.Text;
using Serilog.Core;
using Serilog.Events;

namespace ErrorWatch.Publishing.Journal;

/// <summary>
/// The daemon's own log into the journal: MESSAGE is the rendered message, PRIORITY the level, each
/// structured property its own field (ReportId becomes ERRORWATCH_REPORT_ID), so
/// <c>journalctl -t errorwatch ERRORWATCH_DEVICE=...</c> works for logs as for reports. Without
/// journald, lines go to the fallback writer (stderr) after one notice, as for reports.
/// </summary>
public sealed class JournaldLogSink(IJournal journal, JournalFallback? fallback = null) : ILogEventSink
{
    private readonly JournalFallback _fallback = fallback ?? new JournalFallback(what: "log messages");

    /// <summary>syslog priority as the .NET and Tmds.Systemd journald loggers map levels.</summary>
    public static int PriorityOf(LogEventLevel level) => level switch
    {
        LogEventLevel.Verbose or LogEventLevel.Debug => 7,
        LogEventLevel.Information => 6,
        LogEventLevel.Warning => 4,
        LogEventLevel.Error => 3,
        _ => 2,
    };

    public void Emit(LogEvent logEvent)
    {
        // TrySend never throws: a log sink must not throw into the code that logs.
        if (!journal.TrySend(() => ToEntry(logEvent), out var reason))
            _fallback.Write(TextLine(logEvent), reason);
    }

    public static JournalEntry ToEntry(LogEvent logEvent)
    {
        var e = new JournalEntry();
        e.Add("MESSAGE", logEvent.RenderMessage(CultureInfo.InvariantCulture));
        e.Add("PRIORITY", PriorityOf(logEvent.Level));
        e.Add("SYSLOG_IDENTIFIER", ReportJournal.SyslogIdentifier);
        e.Add("ERRORWATCH_MESSAGE_TEMPLATE", logEvent.MessageTemplate.Text);
        if (logEvent.Properties.TryGetValue("SourceContext", out var context) && context is ScalarValue { Value: string source })
            e.Add("CODE_FUNC", source); // the class that logged: the closest Serilog has to a code location
        foreach (var (name, value) in logEvent.Properties)
            e.Add(ReportJournal.Prefix + FieldName(name), ValueText(value));
        if (logEvent.Exception is { } exception)
            e.Add("ERRORWATCH_EXCEPTION", exception.ToString());
        return e;
    }

    /// <summary>A property name as a field name part: words of a PascalCase name split by '_' (ReportId becomes REPORT_ID, FSType FS_TYPE).</summary>
    public static string FieldName(string property)
    {
        var sb = new StringBuilder(property.Length + 4);
        for (var i = 0; i < property.Length; i++)
        {
            var c = property[i];
            if (i > 0 && char.IsAsciiLetterUpper(c))
            {
                var previous = property[i - 1];
                var nextIsLower = i + 1 < property.Length && char.IsAsciiLetterLower(property[i + 1]);
                if (char.IsAsciiLetterLower(previous) || char.IsAsciiDigit(previous) || (char.IsAsciiLetterUpper(previous) && nextIsLower))
                    sb.Append('_');
            }
            sb.Append(c);
        }
        return ReportJournal.FieldPart(sb.ToString());
    }

    /// <summary>Strings as they are (not quoted as in a rendered message), other values as Serilog renders them.</summary>
    private static string ValueText(LogEventPropertyValue value) => value switch
    {
        ScalarValue { Value: null } => "",
        ScalarValue { Value: string s } => s,
        ScalarValue { Value: IFormattable f } => f.ToString(null, CultureInfo.InvariantCulture),
        ScalarValue { Value: var v } => v.ToString() ?? "",
        _ => value.ToString(null, CultureInfo.InvariantCulture),
    };

    private static string TextLine(LogEvent logEvent)
    {
        var level = logEvent.Level switch
        {
            LogEventLevel.Verbose => "VRB",
            LogEventLevel.Debug => "DBG",
            LogEventLevel.Information => "INF",
            LogEventLevel.Warning => "WRN",
            LogEventLevel.Error => "ERR",
            _ => "FTL",
        };
        var line = $"{logEvent.Timestamp.ToString("HH:mm:ss.fff", CultureInfo.InvariantCulture)} {level} {logEvent.RenderMessage(CultureInfo.InvariantCulture)}";
        return logEvent.Exception is { } e ? line + Environment.NewLine + e : line;
    }
}
