namespace ErrorWatch.Health.KernelLog;

/// <summary>
/// One filesystem's error lines in the kernel log, provided by its module
/// (<see cref="Modules.IFilesystemModule.KernelLog"/>) and asked by the <see cref="KernelLogMatcher"/>.
/// </summary>
public interface IKernelLogDialect
{
    /// <summary>A cheap look at the raw message (almost every record is about something else): is it one of this filesystem's lines?</summary>
    bool Claims(ReadOnlySpan<byte> message);

    /// <summary>Reads a line it claimed into <paramref name="line"/>; false when it is no signal (mount chatter, a follow-up line).</summary>
    bool TryParse(string text, ref KernelLogLine line);
}

/// <summary>What a dialect read from one line; the matcher adds the record's own fields.</summary>
public struct KernelLogLine
{
    /// <summary>The device the line names (s_id), or null before a mount.</summary>
    public string? Device;
    public KernelLogKind Kind;
    public ulong? Inode, Daddr, Block;
    public int? Errno, Line;
    public string? Function, Comm;
}
