using ErrorWatch.Filesystems;

namespace ErrorWatch.Kernel;

/// <summary>
/// A FAN_FS_ERROR event (or a queue overflow) copied out of the read buffer, attributed to the
/// superblock whose group it was read from. This is what the read loop hands to the decoders.
/// </summary>
public sealed class FsErrorEvent
{
    public required Superblock Superblock { get; init; }
    public required DateTimeOffset Time { get; init; }
    /// <summary>Stopwatch timestamp of the read(2) that returned the event (report latency starts here).</summary>
    public long ReadTimestamp { get; init; }
    public ulong Mask { get; init; }
    public int Pid { get; init; }

    /// <summary>FAN_Q_OVERFLOW: the kernel dropped events for this group.</summary>
    public bool IsOverflow { get; init; }

    /// <summary>The error field as the kernel sent it (negative from ext4's std_error before 7.0).</summary>
    public int RawError { get; init; }
    public int Errno { get; init; }
    /// <summary>Errors this report stands for: error_count, summed over coalesced events.</summary>
    public ulong Count { get; set; }

    public bool HasFid { get; init; }
    public FilesystemId Fsid { get; init; }
    public int HandleType { get; init; } = Interop.Fanotify.FILEID_INVALID;
    public byte[] Handle { get; init; } = [];

    /// <summary>Every info record of the event, raw, when it held records the core does not interpret.</summary>
    public byte[]? UnknownRecords { get; init; }
    public FanotifyParseError Problem { get; init; }

    /// <summary>Kernel events folded into this one when the hand-off was full (1 normally).</summary>
    public int KernelEvents { get; set; } = 1;

    /// <summary>Count per errno over the folded events, when they differed from <see cref="Errno"/>.</summary>
    public Dictionary<int, ulong>? FoldedErrnos { get; set; }

    public bool IsWholeFilesystem => Handle.Length == 0 || HandleType == Interop.Fanotify.FILEID_INVALID;

    /// <summary>Copies what a FAN_FS_ERROR event says out of the read buffer (the only copy made per event).</summary>
    public static FsErrorEvent FromKernel(Superblock superblock, FanotifyEvent ev, in EventRecords records, DateTimeOffset time, long readTimestamp) => new()
    {
        Superblock = superblock,
        Time = time,
        ReadTimestamp = readTimestamp,
        Mask = ev.Mask,
        Pid = ev.Pid,
        RawError = records.HasError ? records.Error.RawError : 0,
        Errno = records.HasError ? records.Error.Errno : 0,
        Count = records.ErrorCount,
        HasFid = records.HasFid,
        Fsid = records.Fsid,
        HandleType = records.HandleType,
        Handle = records.IsWholeFilesystem ? [] : records.Handle.ToArray(),
        UnknownRecords = records.UnknownCount > 0 ? records.RecordBytes.ToArray() : null,
        Problem = records.Problem,
    };

    /// <summary>A notice that events were lost: FAN_Q_OVERFLOW, or a buffer that could not be parsed past <paramref name="problem"/>.</summary>
    public static FsErrorEvent Lost(Superblock superblock, DateTimeOffset time, long readTimestamp, ulong mask, FanotifyParseError problem = default) => new()
    {
        Superblock = superblock,
        Time = time,
        ReadTimestamp = readTimestamp,
        Mask = mask,
        IsOverflow = true,
        Count = 0,
        Problem = problem,
    };
}
