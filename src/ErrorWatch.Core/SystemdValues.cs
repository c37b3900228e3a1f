using System.Globalization;
using System.Text;

namespace ErrorWatch;

/// <summary>
/// Value syntax as systemd unit files write it, so an admin needs to learn nothing new: time spans
/// ("30s", "5min", "1h 30min", "1.5h", "500ms", a bare number is seconds) as in systemd.time(7), and
/// booleans as parse_boolean() accepts them.
/// </summary>
public static class SystemdValues
{
    private const long UsecPerSecond = 1_000_000;

    /// <summary>Longer than any sensible interval or retention, short enough never to overflow a TimeSpan.</summary>
    public static readonly TimeSpan MaxTimeSpan = TimeSpan.FromDays(100 * 365.25);

    // systemd.time(7): months and years are the averages systemd uses (30.44 d, 365.25 d).
    private static readonly (string[] Names, long Usec)[] Units =
    [
        (["us", "usec", "µs", "μs"], 1),
        (["ms", "msec"], 1_000),
        (["s", "sec", "second", "seconds"], UsecPerSecond),
        (["m", "min", "minute", "minutes"], 60 * UsecPerSecond),
        (["h", "hr", "hour", "hours"], 3600 * UsecPerSecond),
        (["d", "day", "days"], 86_400 * UsecPerSecond),
        (["w", "week", "weeks"], 7 * 86_400 * UsecPerSecond),
        (["M", "month", "months"], 2_629_800 * UsecPerSecond),
        (["y", "year", "years"], 31_557_600 * UsecPerSecond),
    ];

    // What FormatTimeSpan writes, largest first; weeks, months and years would make "90d" unreadable.
    private static readonly (string Name, long Usec)[] FormatUnits =
    [
        ("d", 86_400 * UsecPerSecond), ("h", 3600 * UsecPerSecond), ("min", 60 * UsecPerSecond),
        ("s", UsecPerSecond), ("ms", 1_000), ("us", 1),
    ];

    /// <summary>Parses a time span with microsecond precision; <paramref name="error"/> says what is wrong otherwise.</summary>
    public static bool TryParseTimeSpan(string text, out TimeSpan value, out string error)
    {
        value = default;
        var s = text.AsSpan().Trim();
        if (s.IsEmpty)
        {
            error = "empty time span";
            return false;
        }
        if (s.SequenceEqual("infinity"))
        {
            error = "infinity is not allowed here";
            return false;
        }
        decimal total = 0;
        var i = 0;
        while (i < s.Length)
        {
            while (i < s.Length && char.IsWhiteSpace(s[i]))
                i++;
            if (i == s.Length)
                break;
            if (s[i] == '-')
            {
                error = $"negative time span {Quote(text)}";
                return false;
            }
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
                i++;
            var number = s[start..i];
            if (number.IsEmpty || number.Length > 20 || number.SequenceEqual(".")
                || !decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount))
            {
                error = $"{Quote(text)} is not a time span (e.g. 30s, 5min, 1h 30min, 500ms, 90d)";
                return false;
            }
            while (i < s.Length && char.IsWhiteSpace(s[i]))
                i++;
            start = i;
            while (i < s.Length && (char.IsAsciiLetter(s[i]) || s[i] is 'µ' or 'μ'))
                i++;
            var unit = s[start..i];
            long usecPerUnit = UsecPerSecond; // a bare number is seconds, as in systemd
            if (!unit.IsEmpty && !TryUnit(unit, out usecPerUnit))
            {
                error = $"unknown time unit {Quote(unit.ToString())} in {Quote(text)} (us, ms, s, min, h, d, w, M, y)";
                return false;
            }
            // Compared before multiplying: 20 digits of years would overflow even a decimal.
            var maxUsec = (decimal)(MaxTimeSpan.Ticks / TimeSpan.TicksPerMicrosecond);
            if (amount > maxUsec / usecPerUnit || (total += amount * usecPerUnit) > maxUsec)
            {
                error = $"time span {Quote(text)} is longer than 100 years";
                return false;
            }
        }
        value = TimeSpan.FromTicks((long)decimal.Truncate(total) * TimeSpan.TicksPerMicrosecond);
        error = "";
        return true;
    }

    private static bool TryUnit(ReadOnlySpan<char> unit, out long usec)
    {
        foreach (var (names, perUnit) in Units)
        {
            foreach (var name in names)
            {
                if (unit.SequenceEqual(name))
                {
                    usec = perUnit;
                    return true;
                }
            }
        }
        usec = 0;
        return false;
    }

    /// <summary>systemd style, exact to the microsecond: "30s", "1h 30min", "500ms", "90d", "0".</summary>
    public static string FormatTimeSpan(TimeSpan value)
    {
        var usec = value.Ticks / TimeSpan.TicksPerMicrosecond;
        if (usec <= 0)
            return "0";
        var sb = new StringBuilder();
        foreach (var (name, perUnit) in FormatUnits)
        {
            if (usec < perUnit)
                continue;
            if (sb.Length > 0)
                sb.Append(' ');
            sb.Append(CultureInfo.InvariantCulture, $"{usec / perUnit}{name}");
            usec %= perUnit;
        }
        return sb.ToString();
    }

    /// <summary>1/yes/y/true/t/on and 0/no/n/false/f/off, any case (systemd's parse_boolean).</summary>
    public static bool TryParseBoolean(string text, out bool value)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "1" or "yes" or "y" or "true" or "t" or "on":
                value = true;
                return true;
            case "0" or "no" or "n" or "false" or "f" or "off":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    private static string Quote(string value)
    {
        value = value.Trim();
        return "'" + (value.Length <= 60 ? value : value[..57] + "...") + "'";
    }

    public static string FormatBoolean(bool value) => value ? "yes" : "no";
}
