using ErrorWatch.Filesystems;
using ErrorWatch.Kernel;
using ErrorWatch.Reports;
using ErrorWatch.Watching;

namespace ErrorWatch.Decoding;

/// <summary>
/// Turns an event on one kind of filesystem into what that filesystem means by it: the decoder of
/// a <see cref="Modules.IFilesystemModule"/>.
/// </summary>
public interface IFilesystemDecoder
{
    /// <summary>Short name used as the details section ("ext4", "xfs", "generic").</summary>
    string Name { get; }

    /// <summary>Decodes the kernel file handle this filesystem encoded.</summary>
    FileObject DecodeHandle(int handleType, ReadOnlySpan<byte> handle);

    /// <summary>What the errno means on this filesystem.</summary>
    ErrorMeaning DescribeError(int errno);

    /// <summary>Adds the filesystem's own error record (sysfs counters, health bits...) to the report.</summary>
    void AddDetails(DecodeContext context);

    /// <summary>
    /// A file handle for an inode a native source named without one (ext4's last error inode, an XFS
    /// sick inode), so its path can be resolved like an event's; null when the filesystem has no such encoding.
    /// </summary>
    (int Type, byte[] Handle)? EncodeHandle(ulong inode, uint? generation) => null;
}

/// <summary>
/// Decodes one fanotify info record type the core does not know, for one filesystem type (or all):
/// the shape the original FAN_FS_ERROR proposal had for filesystem-specific error blobs.
/// </summary>
public interface IInfoRecordDecoder
{
    void Decode(DecodeContext context, byte recordType, ReadOnlySpan<byte> record);
}

/// <summary>Everything a decoder may look at, and the details it writes to.</summary>
public sealed class DecodeContext
{
    public required Superblock Superblock { get; init; }
    /// <summary>The fanotify event being decoded, or null for a native health finding.</summary>
    public FsErrorEvent? Event { get; init; }
    /// <summary>The native health finding being decoded, or null for a fanotify event.</summary>
    public HealthFinding? Finding { get; init; }
    public required FileObject Object { get; init; }
    public ReportDetails Details { get; } = new();
}
