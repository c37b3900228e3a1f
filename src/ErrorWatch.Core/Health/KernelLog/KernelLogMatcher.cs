using System.Diagnostics.CodeAnalysis;
using System.Globalization;

namespace ErrorWatch.Health.KernelLog;

/// <summary>
/// Recognises the XFS and ext4 error lines of kernel-abi.md §7.7 (fs/xfs/xfs_error.c, xfs_buf.c,
/// xfs_fsops.c, xfs_message.c; fs/ext4/super.c). Follow-up lines of an error already matched ("Unmount
/// and run xfs_repair", "First 128 bytes of corrupted metadata buffer:", the hexdump, "Please unmount
/// the filesystem...") and the boot-time summaries of old errors ("error count since last fsck") are
/// not signals, so one event is not counted several times.
/// </summary>
/// <remarks>
/// The text is matched whoever wrote it; <see cref="KernelLogSignal.IsTrusted"/> says whether the
/// kernel did. Callers must drop untrusted signals: any process that can write /dev/kmsg (root by
/// default, root in a container that exposes it, anyone if the node is made writable) can print any
/// text, and only the facility tells its lines apart.
/// </remarks>
public static class KernelLogMatcher
{
    /// <summary>CONSOLE_EXT_LOG_MAX: no kernel record is longer, so a longer message is not one worth parsing.</summary>
    public const int MaxMessageBytes = 8192;

    private const int EIO = 5, ENOMEM = 12, EROFS = 30, EBADMSG = 74, ESHUTDOWN = 108, EUCLEAN = 117;

    public static bool TryMatch(in KmsgRecord record, [NotNullWhen(true)] out KernelLogSignal? signal)
    {
        signal = null;
        var bytes = record.Message;
        if (bytes.Length > MaxMessageBytes)
            return false;

        // Cheap byte checks first: almost every record is about something else and needs no string.
        Draft draft = default;
        string fsType;
        string text;
        if (bytes.StartsWith("XFS ("u8) || bytes.StartsWith("XFS: "u8))
        {
            fsType = "xfs";
            text = record.MessageText;
            if (!MatchXfs(text, ref draft))
                return false;
        }
        else if (bytes.StartsWith("EXT4-fs "u8))
        {
            fsType = "ext4";
            text = record.MessageText;
            if (!MatchExt4(text, ref draft))
                return false;
        }
        else
        {
            return false;
        }

        signal = new KernelLogSignal
        {
            FsType = fsType,
            DeviceName = draft.Device,
            Kind = draft.Kind,
            Facility = record.Facility,
            Level = record.Level,
            Sequence = record.Sequence,
            TimestampMicroseconds = record.TimestampMicroseconds,
            Message = text,
            Inode = draft.Inode,
            Daddr = draft.Daddr,
            Block = draft.Block,
            Errno = draft.Errno,
            Function = draft.Function,
            Line = draft.Line,
            Comm = draft.Comm,
        };
        return true;
    }

    private struct Draft
    {
        public string? Device;
        public KernelLogKind Kind;
        public ulong? Inode, Daddr, Block;
        public int? Errno, Line;
        public string? Function, Comm;
    }

    // ---- XFS --------------------------------------------------------------------------------

