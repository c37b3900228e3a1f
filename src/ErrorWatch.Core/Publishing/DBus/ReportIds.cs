using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace ErrorWatch.Publishing.DBus;

/// <summary>
/// Report ids as bus callers pass them (GetReport, Acknowledge): exactly the 36-character form the
/// reports carry, 8-4-4-4-12 hex digits, judged on the message's own bytes before anything is
/// looked up, allocated or echoed. Anything else ("../../etc/shadow", a 30 MiB string, braces,
/// blanks, 32 bare digits that Guid.TryParse would also take) is refused by length and form, so no
/// caller-chosen text ever reaches the store, a file name or the log.
/// </summary>
public static class ReportIds
{
    public const int Length = 36;
    /// <summary>Longer arguments are described by their length only in the error reply.</summary>
    private const int EchoedAtMost = 64;

    /// <summary>The id in the form the store holds (lowercase), or false.</summary>
    public static bool TryParse(ReadOnlySpan<byte> text, [NotNullWhen(true)] out string? id)
    {
        id = null;
        if (text.Length != Length)
            return false;
        Span<char> canonical = stackalloc char[Length];
        for (var i = 0; i < Length; i++)
        {
            var c = text[i];
            if (i is 8 or 13 or 18 or 23)
            {
                if (c != '-')
                    return false;
                canonical[i] = '-';
            }
            else if (char.IsAsciiHexDigit((char)c))
                canonical[i] = char.ToLowerInvariant((char)c);
            else
                return false;
        }
        id = new string(canonical);
        return true;
    }

    /// <summary>What the caller sent, for the error reply: short printable ASCII quoted, anything else by its length.</summary>
    public static string Describe(ReadOnlySpan<byte> text) =>
        text.Length <= EchoedAtMost && !text.ContainsAnyExceptInRange((byte)0x20, (byte)0x7e)
            ? $"'{Encoding.ASCII.GetString(text)}'"
            : $"a string of {text.Length} bytes";
}
