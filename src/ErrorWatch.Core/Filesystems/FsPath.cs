using System.Text;

namespace ErrorWatch.Filesystems;

/// <summary>
/// A path exactly as the kernel gave it: any bytes but NUL, possibly invalid UTF-8, possibly with
/// newlines or terminal escapes. Stored raw; escaped only when written out.
/// </summary>
public sealed class FsPath : IEquatable<FsPath>
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
    private readonly byte[] _bytes;

    public FsPath(ReadOnlySpan<byte> bytes)
    {
        _bytes = bytes.ToArray();
        IsValidUtf8 = System.Text.Unicode.Utf8.IsValid(_bytes);
        Text = IsValidUtf8 ? StrictUtf8.GetString(_bytes) : null;
        IsPlainText = Text is not null && !HasNoncharacter(Text);
    }

    public static FsPath FromString(string path) => new(Encoding.UTF8.GetBytes(path));

    public ReadOnlySpan<byte> Bytes => _bytes;

    public bool IsValidUtf8 { get; }

    /// <summary>The path as text when it is valid UTF-8, else null (use <see cref="Escaped"/>).</summary>
    public string? Text { get; }

    /// <summary>
    /// Valid UTF-8 without Unicode noncharacters (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF): text every
    /// output can carry as it is. Noncharacters are valid UTF-8, but sd-bus refuses a string holding
    /// one (systemd's unichar_is_valid), which made every D-Bus message with such a name fail.
    /// </summary>
    public bool IsPlainText { get; }

    /// <summary>
    /// The form JSON, D-Bus and metrics carry: the text when it is plain (<see cref="IsPlainText"/>),
    /// else <see cref="Escaped"/> (JSON adds the exact bytes in base64 beside it).
    /// </summary>
    public string TextOrEscaped => IsPlainText ? Text! : Escaped;

    /// <summary>
    /// One printable line: valid UTF-8 is kept except control characters and backslash, which become
    /// C escapes (\n, \t, \\, \xNN), and invisible, direction-changing and noncharacters, whose
    /// bytes become \xNN; invalid bytes become \xNN. Reversible.
    /// </summary>
    public string Escaped => _escaped ??= Escape(_bytes);
    // The path never changes: escaped once, not for every output and summary that shows it.
    private string? _escaped;

    public static string Escape(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length + 8);
        var i = 0;
        while (i < bytes.Length)
        {
            var status = System.Text.Rune.DecodeFromUtf8(bytes.Slice(i), out var rune, out var consumed);
            if (status != System.Buffers.OperationStatus.Done)
            {
                sb.Append("\\x").Append(bytes[i].ToString("x2"));
                i++;
                continue;
            }
            i += consumed;
            switch (rune.Value)
            {
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                // Controls, and invisible or direction-changing characters that could disguise a name in a log;
                // noncharacters, which sd-bus refuses, so that the escaped form goes everywhere.
                case < 0x20 or 0x7f or (>= 0x80 and < 0xa0) or (>= 0x200b and <= 0x200f) or (>= 0x202a and <= 0x202e)
                    or (>= 0x2066 and <= 0x2069) or 0x2028 or 0x2029 or 0xfeff:
                case var c when IsNoncharacter(c):
                    foreach (var b in bytes.Slice(i - consumed, consumed))
                        sb.Append("\\x").Append(b.ToString("x2"));
                    break;
                default: sb.Append(rune.ToString()); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>U+FDD0-U+FDEF and the last two code points of every plane (U+FFFE, U+1FFFF, ...).</summary>
    public static bool IsNoncharacter(int codePoint) => codePoint is >= 0xfdd0 and <= 0xfdef || (codePoint & 0xfffe) == 0xfffe;

    /// <summary>Whether <paramref name="text"/> holds a noncharacter (see <see cref="IsNoncharacter"/>).</summary>
    public static bool HasNoncharacter(string text)
    {
        // Every string on the way to D-Bus is asked: a vectorized search for the UTF-16 units a
        // noncharacter can contain (U+FDD0-U+FDEF, U+FFFE, U+FFFF, and the low surrogates of the
        // last two code points of planes 1-16) rules out nearly all of them; only a hit is decoded.
        if (text.AsSpan().IndexOfAny(NoncharacterUnits) < 0)
            return false;
        foreach (var rune in text.EnumerateRunes())
            if (IsNoncharacter(rune.Value))
                return true;
        return false;
    }

    private static readonly System.Buffers.SearchValues<char> NoncharacterUnits = System.Buffers.SearchValues.Create(
        string.Concat(Enumerable.Range(0xfdd0, 0x20).Select(c => (char)c)) + "\uFFFE\uFFFF\uDFFE\uDFFF");

    /// <summary>Joins a relative path onto this one (for bind mounts whose root is a subdirectory).</summary>
    public FsPath Append(ReadOnlySpan<byte> relative)
    {
        if (relative.IsEmpty || (relative.Length == 1 && relative[0] == (byte)'/'))
            return this;
        var trimmedBase = _bytes.AsSpan();
        if (trimmedBase.Length > 0 && trimmedBase[^1] == (byte)'/')
            trimmedBase = trimmedBase[..^1];
        var rel = relative[0] == (byte)'/' ? relative[1..] : relative;
        var result = new byte[trimmedBase.Length + 1 + rel.Length];
        trimmedBase.CopyTo(result);
        result[trimmedBase.Length] = (byte)'/';
        rel.CopyTo(result.AsSpan(trimmedBase.Length + 1));
        return new FsPath(result);
    }

    public bool StartsWith(FsPath prefix)
    {
        var p = prefix.Bytes;
        if (p.Length == 1 && p[0] == (byte)'/')
            return _bytes.Length > 0 && _bytes[0] == (byte)'/';
        return _bytes.AsSpan().StartsWith(p) && (_bytes.Length == p.Length || _bytes[p.Length] == (byte)'/');
    }

    public override string ToString() => Text ?? Escaped;

    public bool Equals(FsPath? other) => other is not null && _bytes.AsSpan().SequenceEqual(other._bytes);
    public override bool Equals(object? obj) => Equals(obj as FsPath);
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.AddBytes(_bytes);
        return h.ToHashCode();
    }
}