    private static bool MatchXfs(string text, ref Draft d)
    {
        ReadOnlySpan<char> rest;
        if (text.StartsWith("XFS (", StringComparison.Ordinal))
        {
            var close = text.IndexOf("): ", 5, StringComparison.Ordinal);
            if (close < 0 || !IsDeviceName(text.AsSpan(5, close - 5)))
                return false;
            d.Device = text.Substring(5, close - 5);
            rest = text.AsSpan(close + 3);
        }
        else
        {
            rest = text.AsSpan(5); // "XFS: ", no mount yet
        }

        // xfs_mountfs: "Mounting V%d Filesystem %pU"
        if (rest.StartsWith("Mounting V", StringComparison.Ordinal) && d.Device is not null)
        {
            d.Kind = KernelLogKind.Mounted;
            return true;
        }

        // xfs_verifier_error / xfs_inode_verifier_error:
        // "Metadata %s detected at %pS, %s block 0x%llx %s" and "..., inode 0x%llx %s"
        const string CorruptionAt = "Metadata corruption detected at ", CrcAt = "Metadata CRC error detected at ";
        var isCrc = rest.StartsWith(CrcAt, StringComparison.Ordinal);
        if (isCrc || rest.StartsWith(CorruptionAt, StringComparison.Ordinal))
        {
            d.Kind = isCrc ? KernelLogKind.ChecksumError : KernelLogKind.Corruption;
            d.Errno = isCrc ? EBADMSG : EUCLEAN; // the verifier picks the text from b_error
            var after = rest.Slice(isCrc ? CrcAt.Length : CorruptionAt.Length);
            var comma = after.IndexOf(", ", StringComparison.Ordinal);
            d.Function = SymbolName(comma < 0 ? after : after.Slice(0, comma));
            var tail = comma < 0 ? default : after.Slice(comma + 2);
            if (tail.StartsWith("inode 0x", StringComparison.Ordinal))
                d.Inode = HexPrefix(tail.Slice(8));
            else
                d.Daddr = HexAfter(tail, " block 0x");
            return true;
        }

        // xfs_buf_ioerror_alert: "metadata I/O error in \"%pS\" at daddr 0x%llx len %d error %d";
        // before 4.19: "metadata I/O error: block 0x%llx (\"%s\") error %d numblks %d".
        if (rest.StartsWith("metadata I/O error", StringComparison.Ordinal))
        {
            var open = rest.IndexOf('"');
            if (open >= 0)
            {
                var quoted = rest.Slice(open + 1);
                var close = quoted.IndexOf('"');
                d.Function = SymbolName(close < 0 ? quoted : quoted.Slice(0, close));
            }
            d.Daddr = HexAfter(rest, "daddr 0x") ?? HexAfter(rest, "block 0x");
            d.Errno = ErrnoAfter(rest, "error ");
            d.Kind = KindOf(d.Errno, KernelLogKind.IoError);
            return true;
        }

        // xlog_ioend_work: "log I/O error %d"
        if (rest.StartsWith("log I/O error", StringComparison.Ordinal))
        {
            d.Errno = ErrnoAfter(rest, "error ");
            d.Kind = KernelLogKind.IoError;
            return true;
        }

        // xfs_do_force_shutdown: "User initiated shutdown received." (then, since 5.x, a second line),
        // "%s (0x%x) detected at %pS (%s:%d).  Shutting down filesystem.", and the pre-5.x
        // "... Detected.  Shutting down filesystem" forms.
        if (rest.StartsWith("User initiated shutdown", StringComparison.Ordinal))
        {
            d.Kind = KernelLogKind.Shutdown;
            return true;
        }
        var shutting = rest.IndexOf("Shutting down filesystem", StringComparison.Ordinal);
        if (shutting >= 0)
        {
            d.Kind = KernelLogKind.Shutdown;
            var at = rest.Slice(0, shutting).IndexOf(" detected at ", StringComparison.Ordinal);
            if (at >= 0)
            {
                var site = rest.Slice(at + " detected at ".Length, shutting - at - " detected at ".Length);
                var paren = site.IndexOf(" (", StringComparison.Ordinal);
                d.Function = SymbolName(paren < 0 ? site : site.Slice(0, paren));
                if (paren >= 0)
                {
                    var location = site.Slice(paren + 2);
                    var closeParen = location.IndexOf(')');
                    if (closeParen > 0)
                    {
                        location = location.Slice(0, closeParen);
                        var colon = location.LastIndexOf(':');
                        if (colon >= 0)
                            d.Line = ToInt(DecimalPrefix(location.Slice(colon + 1)));
                    }
                }
            }
            return true;
        }

        // xfs_error_report: "Internal error %s at line %d of file %s.  Caller %pS"
        if (rest.StartsWith("Internal error ", StringComparison.Ordinal))
        {
            d.Kind = KernelLogKind.InternalError;
            var atLine = rest.LastIndexOf(" at line ", StringComparison.Ordinal);
            if (atLine >= 0)
                d.Line = ToInt(DecimalPrefix(rest.Slice(atLine + " at line ".Length)));
            var caller = rest.LastIndexOf("Caller ", StringComparison.Ordinal);
            if (caller >= 0)
                d.Function = SymbolName(rest.Slice(caller + "Caller ".Length));
            return true;
        }

        // assfail: "Assertion failed: %s, file: %s, line: %d"
        if (rest.StartsWith("Assertion failed: ", StringComparison.Ordinal))
        {
            d.Kind = KernelLogKind.InternalError;
            var line = rest.LastIndexOf(", line: ", StringComparison.Ordinal);
            if (line >= 0)
                d.Line = ToInt(DecimalPrefix(rest.Slice(line + ", line: ".Length)));
            return true;
        }

        return false;
    }

