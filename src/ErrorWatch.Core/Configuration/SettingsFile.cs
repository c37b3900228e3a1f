using System.Text;

namespace ErrorWatch.Configuration;

/// <summary>Something wrong in a configuration file. Line 0 is about the file as a whole.</summary>
public sealed record ConfigurationProblem(string File, int Line, string Key, string Message)
{
    /// <summary>The [Section] the problem is in, when there is one.</summary>
    public string? Section { get; init; }

    /// <summary>"FILE:LINE: [Section] Key: message", the form compilers and systemd-analyze use.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(File);
        if (Line > 0)
            sb.Append(':').Append(Line);
        sb.Append(": ");
        if (!string.IsNullOrEmpty(Section))
            sb.Append('[').Append(Section).Append("] ");
        if (!string.IsNullOrEmpty(Key))
            sb.Append(Key).Append(": ");
        sb.Append(Message);
        return sb.ToString();
    }
}

/// <summary>One Key=Value line of a configuration file, under the [Section] it follows.</summary>
internal readonly record struct SettingsAssignment(string File, int Line, string Section, string Key, string Value);

/// <summary>A file's assignments and its [Section] headers (a header with no keys under it still names a section).</summary>
internal sealed record SettingsFileContent(List<SettingsAssignment> Assignments, List<(int Line, string Section)> Sections);

/// <summary>
/// Reads the systemd unit-file flavour of INI: [Section] headers, Key=Value lines (whitespace around
/// both trimmed, no quoting), whole-line # and ; comments, a trailing \ continuing a line. A hand-written
/// reader because Microsoft.Extensions.Configuration.Ini cannot be restored from this project's
/// package source, and because it would be the wrong dialect anyway: it is case-insensitive, treats
/// repeated keys as errors or overwrites, and has no notion of list assignments or empty resets.
/// Hostile files (binary, NUL bytes, endless lines) give problems with line numbers, never exceptions,
/// and are read in bounded memory.
/// </summary>
internal static class SettingsFile
{
    /// <summary>Longer lines are refused (systemd's own limit is 1 MiB; no ErrorWatch value comes near 64 KiB).</summary>
    public const int MaxLineBytes = 64 * 1024;

    /// <summary>Reading stops here, so --config /dev/zero ends too; real files are a few KiB.</summary>
    public const long MaxFileBytes = 16 * 1024 * 1024;

    /// <summary>After this many problems a file is not read further: it is not a configuration file.</summary>
    public const int MaxProblemsPerFile = 20;

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public static SettingsFileContent Read(string file, Stream stream, List<ConfigurationProblem> problems)
    {
        var assignments = new List<SettingsAssignment>();
        var sections = new List<(int, string)>();
        var firstProblem = problems.Count;
        string? section = null;
        string? continued = null;
        var continuedFrom = 0;
        foreach (var (physical, bytes, tooLong) in WithEnd(Lines(stream)))
        {
            var number = physical;
            if (number < 0)
            {
                problems.Add(new(file, 0, "", $"larger than {MaxFileBytes / (1024 * 1024)} MiB; the rest of the file was not read"));
                break;
            }
            if (problems.Count - firstProblem >= MaxProblemsPerFile)
            {
                problems.Add(new(file, number, "", $"more than {MaxProblemsPerFile} problems; the rest of the file was not read"));
                break;
            }
            if (tooLong)
            {
                problems.Add(new(file, number, "", $"line longer than {MaxLineBytes} bytes") { Section = section });
                continue;
            }
            var raw = number == 1 && bytes.AsSpan().StartsWith("\uFEFF"u8) ? bytes.AsSpan(3) : bytes.AsSpan();
            if (raw.IndexOf((byte)0) >= 0)
            {
                problems.Add(new(file, number, "", "line contains a NUL byte") { Section = section });
                continue;
            }
            string text;
            try
            {
                text = StrictUtf8.GetString(raw);
            }
            catch (DecoderFallbackException)
            {
                problems.Add(new(file, number, "", "line is not valid UTF-8") { Section = section });
                continue;
            }
            var line = text.Trim();
            if (continued is not null)
            {
                // Within a continuation, comment lines are left out (systemd does the same).
                if (line.Length > 0 && line[0] is '#' or ';')
                    continue;
                line = (continued + line).Trim();
                number = continuedFrom;
                continued = null;
            }
            else if (line.Length == 0 || line[0] is '#' or ';')
                continue;
            if (line.EndsWith('\\'))
            {
                // A trailing backslash joins the next line, the backslash becoming a space (systemd syntax).
                continued = line[..^1] + " ";
                continuedFrom = number;
                if (Encoding.UTF8.GetByteCount(continued) > MaxLineBytes)
                {
                    problems.Add(new(file, number, "", $"line longer than {MaxLineBytes} bytes") { Section = section });
                    continued = null;
                }
                continue;
            }
            if (HasControlCharacter(line))
            {
                problems.Add(new(file, number, "", "line contains control characters") { Section = section });
                continue;
            }
            if (line[0] == '[')
            {
                if (line[^1] != ']' || line.Length < 3 || line.AsSpan(1, line.Length - 2).IndexOfAny("[]") >= 0)
                {
                    problems.Add(new(file, number, "", $"malformed section header '{Shorten(line)}' (expected [Name])"));
                    section = "";
                    continue;
                }
                section = line[1..^1].Trim();
                sections.Add((number, section));
                continue;
            }
            var equals = line.IndexOf('=');
            if (equals < 0)
            {
                problems.Add(new(file, number, "", $"expected Key=Value, found '{Shorten(line)}'") { Section = section });
                continue;
            }
            var key = line[..equals].Trim();
            var value = line[(equals + 1)..].Trim();
            if (key.Length == 0)
            {
                problems.Add(new(file, number, "", "assignment without a key") { Section = section });
                continue;
            }
            if (section is null)
            {
                problems.Add(new(file, number, key, "assignment before the first [Section] header"));
                continue;
            }
            if (section.Length == 0)
                continue; // under a malformed header, already reported
            assignments.Add(new SettingsAssignment(file, number, section, key, value));
        }
        return new SettingsFileContent(assignments, sections);
    }

