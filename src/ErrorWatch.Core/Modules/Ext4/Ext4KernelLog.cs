using ErrorWatch.Health.KernelLog;
using static ErrorWatch.Health.KernelLog.KernelLogText;

namespace ErrorWatch.Modules.Ext4;

/// <summary>
/// The ext4 error lines of kernel-abi.md §7.7 (fs/ext4/super.c). Follow-up lines ("Please unmount
/// the filesystem...") and the boot-time summaries of old errors ("error count since last fsck") are
/// not signals, so one event is not counted several times.
/// </summary>
internal sealed class Ext4KernelLog : IKernelLogDialect
{
    public bool Claims(ReadOnlySpan<byte> message) => message.StartsWith("EXT4-fs "u8);

    public bool TryParse(string text, ref KernelLogLine line) => MatchExt4(text, ref line);

    private static bool MatchExt4(string text, ref KernelLogLine d)
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
    private static void MatchExt4Error(ReadOnlySpan<char> body, ref KernelLogLine d)
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
    private static void MatchExt4StdError(ReadOnlySpan<char> body, ref KernelLogLine d)
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

    private static bool MatchExt4Message(ReadOnlySpan<char> rest, ref KernelLogLine d)
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
    private static void TakeFunctionAndLine(ref ReadOnlySpan<char> body, ref KernelLogLine d)
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
}