    // ---- ext4 -------------------------------------------------------------------------------

    private static bool MatchExt4(string text, ref Draft d)
    {
        const string ErrorHead = "EXT4-fs error (device ";
        if (text.StartsWith(ErrorHead, StringComparison.Ordinal))
        {
            var close = text.IndexOf(')', ErrorHead.Length);
            if (close < 0 || !IsDeviceName(text.AsSpan(ErrorHead.Length, close - ErrorHead.Length)))
                return false;
            d.Device = text.Substring(ErrorHead.Length, close - ErrorHead.Length);
            var after = text.AsSpan(close + 1);
            if (after.StartsWith(": ", StringComparison.Ordinal))
            {
                MatchExt4Error(after.Slice(2), ref d);
                return true;
            }
            if (after.StartsWith(" in ", StringComparison.Ordinal))
            {
                MatchExt4StdError(after.Slice(4), ref d);
                return true;
            }
            return false;
        }

        // ext4_msg: "EXT4-fs (%s): %pV" carries mount chatter too; only a few texts are errors.
        const string MessageHead = "EXT4-fs (";
        if (text.StartsWith(MessageHead, StringComparison.Ordinal))
        {
            var close = text.IndexOf("): ", MessageHead.Length, StringComparison.Ordinal);
            if (close < 0 || !IsDeviceName(text.AsSpan(MessageHead.Length, close - MessageHead.Length)))
                return false;
            d.Device = text.Substring(MessageHead.Length, close - MessageHead.Length);
            return MatchExt4Message(text.AsSpan(close + 3), ref d);
        }

        return false; // "EXT4-fs warning (device ...)" and "EXT4-fs: " (no superblock) are not errors
    }

    /// <summary>
    /// __ext4_error* and __ext4_grp_locked_error: "func:line: " then "inode #N: [block N: ]comm C: [path P: ]msg",
    /// "comm C: msg", or "group G, [inode N: ][block N:]msg". None prints the errno; ext4 records such
    /// errors as EFSCORRUPTED unless told otherwise, so corruption is the default kind.
    /// </summary>
    private static void MatchExt4Error(ReadOnlySpan<char> body, ref Draft d)
    {
        TakeFunctionAndLine(ref body, ref d);

        if (Take(ref body, "group "))
        {
            TakeDecimal(ref body, out _);
            Take(ref body, ", ");
            if (TakeNumber(ref body, "inode ", out var inode))
            {
                d.Inode = inode;
                Take(ref body, ": ");
            }
            if (TakeNumber(ref body, "block ", out var block))
            {
                d.Block = block;
                Take(ref body, ":");
                Take(ref body, " ");
            }
        }
        else
        {
            if (TakeNumber(ref body, "inode #", out var inode))
            {
                d.Inode = inode;
                Take(ref body, ": ");
            }
            if (TakeNumber(ref body, "block ", out var block))
            {
                d.Block = block;
                Take(ref body, ": ");
            }
            if (Take(ref body, "comm "))
            {
                // A comm may itself hold ": "; the first one is the best guess there is.
                var end = body.IndexOf(": ", StringComparison.Ordinal);
                d.Comm = (end < 0 ? body : body.Slice(0, end)).ToString();
                body = end < 0 ? default : body.Slice(end + 2);
            }
        }

        d.Kind = ClassifyExt4Text(body);
    }

