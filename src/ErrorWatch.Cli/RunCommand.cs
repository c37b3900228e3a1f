using System.CommandLine;
using ErrorWatch.Configuration;
using ErrorWatch.Daemon;
using ErrorWatch.Publishing.Journal;
using Serilog.Core;

namespace ErrorWatch.Cli;

/// <summary>errorwatch run: the foreground daemon.</summary>
internal static class RunCommand
{
    public static readonly Option<string> Output = new("--output", "-o")
    {
        Description = "Reports on stdout as well: text (one line each), json (one JSON object per line), none, or auto (text on a terminal, else none)",
        DefaultValueFactory = _ => "auto",
    };

    /// <summary>Shared with list and hooks, which read the same store.</summary>
    public static readonly Option<string> StateDirectory = SettingOptions.Of<string>(SettingKeys.StoreDirectory);

    /// <summary>Shared with demo.</summary>
    public static readonly Option<string> LogLevel = SettingOptions.Of<string>(SettingKeys.LogLevel);

    public static Command Create()
    {
        var command = new Command("run", "Watch every ext4 and XFS filesystem and report each error the kernel announces")
        {
            Config, Output,
        };
        // The options that override errorwatch.conf, made from its key table.
        foreach (var (_, option) in SettingOptions.All)
            command.Options.Add(option);
        // AcceptOnlyFromAmong gives "Argument 'x' not recognized. Must be one of: ..." instead of a crash on a missing value.
        Output.AcceptOnlyFromAmong("auto", "text", "json", "none");
        command.SetAction(parse => Execute(parse));
        return command;
    }

    public static readonly Option<string?> Config = new("--config", "-c")
    {
        Description = "Configuration file (default: $CONFIGURATION_DIRECTORY/errorwatch.conf or /etc/errorwatch/errorwatch.conf, plus its .conf.d/ drop-ins); command-line options override it",
    };

    private static int Execute(ParseResult parse)
    {
        // The configuration first: a bad file is a clear error and a non-zero exit, before anything starts.
        var configPath = parse.GetValue(Config);
        var settings = ConfigurationLoader.Load(configPath, out var problems);
        if (problems.Count > 0)
        {
            foreach (var problem in problems)
                Console.Error.WriteLine($"errorwatch: {problem}");
            Console.Error.WriteLine($"errorwatch: not starting: {problems.Count} configuration problem(s); check with 'errorwatch check-config'");
            return 1;
        }
        settings = SettingOptions.Override(settings, parse);
        // Before anything is opened: this may execute the program again, which returns here in the new image.
        var privileges = Privileges.Shed(Privileges.Needed(settings));
        // What it creates names files (the store, the baseline, hooks/runs.log, a hook's report): private
        // whatever umask it inherits. The unit sets UMask=0077; sudo, a container or nohup pass 0022.
        // Hooks inherit it too, as they do under the unit.
        Interop.Libc.Umask(0x3F); // 0077

        var level = new LoggingLevelSwitch(settings.Log.Level);
        var journal = new SdJournal();
        var log = Logging.Create(level, journal);
        if (Interop.Libc.GetEuid() != 0)
            log.Warning("Not running as root: FAN_FS_ERROR marks need CAP_SYS_ADMIN, path resolution CAP_DAC_READ_SEARCH");
        if (privileges.Problem is { } notDropped)
            log.Warning("Capabilities: {Problem}; going on with them", notDropped);
        log.Information("Capabilities kept: {Capabilities}{How}", privileges.Held.ToString(),
            privileges.ReExecuted ? " (the others dropped by executing errorwatch again at startup)" : "");
        if (settings.Files.Count > 0)
            log.Information("Configuration from {Files}", string.Join(", ", settings.Files));

        var output = parse.GetValue(Output)!;
        if (output == "auto")
            output = Console.IsOutputRedirected ? "none" : "text";
        try
        {
            return Service.DaemonHost.Run(settings, configPath, parse, output, level, journal, log);
        }
        finally
        {
            (log as IDisposable)?.Dispose();
        }
    }
}
