using System.Text;

namespace ErrorWatch.Recovery;

/// <summary>
/// % specifiers in a rule's Exec= arguments and Unit= name, filled in from the run's report:
/// %m mount point, %d device, %u UUID, %t filesystem type, %i report id, %e event, %% a percent sign.
/// In Exec= arguments they become the exact bytes (each argument stays one argv entry: there is no
/// shell to split or interpret it); in Unit= names, %m and %d are escaped as
/// <c>systemd-escape --path</c> does, so that <c>xfs_scrub@%m.service</c> names the same instance
/// systemd's own tools use (/srv/data is srv-data).
/// </summary>
public static class HookSpecifiers
{
    public const string Known = "%m %d %u %t %i %e %%";

    private static readonly string[] UnitTypes =
        ["service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope"];

    /// <summary>systemd's VALID_CHARS for unit names (unit-name.c), '-' and '\' aside: those are escaped.</summary>
    private static bool Plain(byte c) => c is (>= (byte)'0' and <= (byte)'9') or (>= (byte)'a' and <= (byte)'z') or (>= (byte)'A' and <= (byte)'Z') or (byte)':' or (byte)'_' or (byte)'.';

    /// <summary>Why <paramref name="argument"/> cannot be an Exec= argument, or null.</summary>
    public static string? InvalidArgument(string argument)
    {
        for (var i = 0; i < argument.Length; i++)
        {
            if (argument[i] != '%')
                continue;
            if (i + 1 >= argument.Length || "mdutie%".IndexOf(argument[i + 1]) < 0)
                return $"unknown specifier '{argument.Substring(i, Math.Min(2, argument.Length - i))}' in '{argument}' (known: {Known})";
            i++;
        }
        return null;
    }

    /// <summary>Why <paramref name="unit"/> cannot be a Unit= name, or null.</summary>
    public static string? InvalidUnit(string unit)
    {
        if (InvalidArgument(unit) is { } bad)
            return bad;
        var at = unit.IndexOf('@');
        var dot = unit.LastIndexOf('.');
        if (dot <= 0 || Array.IndexOf(UnitTypes, unit[(dot + 1)..]) < 0)
            return $"'{unit}' is not a unit name: it must end in .service, .target, .timer, ... (e.g. xfs_scrub@%m.service)";
        var prefix = at < 0 ? unit[..dot] : unit[..at];
        if (prefix.Contains('%'))
            return $"'{unit}': specifiers belong in a template's instance, after the @ (xfs_scrub@%m.service)";
        if (prefix.Length == 0 || prefix.Any(c => c > 127 || !(Plain((byte)c) || c == '-' || c == '\\')))
            return $"'{unit}' is not a unit name: '{prefix}' may hold only letters, digits and :-_.\\";
        if (at >= 0 && (at + 1 >= dot || unit.IndexOf('@', at + 1) >= 0))
            return $"'{unit}' is not a unit name: a template needs one @ and an instance before the .{unit[(dot + 1)..]}";
        for (var i = at + 1; at >= 0 && i < dot; i++)
        {
            var c = unit[i];
            if (c == '%')
                i++; // a specifier, checked above
            else if (c > 127 || !(Plain((byte)c) || c == '-' || c == '\\'))
                return $"'{unit}' is not a unit name: the instance may hold only letters, digits, :-_.\\ and specifiers";
        }
        return unit.Length > 255 ? $"'{unit[..40]}...' is longer than 255 characters" : null;
    }

    /// <summary>An Exec= argument with its specifiers filled in, as bytes.</summary>
    public static byte[] ExpandArgument(string argument, HookFacts facts)
    {
        var result = new List<byte>(argument.Length + 32);
        for (var i = 0; i < argument.Length; i++)
        {
            if (argument[i] == '%' && i + 1 < argument.Length)
            {
                result.AddRange(Value(argument[++i], facts));
                continue;
            }
            var start = i;
            while (i + 1 < argument.Length && argument[i + 1] != '%')
                i++;
            result.AddRange(Encoding.UTF8.GetBytes(argument[start..(i + 1)]));
        }
        return [.. result];
    }

    /// <summary>A Unit= name with its specifiers filled in; null and a reason when a value cannot be part of a unit name.</summary>
    public static string? ExpandUnit(string unit, HookFacts facts, out string? problem)
    {
        problem = null;
        var sb = new StringBuilder(unit.Length + 32);
        for (var i = 0; i < unit.Length; i++)
        {
            if (unit[i] != '%' || i + 1 >= unit.Length)
            {
                sb.Append(unit[i]);
                continue;
            }
            var c = unit[++i];
            var value = Value(c, facts);
            if (c == '%')
                sb.Append('%');
            else if (c is 'm' or 'd')
            {
                if (EscapePath(value) is not { } escaped)
                {
                    problem = $"%{c} ({Filesystems.FsPath.Escape(value)}) is not a normalized absolute path";
                    return null;
                }
                sb.Append(escaped);
            }
            else
                sb.Append(Escape(value));
        }
        var name = sb.ToString();
        if (name.Contains("@.", StringComparison.Ordinal))
        {
            problem = $"the instance of {unit} is empty for this filesystem";
            return null;
        }
        return name;
    }

    private static byte[] Value(char specifier, HookFacts facts) => specifier switch
    {
        'm' => facts.Get("ERRORWATCH_MOUNTPOINT"),
        'd' => facts.Get("ERRORWATCH_DEVICE"),
        'u' => facts.Get("ERRORWATCH_UUID"),
        't' => facts.Get("ERRORWATCH_FSTYPE"),
        'i' => facts.Get("ERRORWATCH_REPORT_ID"),
        'e' => facts.Get("ERRORWATCH_EVENT"),
        _ => [(byte)specifier],
    };

    /// <summary>
    /// <c>systemd-escape --path</c> (unit_name_path_escape): duplicate and trailing slashes and "."
    /// dropped, "/" itself is "-", slashes become '-', '-', '\' and every byte outside
    /// [A-Za-z0-9:_.] become \xNN, and so does a leading '.'. Null for relative paths or "..".
    /// </summary>
    public static string? EscapePath(ReadOnlySpan<byte> path)
    {
        if (path.IsEmpty || path[0] != (byte)'/')
            return null;
        var parts = new List<byte[]>();
        foreach (var range in path.Split((byte)'/'))
        {
            var part = path[range];
            if (part.IsEmpty || part.SequenceEqual("."u8))
                continue;
            if (part.SequenceEqual(".."u8))
                return null;
            parts.Add(part.ToArray());
        }
        if (parts.Count == 0)
            return "-";
        var joined = new List<byte>();
        foreach (var part in parts)
        {
            if (joined.Count > 0)
                joined.Add((byte)'/');
            joined.AddRange(part);
        }
        return Escape([.. joined]);
    }

    /// <summary>unit_name_escape: '/' as '-', anything else not plain as \xNN.</summary>
    private static string Escape(ReadOnlySpan<byte> text)
    {
        var sb = new StringBuilder(text.Length * 2);
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == (byte)'/')
                sb.Append('-');
            else if (!Plain(c) || (i == 0 && c == (byte)'.'))
                sb.Append("\\x").Append(c.ToString("x2", System.Globalization.CultureInfo.InvariantCulture));
            else
                sb.Append((char)c);
        }
        return sb.ToString();
    }
}
