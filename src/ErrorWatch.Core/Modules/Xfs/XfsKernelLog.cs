using ErrorWatch.Health.KernelLog;
using static ErrorWatch.Health.KernelLog.KernelLogText;

namespace ErrorWatch.Modules.Xfs;

/// <summary>
/// The XFS error lines of kernel-abi.md §7.7 (fs/xfs/xfs_error.c, xfs_buf.c, xfs_fsops.c,
/// xfs_message.c). Follow-up lines of an error already matched ("Unmount and run xfs_repair", "First
/// 128 bytes of corrupted metadata buffer:", the hexdump) are not signals, so one event is not counted
/// several times.
/// </summary>
internal sealed class XfsKernelLog : IKernelLogDialect
{
    public bool Claims(ReadOnlySpan<byte> message) => message.StartsWith("XFS ("u8) || message.StartsWith("XFS: "u8);

    public bool TryParse(string text, ref KernelLogLine line) => MatchXfs(text, ref line);

    private static bool MatchXfs(string text, ref KernelLogLine d)
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
}
