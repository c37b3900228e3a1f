using System.Globalization;

namespace ErrorWatch.Health.KernelLog;

/// <summary>
/// Reading the numbers, names and symbols filesystems print in kernel log lines, shared by the
/// modules' <see cref="IKernelLogDialect"/>s: nothing here throws or allocates for a line that does
/// not fit.
/// </summary>
public static class KernelLogText
{
    public const int EIO = 5, ENOMEM = 12, EROFS = 30, EBADMSG = 74, ESHUTDOWN = 108, EUCLEAN = 117;


    /// <summary>The kind of failure an errno stands for, else <paramref name="fallback"/>.</summary>
    public static KernelLogKind KindOf(int? errno, KernelLogKind fallback) => errno switch
    {
        EUCLEAN => KernelLogKind.Corruption,
        EBADMSG => KernelLogKind.ChecksumError,
        EIO => KernelLogKind.IoError,
        ESHUTDOWN => KernelLogKind.Shutdown,
        EROFS => KernelLogKind.ReadOnly,
        _ => fallback,
    };

    /// <summary>
    /// s_id as the kernel prints it (bdevname: sda1, dm-0, nvme0n1p2, loop0, cciss!c0d0). Anything with
    /// spaces, brackets or escapes is rejected, so "XFS (x) y): ..." cannot move the match.
    /// </summary>
    public static bool IsDeviceName(ReadOnlySpan<char> name)
    {
        if (name.IsEmpty || name.Length > 32)
            return false;
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '!' or ':' or '+' or '@'))
                return false;
        }
        return true;
    }

    public static bool IsIdentifier(ReadOnlySpan<char> name)
    {
        if (name.Length > 128)
            return false;
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.'))
                return false;
        }
        return true;
    }

    /// <summary>%pS text "name+0x25/0x70 [module]" → "name"; null when nothing is left.</summary>
    public static string? SymbolName(ReadOnlySpan<char> symbol)
    {
        symbol = symbol.Trim();
        var module = symbol.IndexOf(" [", StringComparison.Ordinal);
        if (module >= 0)
            symbol = symbol.Slice(0, module);
        var plus = symbol.IndexOf('+');
        if (plus >= 0)
            symbol = symbol.Slice(0, plus);
        symbol = symbol.Trim();
        return symbol.IsEmpty || symbol.Length > 128 ? null : symbol.ToString();
    }

    public static bool Take(ref ReadOnlySpan<char> text, string literal)
    {
        if (!text.StartsWith(literal, StringComparison.Ordinal))
            return false;
        text = text.Slice(literal.Length);
        return true;
    }

    /// <summary>"label" followed by a decimal number, consumed only when both are there ("block bitmap" is not a block).</summary>
    public static bool TakeNumber(ref ReadOnlySpan<char> text, string label, out ulong value)
    {
        var rest = text;
        if (!Take(ref rest, label) || !TakeDecimal(ref rest, out value))
        {
            value = 0;
            return false;
        }
        text = rest;
        return true;
    }

    public static bool TakeDecimal(ref ReadOnlySpan<char> text, out ulong value)
    {
        var digits = CountDigits(text, hex: false);
        value = 0;
        if (digits == 0 || !ulong.TryParse(text.Slice(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out value))
            return false;
        text = text.Slice(digits);
        return true;
    }

    public static ulong? DecimalPrefix(ReadOnlySpan<char> text) => TakeDecimal(ref text, out var value) ? value : null;

    public static ulong? DecimalAfter(ReadOnlySpan<char> text, string marker)
    {
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        return at < 0 ? null : DecimalPrefix(text.Slice(at + marker.Length));
    }

    public static ulong? HexPrefix(ReadOnlySpan<char> text)
    {
        var digits = CountDigits(text, hex: true);
        return digits > 0 && ulong.TryParse(text.Slice(0, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            ? value
            : null;
    }

    public static ulong? HexAfter(ReadOnlySpan<char> text, string marker)
    {
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        return at < 0 ? null : HexPrefix(text.Slice(at + marker.Length));
    }

    /// <summary>The first "&lt;marker&gt;[-]digits": XFS prints positive errnos, some ext4 lines negative ones.</summary>
    public static int? ErrnoAfter(ReadOnlySpan<char> text, string marker)
    {
        while (true)
        {
            var at = text.IndexOf(marker, StringComparison.Ordinal);
            if (at < 0)
                return null;
            text = text.Slice(at + marker.Length);
            var candidate = text;
            Take(ref candidate, "-");
            if (TakeDecimal(ref candidate, out var value))
                return ToInt(value);
        }
    }

    public static int? ToInt(ulong? value) => value is { } v && v <= int.MaxValue ? (int)v : null;

    /// <summary>The number of leading digits, or 0 when there are more than a u64 can hold (not a number the kernel printed).</summary>
    private static int CountDigits(ReadOnlySpan<char> text, bool hex)
    {
        var n = 0;
        while (n < text.Length && (hex ? char.IsAsciiHexDigit(text[n]) : char.IsAsciiDigit(text[n])))
            n++;
        return n <= (hex ? 16 : 20) ? n : 0;
    }
}
