using System.Globalization;
using System.Text;

namespace ErrorWatch.Publishing.Journal;

/// <summary>One field of a journal entry: a valid journald name and any bytes as value.</summary>
public readonly record struct JournalField(string Name, byte[] Value)
{
    /// <summary>The value decoded as UTF-8 (invalid bytes become U+FFFD): for tests and the text fallback.</summary>
    public string Text => Encoding.UTF8.GetString(Value);
}

/// <summary>
/// A journal entry as journald's native protocol carries it: an ordered list of fields, names
/// repeated at will (journald keeps every value). Names are made valid on the way in, because
/// journald silently drops an entry's invalid fields; values are raw bytes (newlines, invalid UTF-8
/// and NUL are all allowed: sd_journal_sendv switches to the binary form itself).
/// </summary>
public sealed class JournalEntry
{
    /// <summary>journald's limit on a field name (systemd's journal_field_valid()).</summary>
    public const int MaxNameLength = 64;

    private readonly List<JournalField> _fields = new(48);

    public IReadOnlyList<JournalField> Fields => _fields;

    /// <summary>Bytes sd_journal_sendv is handed: "NAME=value" per field.</summary>
    public int PayloadLength { get; private set; }

    public JournalEntry Add(string name, ReadOnlySpan<byte> value)
    {
        var valid = SanitizeName(name);
        _fields.Add(new JournalField(valid, value.ToArray()));
        PayloadLength += valid.Length + 1 + value.Length;
        return this;
    }

    /// <summary>Adds <paramref name="value"/> as UTF-8.</summary>
    public JournalEntry Add(string name, string value) => Add(name, Encoding.UTF8.GetBytes(value));

    public JournalEntry Add(string name, long value) => Add(name, value.ToString(CultureInfo.InvariantCulture));

    public JournalEntry Add(string name, ulong value) => Add(name, value.ToString(CultureInfo.InvariantCulture));

    /// <summary>"true"/"false", as in the JSON report.</summary>
    public JournalEntry Add(string name, bool value) => Add(name, value ? "true"u8 : "false"u8);

    /// <summary>Adds the field only when there is a value: journald has no null, an absent field is "unknown".</summary>
    public JournalEntry AddIfPresent(string name, string? value) => value is null ? this : Add(name, value);

    public bool Contains(string name) => _fields.Exists(f => f.Name == name);

    /// <summary>The first value of the field, or null.</summary>
    public byte[]? Get(string name)
    {
        foreach (var field in _fields)
            if (field.Name == name)
                return field.Value;
        return null;
    }

    /// <summary>The first value of the field as UTF-8 text, or null.</summary>
    public string? GetText(string name) => Get(name) is { } bytes ? Encoding.UTF8.GetString(bytes) : null;

    /// <summary>journald's rule: 1-64 of [A-Z0-9_], not starting with a digit; a leading '_' marks trusted fields, which journald drops from clients.</summary>
    public static bool IsValidName(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty || name.Length > MaxNameLength || name[0] == '_' || char.IsAsciiDigit(name[0]))
            return false;
        foreach (var c in name)
            if (!(char.IsAsciiLetterUpper(c) || char.IsAsciiDigit(c) || c == '_'))
                return false;
        return true;
    }

    /// <summary>
    /// A valid name for <paramref name="name"/>: ASCII letters uppercased, any other character not in
    /// [A-Z0-9_] becomes '_', a leading digit or '_' gets an "X" in front (so "_PID" cannot pose as a
    /// trusted field), an empty name becomes "X", and the result is cut to 64 characters.
    /// </summary>
    public static string SanitizeName(string name)
    {
        if (IsValidName(name))
            return name;
        var sb = new StringBuilder(Math.Min(name.Length + 1, MaxNameLength));
        if (name.Length == 0 || name[0] == '_' || char.IsAsciiDigit(name[0]))
            sb.Append('X');
        foreach (var c in name)
        {
            if (sb.Length == MaxNameLength)
                break;
            sb.Append(char.IsAsciiLetter(c) ? char.ToUpperInvariant(c) : char.IsAsciiDigit(c) ? c : '_');
        }
        return sb.ToString();
    }
}
