using System.CommandLine;
using System.Globalization;
using ErrorWatch.Configuration;

namespace ErrorWatch.Cli;

/// <summary>
/// The options of <c>errorwatch run</c> that override errorwatch.conf, one per key of
/// <see cref="SettingKeys"/> that names a <see cref="CommandLineOption"/>, checked by the key's own
/// syntax. A boolean key's option is a flag; a time span is given in seconds, as it always was;
/// a list option is repeatable and replaces the file's list.
/// </summary>
internal static class SettingOptions
{
    public static readonly IReadOnlyList<(SettingKey Key, Option Option)> All =
        SettingKeys.All.Where(k => k.Option is not null).Select(k => (k, Create(k))).ToArray();

    /// <summary>The option made for <paramref name="key"/>, for commands that share it (list and hooks take --state-dir).</summary>
    public static Option<TValue> Of<TValue>(SettingKey key) => (Option<TValue>)All.First(o => o.Key == key).Option;

    private static Option Create(SettingKey key)
    {
        var spec = key.Option!;
        var aliases = spec.Aliases.ToArray();
        if (spec.FlagSets is not null)
            return new Option<bool>(spec.Name, aliases) { Description = spec.Help };
        if (key.Kind == SettingKind.TimeSpan && key is SettingKey<TimeSpan> span)
            return Seconds(spec, aliases, span);
        if (key.Kind == SettingKind.List)
        {
            var list = new Option<string[]>(spec.Name, aliases) { Description = spec.Help };
            list.Validators.Add(result =>
            {
                foreach (var token in result.Tokens)
                {
                    var settings = new ErrorWatchSettings();
                    if (!key.TryOverride(ref settings, [token.Value], out var problem))
                        result.AddError($"{spec.Name}: {problem}");
                }
            });
            return list;
        }
        var option = new Option<string>(spec.Name, aliases) { Description = spec.Help };
        if (key.DefaultText is null)
            option.DefaultValueFactory = _ => key.FormattedDefault;
        if (key.Kind == SettingKind.Choice)
            option.HelpName = string.Join('|', key.Choices);
        option.Validators.Add(result =>
        {
            // Read the token, not the value: a missing one is the parser's error to report.
            if (result.Tokens.Count == 0)
                return;
            var settings = new ErrorWatchSettings();
            if (!key.TryOverride(ref settings, [Token(key, result.Tokens[^1].Value)], out var problem))
                result.AddError($"{spec.Name}: {problem}");
        });
        return option;
    }

    /// <summary>The command line has always taken intervals as seconds (--check-interval 0.5).</summary>
    private static Option<double> Seconds(CommandLineOption spec, string[] aliases, SettingKey<TimeSpan> key)
    {
        var option = new Option<double>(spec.Name, aliases) { Description = spec.Help, DefaultValueFactory = _ => key.Default.TotalSeconds };
        var (min, max) = key.Syntax.Bounds;
        option.Validators.Add(result =>
        {
            // Read the token, not the value: an unparseable one is the parser's error to report, and asking for its value throws.
            if (result.Tokens.Count == 0 || !double.TryParse(result.Tokens[^1].Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds))
                return;
            if (seconds < min.TotalSeconds || seconds > max.TotalSeconds || double.IsNaN(seconds))
                result.AddError(string.Create(CultureInfo.InvariantCulture, $"{spec.Name} must be between {min.TotalSeconds} and {max.TotalSeconds} seconds, not {seconds}"));
        });
        return option;
    }

    /// <summary>
    /// A value as the key's syntax reads it: choice words in any case (--log-level Warning, as the
    /// option always took it), a path relative to the working directory made absolute.
    /// </summary>
    private static string Token(SettingKey key, string value) =>
        key.Kind == SettingKind.Choice ? value.ToLowerInvariant()
        : key.Type == SettingSyntax.AbsolutePath.Type ? Path.GetFullPath(value)
        : value;

    /// <summary>Options given on the command line win over the configuration file.</summary>
    public static ErrorWatchSettings Override(ErrorWatchSettings settings, ParseResult parse)
    {
        foreach (var (key, option) in All)
        {
            if (parse.GetResult(option) is not { Implicit: false })
                continue;
            var overridden = option switch
            {
                Option<bool> flag => key is SettingKey<bool> b
                    ? b.Set(settings, parse.GetValue(flag) ? key.Option!.FlagSets!.Value : !key.Option!.FlagSets!.Value) : settings,
                Option<double> seconds => key is SettingKey<TimeSpan> span ? span.Set(settings, TimeSpan.FromSeconds(parse.GetValue(seconds))) : settings,
                Option<string[]> list => With(settings, key, parse.GetValue(list) ?? []),
                Option<string> text => With(settings, key, [Token(key, parse.GetValue(text)!)]),
                _ => settings,
            };
            settings = overridden;
        }
        return settings;
    }

    /// <summary>The value of <paramref name="key"/> the command line gives, else its default (for commands without a configuration file).</summary>
    public static T ValueOf<T>(ParseResult parse, SettingKey<T> key) => key.Get(Override(new ErrorWatchSettings(), parse));

    private static ErrorWatchSettings With(ErrorWatchSettings settings, SettingKey key, IReadOnlyList<string> values) =>
        // The option's validator has already refused what the key would refuse.
        key.TryOverride(ref settings, values, out var problem) ? settings : throw new InvalidOperationException($"{key}: {problem}");
}
