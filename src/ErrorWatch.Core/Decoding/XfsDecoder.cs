using ErrorWatch.Interop;
using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Decoding;

/// <summary>
/// XFS (magic 0x58465342, "XFSB"): handles of fs/xfs/xfs_export.c — 64-bit inode numbers (0x81,
/// parent 0x82) unless mounted inode32 on a small filesystem (1, 2) — and XFS's meaning of each errno.
/// XFS emits FAN_FS_ERROR from Linux 7.0 (fserror); its health bits join this decoder with native health.
/// </summary>
public sealed class XfsDecoder : IFilesystemDecoder
{
    public const ulong Magic = 0x58465342;
    private static readonly int[] Types = [FILEID_INO32_GEN, FILEID_INO32_GEN_PARENT, FILEID_INO64_GEN, FILEID_INO64_GEN_PARENT];

    public string Name => "xfs";

    public FileObject DecodeHandle(int handleType, ReadOnlySpan<byte> handle) => FileHandleLayout.Decode(handleType, handle, Types);

    public ErrorMeaning DescribeError(int errno)
    {
        var generic = ErrorMeaning.Generic(errno);
        return errno switch
        {
            Libc.EUCLEAN => generic with { Category = ErrorCategory.Corruption, Meaning = "metadata corruption: metadata marked sick", Alias = "EFSCORRUPTED" },
            Libc.EBADMSG => generic with { Category = ErrorCategory.Corruption, Meaning = "metadata checksum error", Alias = "EFSBADCRC" },
            Libc.EIO => generic with { Category = ErrorCategory.Io, Meaning = "I/O error (metadata, or file data through iomap)" },
            Libc.ESHUTDOWN => generic with { Category = ErrorCategory.Shutdown, Meaning = "forced shutdown" },
            61 => generic with { Category = ErrorCategory.Io, Meaning = "data lost (media failure)" },
            Libc.ENOSPC => generic with { Category = ErrorCategory.Resource, Meaning = "no space (thin-provisioned device?)" },
            _ => generic,
        };
    }

    public void AddDetails(DecodeContext context)
    {
        var section = context.Details.Section(Name);
        if (!context.Object.IsWholeFilesystem)
            section.Set("inode_numbers", (context.Object.HandleType & 0x80) != 0 ? "64-bit" : "32-bit (inode32)");
    }
}
