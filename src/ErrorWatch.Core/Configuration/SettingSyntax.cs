using System.Collections.ObjectModel;
using System.Globalization;

namespace ErrorWatch.Configuration;

/// <summary>What kind of value a key takes: decides how the command line offers it and how the docs name it.</summary>
public enum SettingKind
{
    Boolean,
    TimeSpan,
    Integer,
    /// <summary>One word from a fixed set.</summary>
    Choice,
    /// <summary>A string checked by its own rule (a path, a URL, an address).</summary>
    Text,
    /// <summary>systemd list semantics: each assignment adds, an empty one resets.</summary>
    List,
}

/// <summary>Reads a value as written in errorwatch.conf, or says why it is not one.</summary>
public delegate bool SettingParser<T>(string value, out T result, out string problem);

/// <summary>
/// How one key's value is written: its parser (with the problem message a bad value gets), its
/// formatter (check-config, which parses back), and what the docs say about it. Lists are parsed
/// an item at a time: <see cref="TryParse"/> checks one item, the list semantics are the loader's.
/// </summary>
public sealed class SettingSyntax<T>(SettingKind kind, string type, string? values, SettingParser<T> parse, Func<T, string> format)
{
    public SettingKind Kind { get; } = kind;
    /// <summary>The docs' name for the type: boolean, time span, whole number, ...</summary>
    public string Type { get; } = type;
    /// <summary>The docs' allowed values or range ("100ms..1d", "auto, mountinfo"), or null.</summary>
    public string? Values { get; } = values;
    /// <summary>The choice words, for the command line's help and check.</summary>
    public IReadOnlyList<string> Choices { get; internal init; } = ReadOnlyCollection<string>.Empty;
    /// <summary>A time span's bounds, for the command line (which takes seconds).</summary>
    public (TimeSpan Min, TimeSpan Max) Bounds { get; internal init; }
    /// <summary>A list's word for "no items" (Listen=none), or null.</summary>
    public string? NoneWord { get; internal init; }

    public bool TryParse(string value, out T result, out string problem) => parse(value, out result, out problem);

    public string Format(T value) => format(value);
}

/// <summary>The syntaxes keys share; each keeps the problem messages the loader has always given.</summary>
public static class SettingSyntax
{
    public static readonly SettingSyntax<bool> Boolean = new(SettingKind.Boolean, "boolean", "yes, no",
        (string value, out bool result, out string problem) =>
        {
            problem = SystemdValues.TryParseBoolean(value, out result) ? "" : $"{Quote(value)} is not a boolean (yes, no, true, false, on, off, 1, 0)";
            return problem.Length == 0;
        },
        SystemdValues.FormatBoolean);

    public static SettingSyntax<TimeSpan> Span(TimeSpan min, TimeSpan max) =>
        new(SettingKind.TimeSpan, "time span",
            max == SystemdValues.MaxTimeSpan ? $"at least {SystemdValues.FormatTimeSpan(min)}" : $"{SystemdValues.FormatTimeSpan(min)}..{SystemdValues.FormatTimeSpan(max)}",
            (string value, out TimeSpan result, out string problem) =>
            {
                if (!SystemdValues.TryParseTimeSpan(value, out result, out problem))
                    return false;
                problem = result < min || result > max
                    ? $"{SystemdValues.FormatTimeSpan(result)} is outside {SystemdValues.FormatTimeSpan(min)}..{SystemdValues.FormatTimeSpan(max)}"
                    : "";
                return problem.Length == 0;
            },
            SystemdValues.FormatTimeSpan)
        { Bounds = (min, max) };

    public static SettingSyntax<int> Integer(int min, int max) =>
        new(SettingKind.Integer, "whole number", max == int.MaxValue ? $"{min} or more" : $"{min}..{max}",
            (string value, out int result, out string problem) =>
            {
                result = 0;
                // Digits only: no sign, no thousands separators, no 0x.
                if (value.Length == 0 || !value.All(char.IsAsciiDigit))
                {
                    problem = $"{Quote(value)} is not a whole number";
                    return false;
                }
                // A whole number all the same, only too large to parse: out of range, as a smaller one would be.
                if (value.Length > 18 || !long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                {
                    problem = $"{Quote(value)} is outside {min}..{max}";
                    return false;
                }
                if (n < min || n > max)
                {
                    problem = $"{n} is outside {min}..{max}";
                    return false;
                }
                result = (int)n;
                problem = "";
                return true;
            },
            n => n.ToString(CultureInfo.InvariantCulture));

    /// <summary>One of <paramref name="choices"/>, written exactly; <paramref name="canonical"/> maps other spellings first.</summary>
    public static SettingSyntax<T> Choice<T>((string Name, T Value)[] choices, Func<string, string>? canonical = null)
    {
        var names = string.Join(", ", choices.Select(c => c.Name));
        return new SettingSyntax<T>(SettingKind.Choice, "one of", names,
            (string value, out T result, out string problem) =>
            {
                var word = canonical is null ? value : canonical(value);
                foreach (var (name, v) in choices)
                {
                    if (word == name)
                    {
                        result = v;
                        problem = "";
                        return true;
                    }
                }
                result = default!;
                problem = $"{Quote(word)} is not one of {names}";
                return false;
            },
            v => Array.Find(choices, c => EqualityComparer<T>.Default.Equals(c.Value, v)).Name ?? v?.ToString() ?? "")
        { Choices = Array.AsReadOnly(choices.Select(c => c.Name).ToArray()) };
    }

    /// <summary>A string checked by <paramref name="invalid"/> (why it is not one, or null).</summary>
    public static SettingSyntax<string> Text(string type, string? values, Func<string, string?> invalid) =>
        new(SettingKind.Text, type, values,
            (string value, out string result, out string problem) =>
            {
                result = value;
                problem = invalid(value) ?? "";
                return problem.Length == 0;
            },
            v => v);

    /// <summary>Text whose reset is "unset" (null), not a default string.</summary>
    public static SettingSyntax<string?> OptionalText(string type, string? values, Func<string, string?> invalid) =>
        new(SettingKind.Text, type, values,
            (string value, out string? result, out string problem) =>
            {
                result = value;
                problem = invalid(value) ?? "";
                return problem.Length == 0;
            },
            v => v ?? "");

    public static readonly SettingSyntax<string> AbsolutePath =
        Text("path", "absolute", value => value.StartsWith('/') ? null : $"{Quote(value)} is not an absolute path");

    /// <summary>A list whose items <paramref name="invalid"/> checks; <paramref name="none"/>, when given, is the word for no items.</summary>
    public static SettingSyntax<IReadOnlyList<string>> List(string type, Func<string, string?> invalid, string? none = null) =>
        new(SettingKind.List, "list", type,
            (string item, out IReadOnlyList<string> result, out string problem) =>
            {
                result = [item];
                problem = invalid(item) ?? "";
                return problem.Length == 0;
            },
            items => items.Count == 0 && none is not null ? none : ErrorWatchSettings.List(items))
        { NoneWord = none };

    /// <summary>A value as problem messages quote it, cut short when long.</summary>
    internal static string Quote(string value) => "'" + (value.Length <= 60 ? value : value[..57] + "...") + "'";
}
