namespace ErrorWatch.Health.KernelLog;

/// <summary>What a matched kernel-log line says happened.</summary>
public enum KernelLogKind : byte
{
    /// <summary>A verifier or consistency check failed (EFSCORRUPTED).</summary>
    Corruption,

    /// <summary>Metadata failed its CRC (EFSBADCRC).</summary>
    ChecksumError,

    /// <summary>A metadata or log read/write failed.</summary>
    IoError,

    /// <summary>The filesystem shut itself down (or was told to): every later operation fails.</summary>
    Shutdown,

    /// <summary>The filesystem went read-only after an error, or its journal aborted.</summary>
    ReadOnly,

    /// <summary>An internal consistency assertion (XFS "Internal error", "Assertion failed").</summary>
    InternalError,

    /// <summary>An error of another errno (ENOMEM, ENOSPC ...).</summary>
    Error,

    /// <summary>
    /// The device was mounted ("XFS (dev): Mounting V5 Filesystem", "EXT4-fs (dev): mounted filesystem"):
    /// not an error, but a boundary: earlier lines naming this device are about an earlier filesystem.
    /// </summary>
    Mounted,
}

/// <summary>
/// One filesystem error recognised in a /dev/kmsg record. Numbers are those printed in the line;
/// a field the line does not carry is null.
/// </summary>
public sealed record KernelLogSignal
{
    /// <summary>"xfs" or "ext4".</summary>
    public required string FsType { get; init; }

    /// <summary>The kernel's s_id (loop0, sda1, dm-0), or null for XFS lines without a mount ("XFS: ").</summary>
    public required string? DeviceName { get; init; }

    public required KernelLogKind Kind { get; init; }

    /// <summary>
    /// Whether the kernel wrote the record. Only facility 0 counts: anyone allowed to write /dev/kmsg
    /// can print any text, but devkmsg_write() gives such lines facility 1 (user) or higher, even
    /// when they start with "&lt;0&gt;"..."&lt;7&gt;". An untrusted signal must not raise a report.
    /// </summary>
    public bool IsTrusted => Facility == KmsgRecord.KernelFacility;

    public required int Facility { get; init; }
    public required int Level { get; init; }
    public required ulong Sequence { get; init; }
    public required ulong TimestampMicroseconds { get; init; }

    /// <summary>The whole message, \xNN escapes kept.</summary>
    public required string Message { get; init; }

    /// <summary>XFS "inode 0x83" (hex), ext4 "inode #12" (decimal).</summary>
    public ulong? Inode { get; init; }

    /// <summary>XFS 512-byte disk address: "block 0x78" in verifier lines, "daddr 0x78" in I/O error lines.</summary>
    public ulong? Daddr { get; init; }

    /// <summary>ext4 filesystem block number ("block 1234").</summary>
    public ulong? Block { get; init; }

    /// <summary>The errno the line names ("error 74", "Filesystem failed CRC"), or the one its kind implies for XFS verifier lines.</summary>
    public int? Errno { get; init; }

    /// <summary>The kernel function named by the line, without "+0x../0x.." or " [module]".</summary>
    public string? Function { get; init; }

    /// <summary>ext4 "func:LINE", XFS "(file.c:LINE)" or "at line LINE".</summary>
    public int? Line { get; init; }

    /// <summary>ext4 "comm NAME": the task that hit the error (up to 15 bytes, chosen by that task).</summary>
    public string? Comm { get; init; }
}
