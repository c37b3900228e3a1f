using ErrorWatch.Decoding;
using ErrorWatch.Interop;
using ErrorWatch.Reports;
using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Modules.Xfs;

/// <summary>
/// XFS: handles of fs/xfs/xfs_export.c — 64-bit inode numbers (0x81,
/// parent 0x82) unless mounted inode32 on a small filesystem (1, 2) — and XFS's meaning of each errno.
/// XFS emits FAN_FS_ERROR from Linux 7.0 (fserror); its health bits join this decoder with native health.
/// </summary>
public sealed class XfsDecoder : IFilesystemDecoder
{
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

    /// <summary>Type 0x81 (ino64 + generation), which xfs_fs_fh_to_dentry accepts on every mount; XFS checks the generation, so it is required.</summary>
    public (int Type, byte[] Handle)? EncodeHandle(ulong inode, uint? generation)
    {
        if (generation is not { } gen || inode == 0)
            return null;
        var handle = new byte[12];
        BitConverter.TryWriteBytes(handle, inode);
        BitConverter.TryWriteBytes(handle.AsSpan(8), gen);
        return (FILEID_INO64_GEN, handle);
    }

    /// <summary>
    /// XFS's own record for every report: the sick and checked bits of the filesystem, the AG that
    /// holds the inode, and the inode itself (kernel-abi.md §7.2–7.4), read with ioctls on the mount root.
    /// </summary>
    public void AddDetails(DecodeContext context)
    {
        var section = context.Details.Section(Name);
        if (!context.Object.IsWholeFilesystem && context.Event is not null)
            section.Set("inode_numbers", (context.Object.HandleType & 0x80) != 0 ? "64-bit" : "32-bit (inode32)");
        var root = Filesystems.MountRoot.OpenAny(context.Superblock, out var problem, out var errno);
        if (root is null)
        {
            section.Set("health_error", errno == Libc.EIO ? "the mount root answers EIO: the filesystem is shut down" : problem ?? "cannot open the mount root");
            return;
        }
        using (root)
            AddHealth(section, root.Fd, context.Object.Inode);
    }

    private static void AddHealth(Reports.ReportDetails section, int fd, ulong? inode)
    {
        var e = XfsIoctl.Geometry(fd, out var geometry);
        if (e != 0 || !geometry.HasHealth)
        {
            section.Set("health_error", e != 0 ? $"XFS_IOC_FSGEOMETRY: {ErrnoTable.Name(e)}" : $"geometry version {geometry.Version} has no health fields");
            return;
        }
        var health = section.Section("health");
        health.Set("filesystem", Bits(geometry.Sick, geometry.Checked, XfsHealthNames.Filesystem));
        if (inode is not { } ino)
            return;
        var ag = AgOf(ino, geometry);
        if (XfsIoctl.AgGeometry(fd, ag, out var group) == 0)
            health.Set($"ag_{ag}", Bits(group.Sick, group.Checked, XfsHealthNames.Group));
        var b = XfsIoctl.BulkstatOne(fd, ino, out var stat);
        if (b == 0)
            health.Set($"inode_{ino}", Bits(stat.Sick, stat.Checked, XfsHealthNames.Inode).Set("generation", stat.Generation));
        else
            health.Set($"inode_{ino}", new Reports.ReportDetails().Set("error", $"XFS_IOC_BULKSTAT: {ErrnoTable.Name(b)}"));
    }

    /// <summary>agno = ino >> (inopblog + agblklog) (XFS_INO_TO_AGNO in fs/xfs/libxfs/xfs_format.h).</summary>
    internal static uint AgOf(ulong ino, in XfsGeometry geometry)
    {
        var inodesPerBlockLog = System.Numerics.BitOperations.Log2(geometry.BlockSize / Math.Max(1u, geometry.InodeSize));
        var agBlocksLog = System.Numerics.BitOperations.Log2(geometry.AgBlocks - 1) + 1; // xfs_highbit32(agblocks - 1) + 1
        return (uint)(ino >> (inodesPerBlockLog + agBlocksLog));
    }

    private static Reports.ReportDetails Bits(uint sick, uint @checked, Func<uint, IReadOnlyList<XfsStructure>> names) => new Reports.ReportDetails()
        .Set("sick", names(sick).Select(s => s.Id).ToArray())
        .Set("checked", names(@checked).Select(s => s.Id).ToArray())
        .Set("state", sick != 0 ? "unhealthy" : @checked != 0 ? "healthy" : "unchecked");
}
