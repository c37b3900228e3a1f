using ErrorWatch.Decoding;
using ErrorWatch.Interop;
using ErrorWatch.Reports;
using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Modules.Ext4;

/// <summary>
/// ext4 (and ext2/ext3, which the ext4 code drives): 32-bit inode handles (type 1, or 2 with a parent), ext4's meaning of each
/// errno (fs/ext4/super.c), and the superblock's error record from /sys/fs/ext4/&lt;dev&gt;/ (kernel-abi.md §6).
/// </summary>
public sealed class Ext4Decoder : IFilesystemDecoder
{
    private static readonly int[] Types = [FILEID_INO32_GEN, FILEID_INO32_GEN_PARENT];

    private readonly string _sysfsRoot;

    public Ext4Decoder(string sysfsRoot = "/sys/fs/ext4") => _sysfsRoot = sysfsRoot;

    public string Name => "ext4";

    public FileObject DecodeHandle(int handleType, ReadOnlySpan<byte> handle) => FileHandleLayout.Decode(handleType, handle, Types);

    /// <summary>Type 1 (ino32 + generation). Generation 0 means "any" to ext4_nfs_get_inode, for inodes ext4 named without one.</summary>
    public (int Type, byte[] Handle)? EncodeHandle(ulong inode, uint? generation)
    {
        if (inode is 0 or > uint.MaxValue)
            return null;
        var handle = new byte[8];
        BitConverter.TryWriteBytes(handle, (uint)inode);
        BitConverter.TryWriteBytes(handle.AsSpan(4), generation ?? 0);
        return (FILEID_INO32_GEN, handle);
    }

    public ErrorMeaning DescribeError(int errno)
    {
        var generic = ErrorMeaning.Generic(errno);
        return errno switch
        {
            Libc.EUCLEAN => generic with { Category = ErrorCategory.Corruption, Meaning = "metadata corruption", Alias = "EFSCORRUPTED" },
            Libc.EBADMSG => generic with { Category = ErrorCategory.Corruption, Meaning = "metadata checksum mismatch", Alias = "EFSBADCRC" },
            Libc.EIO => generic with { Category = ErrorCategory.Io, Meaning = "I/O error on metadata or journal" },
            Libc.ESHUTDOWN => generic with { Category = ErrorCategory.Shutdown, Meaning = "filesystem aborted (shut down)" },
            Libc.EROFS => generic with { Category = ErrorCategory.ReadOnly, Meaning = "journal aborted, filesystem read-only" },
            Libc.ENOMEM => generic with { Category = ErrorCategory.Resource, Meaning = "out of memory in a journal operation" },
            Libc.ENOSPC => generic with { Category = ErrorCategory.Resource, Meaning = "no space for metadata" },
            _ => generic,
        };
    }

    public void AddDetails(DecodeContext context)
    {
        var section = context.Details.Section(Name);
        if (ErrorsBehavior(context.Superblock) is { } behaviour)
            section.Set("errors_behavior", behaviour);
        if (string.IsNullOrEmpty(context.Superblock.KernelName))
        {
            section.Set("sysfs_error", "kernel device name unknown; /sys/fs/ext4 not read");
            return;
        }
        var dir = Path.Combine(_sysfsRoot, context.Superblock.KernelName);
        try
        {
            var record = ReadErrorRecord(dir, context.Superblock);
            section.Set("errors_count", record.ErrorsCount);
            if (record.First is { } first)
                section.Set("first_error", first.ToDetails());
            if (record.Last is { } last)
                section.Set("last_error", last.ToDetails());
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            section.Set("sysfs_error", $"{dir}: {e.Message}");
        }
    }

    // Per superblock object, so it dies with it; static so the health source and the decoder share one read.
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Filesystems.Superblock, string> OnDiskBehavior = new();

    /// <summary>
    /// errors=continue|remount-ro|panic: the mount option when given, else the superblock's s_errors,
    /// which ext4 leaves out of the mount options when it is the default (kernel-abi.md §6.4).
    /// </summary>
    public static string? ErrorsBehavior(Filesystems.Superblock sb)
    {
        if (sb.MountOption("errors") is { } option)
            return option;
        if (OnDiskBehavior.TryGetValue(sb, out var cached))
            return cached;
        var value = ReadSuperblockErrors(sb.DevicePath) switch
        {
            1 => "continue",
            2 => "remount-ro",
            3 => "panic",
            null => null,
            _ => "remount-ro", // the kernel treats any other value as remount-ro
        };
        if (value is not null)
            OnDiskBehavior.AddOrUpdate(sb, value);
        return value;
    }

    /// <summary>s_errors from the on-disk superblock (the one ext4 superblock reader), if it is ext4's.</summary>
    private static int? ReadSuperblockErrors(string devicePath) =>
        devicePath.StartsWith("/dev/", StringComparison.Ordinal)
        && Ext4SuperblockImage.ReadDevice(devicePath, out _) is { IsExt4: true } disk
            ? disk.RawErrorsBehavior
            : null;

    /// <summary>
    /// The error fields of each superblock object, kept open while it lives (the files close when it is
    /// collected): a storm of 100,000 errors is ~90,000 reports, each reading them on the path to the
    /// store (docs/performance.md).
    /// </summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Filesystems.Superblock, Ext4SysfsFields> Fields = new();

    /// <summary>errors_count and the first/last error groups of a watched superblock, through its kept-open fields.</summary>
    public static Ext4ErrorRecord ReadErrorRecord(string sysfsDir, Filesystems.Superblock superblock) =>
        Fields.GetValue(superblock, _ => new Ext4SysfsFields(sysfsDir)).Read();

    /// <summary>Reads errors_count and the first/last error fields the kernel keeps in the superblock; nothing stays open.</summary>
    public static Ext4ErrorRecord ReadErrorRecord(string sysfsDir)
    {
        using var fields = new Ext4SysfsFields(sysfsDir, keepOpen: false);
        return fields.Read();
    }
}

public sealed record Ext4ErrorRecord(ulong ErrorsCount, Ext4ErrorSite? First, Ext4ErrorSite? Last);

/// <summary>One s_first_error_* / s_last_error_* group of the ext4 superblock.</summary>
public sealed record Ext4ErrorSite(DateTimeOffset Time, string Function, uint Line, ulong Inode, ulong Block, byte Code)
{
    /// <summary>EXT4_ERR_* codes (fs/ext4/ext4.h, e2fsprogs lib/e2p/errcode.c).</summary>
    public static string CodeName(byte code) => code switch
    {
        0 => "none",
        1 => "UNKNOWN",
        2 => "EIO",
        3 => "ENOMEM",
        4 => "EFSBADCRC",
        5 => "EFSCORRUPTED",
        6 => "ENOSPC",
        7 => "ENOKEY",
        8 => "EROFS",
        9 => "EFBIG",
        10 => "EEXIST",
        11 => "ERANGE",
        12 => "EOVERFLOW",
        13 => "EBUSY",
        14 => "ENOTDIR",
        15 => "ENOTEMPTY",
        16 => "ESHUTDOWN",
        17 => "EFAULT",
        _ => $"code {code}",
    };

    public ReportDetails ToDetails() => new ReportDetails()
        .Set("time", Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ"))
        .Set("function", Function)
        .Set("line", Line)
        .Set("inode", Inode)
        .Set("block", Block)
        .Set("code", CodeName(Code));
}