    /// <summary>Splits a list value on whitespace; \NNN (octal, as /proc/self/mountinfo writes a space: \040) and \\ are unescaped.</summary>
    public static List<string> SplitList(string value)
    {
        var items = new List<string>();
        foreach (var word in value.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries))
            items.Add(Unescape(word));
        return items;
    }

    /// <summary>The inverse of <see cref="SplitList"/> for one item.</summary>
    public static string EscapeListItem(string item)
    {
        if (item.AsSpan().IndexOfAny(" \t\\") < 0)
            return item;
        var sb = new StringBuilder(item.Length + 8);
        foreach (var c in item)
        {
            if (c is ' ' or '\t' or '\\')
                sb.Append('\\').Append(Convert.ToString(c, 8).PadLeft(3, '0'));
            else
                sb.Append(c);
        }
        return sb.ToString();
    }

    private static string Unescape(string word)
    {
        if (!word.Contains('\\'))
            return word;
        var sb = new StringBuilder(word.Length);
        for (var i = 0; i < word.Length; i++)
        {
            if (word[i] == '\\' && i + 1 < word.Length && word[i + 1] == '\\')
            {
                sb.Append('\\');
                i++;
            }
            else if (word[i] == '\\' && i + 3 < word.Length && IsOctal(word[i + 1]) && IsOctal(word[i + 2]) && IsOctal(word[i + 3]))
            {
                sb.Append((char)(((word[i + 1] - '0') << 6) | ((word[i + 2] - '0') << 3) | (word[i + 3] - '0')));
                i += 3;
            }
            else
            {
                sb.Append(word[i]);
            }
        }
        return sb.ToString();
    }

    private static bool IsOctal(char c) => c is >= '0' and <= '7';

    private static bool HasControlCharacter(string line)
    {
        foreach (var c in line)
        {
            if (char.IsControl(c) && c != '\t')
                return true;
        }
        return false;
    }

    private static string Shorten(string text) => text.Length <= 60 ? text : text[..57] + "...";

    /// <summary>The lines, then an empty one past the last: it ends a continuation the file ends in.</summary>
    private static IEnumerable<(int Number, byte[] Bytes, bool TooLong)> WithEnd(IEnumerable<(int Number, byte[] Bytes, bool TooLong)> lines)
    {
        var last = 0;
        foreach (var line in lines)
        {
            yield return line;
            if (line.Number < 0)
                yield break;
            last = line.Number;
        }
        yield return (last + 1, [], false);
    }

    /// <summary>
    /// Lines as bytes with their 1-based numbers; a line over <see cref="MaxLineBytes"/> is skipped
    /// to its end and reported as too long instead of being buffered. Number -1: the file is over
    /// <see cref="MaxFileBytes"/>.
    /// </summary>
    private static IEnumerable<(int Number, byte[] Bytes, bool TooLong)> Lines(Stream stream)
    {
        var buffer = new byte[16 * 1024];
        var line = new MemoryStream();
        var number = 1;
        var tooLong = false;
        long total = 0;
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            if ((total += read) > MaxFileBytes)
            {
                yield return (-1, [], false); // the caller's cue: too big
                yield break;
            }
            var offset = 0;
            while (offset < read)
            {
                var newline = Array.IndexOf(buffer, (byte)'\n', offset, read - offset);
                var length = (newline < 0 ? read : newline) - offset;
                if (!tooLong)
                {
                    if (line.Length + length > MaxLineBytes)
                    {
                        tooLong = true;
                        line.SetLength(0);
                    }
                    else
                    {
                        line.Write(buffer, offset, length);
                    }
                }
                if (newline < 0)
                    break;
                yield return (number, tooLong ? [] : line.ToArray(), tooLong);
                number++;
                line.SetLength(0);
                tooLong = false;
                offset = newline + 1;
            }
        }
        if (line.Length > 0 || tooLong)
            yield return (number, tooLong ? [] : line.ToArray(), tooLong);
    }
}
