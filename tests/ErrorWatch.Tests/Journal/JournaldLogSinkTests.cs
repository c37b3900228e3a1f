using ErrorWatch.Publishing.Journal;
using Serilog;
using Serilog.Events;

namespace ErrorWatch.Tests.Journal;

/// <summary>The daemon's own log as journal entries.</summary>
public class JournaldLogSinkTests
{
    [Theory]
    [InlineData(LogEventLevel.Verbose, 7)]
    [InlineData(LogEventLevel.Debug, 7)]
    [InlineData(LogEventLevel.Information, 6)]
    [InlineData(LogEventLevel.Warning, 4)]
    [InlineData(LogEventLevel.Error, 3)]
    [InlineData(LogEventLevel.Fatal, 2)]
    public void Priority_FollowsLevel(LogEventLevel level, int priority)
    {
        Assert.Equal(priority, JournaldLogSink.PriorityOf(level));
        var journal = new RecordingJournal();
        using var logger = new LoggerConfiguration().MinimumLevel.Verbose().WriteTo.Sink(new JournaldLogSink(journal)).CreateLogger();
        logger.Write(level, "m");
        Assert.Equal(priority.ToString(), Assert.Single(journal.Sent).Entry.GetText("PRIORITY"));
    }

    [Fact]
    public void Properties_ExceptionAndSourceContext_BecomeFields()
    {
        var journal = new RecordingJournal();
        using var logger = new LoggerConfiguration().WriteTo.Sink(new JournaldLogSink(journal)).CreateLogger();
        var exception = new IOException("disk gone");
        logger.ForContext("SourceContext", "ErrorWatch.Watching.Watcher")
            .Warning(exception, "Lost {Count} events on {MajorMinor} for {FSType}, ids {Ids}", 3, "8:17", "ext4", new[] { 1, 2 });

        var e = Assert.Single(journal.Sent).Entry;
        Assert.Equal("Lost 3 events on \"8:17\" for \"ext4\", ids [1, 2]", e.GetText("MESSAGE"));
        Assert.Equal("4", e.GetText("PRIORITY"));
        Assert.Equal("errorwatch", e.GetText("SYSLOG_IDENTIFIER"));
        Assert.Equal("3", e.GetText("ERRORWATCH_COUNT"));
        Assert.Equal("8:17", e.GetText("ERRORWATCH_MAJOR_MINOR"));
        Assert.Equal("ext4", e.GetText("ERRORWATCH_FS_TYPE"));
        Assert.Equal("[1, 2]", e.GetText("ERRORWATCH_IDS"));
        Assert.Equal("ErrorWatch.Watching.Watcher", e.GetText("CODE_FUNC"));
        Assert.Equal("ErrorWatch.Watching.Watcher", e.GetText("ERRORWATCH_SOURCE_CONTEXT"));
        Assert.Equal(exception.ToString(), e.GetText("ERRORWATCH_EXCEPTION"));
        Assert.Equal("Lost {Count} events on {MajorMinor} for {FSType}, ids {Ids}", e.GetText("ERRORWATCH_MESSAGE_TEMPLATE"));
        Assert.All(e.Fields, f => Assert.True(JournalEntry.IsValidName(f.Name), f.Name));
    }

    [Theory]
    [InlineData("ReportId", "REPORT_ID")]
    [InlineData("FSType", "FS_TYPE")]
    [InlineData("errno", "ERRNO")]
    [InlineData("Ext4Errors", "EXT4_ERRORS")]
    [InlineData("already_snake", "ALREADY_SNAKE")]
    [InlineData("with-dash", "WITH_DASH")]
    public void PropertyNames_BecomeFieldNames(string property, string field) =>
        Assert.Equal(field, JournaldLogSink.FieldName(property));

    [Fact]
    public void NoJournal_WritesLines_WithOneNotice()
    {
        var output = new LineWriter();
        using var logger = new LoggerConfiguration()
            .WriteTo.Sink(new JournaldLogSink(new RecordingJournal { IsAvailable = false }, new JournalFallback(output, what: "log messages")))
            .CreateLogger();
        logger.Information("one");
        logger.Warning("two");

        var lines = output.Lines;
        Assert.Equal(3, lines.Length);
        Assert.Equal("errorwatch: journald is not reachable (/run/systemd/journal/socket missing); log messages go to stderr", lines[0]);
        Assert.EndsWith(" INF one", lines[1]);
        Assert.EndsWith(" WRN two", lines[2]);
    }
}
