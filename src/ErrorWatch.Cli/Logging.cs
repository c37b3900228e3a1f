using Serilog;
using Serilog.Events;

namespace ErrorWatch.Cli;

/// <summary>The daemon's own log: Serilog to stderr, so stdout carries only reports.</summary>
internal static class Logging
{
    public static ILogger Create(LogEventLevel level) => new LoggerConfiguration()
        .MinimumLevel.Is(level)
        .WriteTo.Console(
            standardErrorFromLevel: LogEventLevel.Verbose,
            outputTemplate: "{Timestamp:HH:mm:ss.fff} {Level:u3} {Message:lj}{NewLine}{Exception}")
        .CreateLogger();
}
