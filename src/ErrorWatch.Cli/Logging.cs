using ErrorWatch.Publishing.Journal;
using Serilog;
using Serilog.Events;

namespace ErrorWatch.Cli;

/// <summary>The daemon's own log: journald when it is reachable, the terminal when there is one.</summary>
internal static class Logging
{
    public static ILogger Create(LogEventLevel level, IJournal? journal = null) => Create(new Serilog.Core.LoggingLevelSwitch(level), journal);

    /// <param name="level">A switch, so that a configuration reload can change the level.</param>
    public static ILogger Create(Serilog.Core.LoggingLevelSwitch level, IJournal? journal = null)
    {
        var config = new LoggerConfiguration().MinimumLevel.ControlledBy(level);
        var toJournal = journal is { IsAvailable: true };
        if (toJournal)
            config = config.WriteTo.Sink(new JournaldLogSink(journal!));
        // Under systemd stderr is already the journal (JOURNAL_STREAM): writing both would log everything twice.
        if (!toJournal || !StderrIsJournal())
            config = config.WriteTo.Console(
                standardErrorFromLevel: LogEventLevel.Verbose,
                outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}");
        return config.CreateLogger();
    }

    /// <summary>
    /// A client command's notices on stderr, one plain line each ("errorwatch watch: ..."), so that
    /// stdout carries nothing but its output.
    /// </summary>
    public static ILogger ForCommand(string command, LogEventLevel level = LogEventLevel.Information) =>
        new LoggerConfiguration().MinimumLevel.Is(level)
            .WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose, outputTemplate: $"errorwatch {command}: {{Message:lj}}{{NewLine}}")
            .CreateLogger();

    /// <summary>$JOURNAL_STREAM is "dev:ino" of the stream systemd connected; it holds only if fd 2 is still that stream.</summary>
    private static bool StderrIsJournal()
    {
        var stream = Environment.GetEnvironmentVariable("JOURNAL_STREAM");
        if (string.IsNullOrEmpty(stream))
            return false;
        try
        {
            var target = new FileInfo("/proc/self/fd/2").LinkTarget;
            // socket:[ino] — the inode is the part that identifies the stream.
            var ino = stream.Split(':').ElementAtOrDefault(1);
            return target is not null && ino is not null && target == $"socket:[{ino}]";
        }
        catch (IOException)
        {
            return false;
        }
    }
}