    private static KernelLogKind ClassifyExt4Text(ReadOnlySpan<char> message)
    {
        if (message.Contains("Abort forced by user", StringComparison.Ordinal))
            return KernelLogKind.Shutdown; // ext4_abort(sb, ESHUTDOWN, ...) from "mount -o remount,abort"
        if (message.Contains("Detected aborted journal", StringComparison.Ordinal))
            return KernelLogKind.ReadOnly;
        if (message.Contains("checksum", StringComparison.OrdinalIgnoreCase))
            return KernelLogKind.ChecksumError;
        if (message.Contains("I/O error", StringComparison.OrdinalIgnoreCase)
            || message.Contains("IO failure", StringComparison.OrdinalIgnoreCase)
            || message.Contains("unable to read", StringComparison.OrdinalIgnoreCase)
            || message.Contains("error reading", StringComparison.OrdinalIgnoreCase))
            return KernelLogKind.IoError;
        return KernelLogKind.Corruption;
    }

    /// <summary>__ext4_std_error: "func:line: " then ext4_decode_error()'s text, which names the errno.</summary>
    private static void MatchExt4StdError(ReadOnlySpan<char> body, ref Draft d)
    {
        TakeFunctionAndLine(ref body, ref d);
        var errstr = body.Trim();
        (d.Kind, d.Errno) = errstr switch
        {
            "Corrupt filesystem" => (KernelLogKind.Corruption, EUCLEAN),
            "Filesystem failed CRC" => (KernelLogKind.ChecksumError, EBADMSG),
            "IO failure" => (KernelLogKind.IoError, EIO),
            "Out of memory" => (KernelLogKind.Error, ENOMEM),
            "Journal has aborted" or "Readonly filesystem" => (KernelLogKind.ReadOnly, EROFS),
            _ => ((KernelLogKind, int?))(KernelLogKind.Error, null),
        };
        if (d.Errno is null && errstr.StartsWith("error ", StringComparison.Ordinal))
        {
            d.Errno = ErrnoAfter(errstr, "error ");
            d.Kind = KindOf(d.Errno, KernelLogKind.Error);
        }
    }

    private static bool MatchExt4Message(ReadOnlySpan<char> rest, ref Draft d)
    {
        // ext4_fill_super: "mounted filesystem %pU %s with%s. Quota mode: %s."
        if (rest.StartsWith("mounted filesystem", StringComparison.Ordinal))
        {
            d.Kind = KernelLogKind.Mounted;
            return true;
        }
        // ext4_handle_error after an error under errors=remount-ro (or an abort)
        if (rest.StartsWith("Remounting filesystem read-only", StringComparison.Ordinal))
        {
            d.Kind = KernelLogKind.ReadOnly;
            return true;
        }
        // ext4_shutdown (EXT4_IOC_SHUTDOWN, or the block device going away)
        if (rest.StartsWith("shut down requested", StringComparison.Ordinal))
        {
            d.Kind = KernelLogKind.Shutdown;
            return true;
        }
        if (rest.StartsWith("I/O error while writing superblock", StringComparison.Ordinal)
            || rest.StartsWith("previous I/O error to superblock detected", StringComparison.Ordinal))
        {
            d.Kind = KernelLogKind.IoError;
            d.Errno = EIO;
            return true;
        }
        // mpage_map_and_submit_extent: "Delayed block allocation failed for inode %lu at logical offset %llu with max blocks %u with error %d"
        const string Delalloc = "Delayed block allocation failed for inode ";
        if (rest.StartsWith(Delalloc, StringComparison.Ordinal))
        {
            d.Inode = DecimalPrefix(rest.Slice(Delalloc.Length));
            d.Errno = ErrnoAfter(rest, "with error ");
            d.Kind = KindOf(d.Errno, KernelLogKind.Error);
            return true;
        }
        // ext4_end_io_end / ext4_convert_unwritten_io_end_vec: "... potential data loss!  (inode %lu, error %d)"
        if (rest.StartsWith("failed to convert unwritten extents to written extents", StringComparison.Ordinal))
        {
            d.Inode = DecimalAfter(rest, "(inode ");
            d.Errno = ErrnoAfter(rest, "error ");
            d.Kind = KindOf(d.Errno, KernelLogKind.Error);
            return true;
        }
        return false;
    }

