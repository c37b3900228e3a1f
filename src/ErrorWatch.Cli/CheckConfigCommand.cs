using System.CommandLine;
using ErrorWatch.Configuration;

namespace ErrorWatch.Cli;

/// <summary>errorwatch check-config: reads the configuration as the daemon would and says what it makes of it.</summary>
internal static class CheckConfigCommand
{
    private static readonly Option<string?> Config = new("--config", "-c")
    {
        Description = "Configuration file to check, with its drop-ins FILE.d/*.conf (default: $CONFIGURATION_DIRECTORY/errorwatch.conf, else /etc/errorwatch/errorwatch.conf)",
    };

    private static readonly Option<bool> Keys = new("--keys")
    {
        Description = "Print every key instead: its section, default, values, whether a reload applies it, its run option and meaning",
    };

    /// <summary>For maintainers: docs/configuration.md's key reference, which a test compares with the table.</summary>
    private static readonly Option<bool> KeysMarkdown = new("--keys-markdown") { Hidden = true };

    public static Command Create()
    {
        var command = new Command("check-config", "Check errorwatch.conf and its drop-ins: print the effective settings, or each problem as FILE:LINE and exit 1")
        {
            Config, Keys, KeysMarkdown,
        };
        command.SetAction(parse =>
        {
            if (parse.GetValue(KeysMarkdown))
            {
                Console.Out.Write(SettingKeys.ToMarkdown());
                return 0;
            }
            if (parse.GetValue(Keys))
            {
                Console.Out.Write(SettingKeys.ToText());
                return 0;
            }
            return Execute(parse.GetValue(Config));
        });
        return command;
    }

    private static int Execute(string? path)
    {
        var settings = ConfigurationLoader.Load(path, out var problems);
        if (problems.Count > 0)
        {
            foreach (var problem in problems)
                Console.Error.WriteLine(problem);
            Console.Error.WriteLine($"{problems.Count} problem(s) in the configuration");
            return 1;
        }
        Console.Out.WriteLine(settings.Files.Count == 0
            ? $"OK: no configuration file ({ConfigurationLoader.DefaultPath(Environment.GetEnvironmentVariable("CONFIGURATION_DIRECTORY"))} is absent), defaults apply"
            : "OK: " + string.Join(' ', settings.Files));
        Console.Out.WriteLine();
        Console.Out.Write(settings.ToConfigurationText());
        return 0;
    }
}