    /// <summary>"func:line: " as printed by __func__ and __LINE__; left in place when the text does not fit.</summary>
    private static void TakeFunctionAndLine(ref ReadOnlySpan<char> body, ref Draft d)
    {
        var colon = body.IndexOf(':');
        if (colon <= 0 || !IsIdentifier(body.Slice(0, colon)))
            return;
        var rest = body.Slice(colon + 1);
        if (!TakeDecimal(ref rest, out var line) || !Take(ref rest, ":"))
            return;
        d.Function = body.Slice(0, colon).ToString();
        d.Line = ToInt(line);
        Take(ref rest, " ");
        body = rest;
    }

    // ---- shared ------------------------------------------------------------------------------

    /// <summary>The errno a kind of failure stands for, else <paramref name="fallback"/>.</summary>
    private static KernelLogKind KindOf(int? errno, KernelLogKind fallback) => errno switch
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
    private static bool IsDeviceName(ReadOnlySpan<char> name)
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

    private static bool IsIdentifier(ReadOnlySpan<char> name)
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
    private static string? SymbolName(ReadOnlySpan<char> symbol)
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

    private static bool Take(ref ReadOnlySpan<char> text, string literal)
    {
        if (!text.StartsWith(literal, StringComparison.Ordinal))
            return false;
        text = text.Slice(literal.Length);
        return true;
    }

    /// <summary>"label" followed by a decimal number, consumed only when both are there ("block bitmap" is not a block).</summary>
    private static bool TakeNumber(ref ReadOnlySpan<char> text, string label, out ulong value)
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

    private static bool TakeDecimal(ref ReadOnlySpan<char> text, out ulong value)
    {
        var digits = CountDigits(text, hex: false);
        value = 0;
        if (digits == 0 || !ulong.TryParse(text.Slice(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out value))
            return false;
        text = text.Slice(digits);
        return true;
    }

    private static ulong? DecimalPrefix(ReadOnlySpan<char> text) => TakeDecimal(ref text, out var value) ? value : null;

    private static ulong? DecimalAfter(ReadOnlySpan<char> text, string marker)
    {
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        return at < 0 ? null : DecimalPrefix(text.Slice(at + marker.Length));
    }

    private static ulong? HexPrefix(ReadOnlySpan<char> text)
    {
        var digits = CountDigits(text, hex: true);
        return digits > 0 && ulong.TryParse(text.Slice(0, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out var value)
            ? value
            : null;
    }

    private static ulong? HexAfter(ReadOnlySpan<char> text, string marker)
    {
        var at = text.IndexOf(marker, StringComparison.Ordinal);
        return at < 0 ? null : HexPrefix(text.Slice(at + marker.Length));
    }

    /// <summary>The first "&lt;marker&gt;[-]digits": XFS prints positive errnos, some ext4 lines negative ones.</summary>
    private static int? ErrnoAfter(ReadOnlySpan<char> text, string marker)
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

    private static int? ToInt(ulong? value) => value is { } v && v <= int.MaxValue ? (int)v : null;

    /// <summary>The number of leading digits, or 0 when there are more than a u64 can hold (not a number the kernel printed).</summary>
    private static int CountDigits(ReadOnlySpan<char> text, bool hex)
    {
        var n = 0;
        while (n < text.Length && (hex ? char.IsAsciiHexDigit(text[n]) : char.IsAsciiDigit(text[n])))
            n++;
        return n <= (hex ? 16 : 20) ? n : 0;
    }
}
