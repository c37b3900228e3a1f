using System.Text;
using ErrorWatch.Health.KernelLog;

namespace ErrorWatch.Tests.Health;

/// <summary>The XFS and ext4 lines of kernel-abi.md §7.7 and lines captured on this machine's kernel (6.18).</summary>
public class KernelLogMatcherTests
{
    private const int KernCrit = 2, KernAlert = 1;

    private static KernelLogSignal? Match(string message, int priority = KernCrit)
    {
        var bytes = Encoding.UTF8.GetBytes($"{priority},4711,123456789,-;{message}\n");
        Assert.True(KmsgRecord.TryParse(bytes, out var record, out var problem), problem);
        return KernelLogLines.Default.TryMatch(record, out var signal) ? signal : null;
    }

    private static KernelLogSignal Expect(string message, string fsType, string? device, KernelLogKind kind,
        ulong? inode = null, ulong? daddr = null, ulong? block = null, int? errno = null, string? function = null,
        int? line = null, string? comm = null)
    {
        var signal = Match(message);
        Assert.True(signal is not null, $"no match: {message}");
        Assert.Equal(fsType, signal.FsType);
        Assert.Equal(device, signal.DeviceName);
        Assert.Equal(kind, signal.Kind);
        Assert.Equal(inode, signal.Inode);
        Assert.Equal(daddr, signal.Daddr);
        Assert.Equal(block, signal.Block);
        Assert.Equal(errno, signal.Errno);
        Assert.Equal(function, signal.Function);
        Assert.Equal(line, signal.Line);
        Assert.Equal(comm, signal.Comm);
        Assert.Equal(message, signal.Message);
        Assert.Equal(4711ul, signal.Sequence);
        Assert.Equal(123456789ul, signal.TimestampMicroseconds);
        Assert.True(signal.IsTrusted);
        return signal;
    }

    // ---- captured on this machine ---------------------------------------------------------------

    [Fact]
    public void Xfs_ReadaheadVerifierCorruption() => Expect(
        "XFS (loop0): Metadata corruption detected at xfs_dir3_data_reada_verify+0x25/0x70, xfs_dir3_data_reada block 0x78 ",
        "xfs", "loop0", KernelLogKind.Corruption, daddr: 0x78, errno: 117, function: "xfs_dir3_data_reada_verify");

    [Fact]
    public void Xfs_ReadVerifierCrcError() => Expect(
        "XFS (loop0): Metadata CRC error detected at xfs_dir3_data_read_verify+0x71/0x100, xfs_dir3_data block 0x78 ",
        "xfs", "loop0", KernelLogKind.ChecksumError, daddr: 0x78, errno: 74, function: "xfs_dir3_data_read_verify");

    [Fact]
    public void Xfs_MetadataIoError_WithEfsbadcrc_IsAChecksumError() => Expect(
        "XFS (loop0): metadata I/O error in \"xfs_da_read_buf+0xea/0x180\" at daddr 0x78 len 8 error 74",
        "xfs", "loop0", KernelLogKind.ChecksumError, daddr: 0x78, errno: 74, function: "xfs_da_read_buf");

    [Fact]
    public void Xfs_UserInitiatedShutdown() => Expect(
        "XFS (loop0): User initiated shutdown received.",
        "xfs", "loop0", KernelLogKind.Shutdown);

    [Fact]
    public void Xfs_LogIoErrorShutdown() => Expect(
        "XFS (loop0): Log I/O Error (0x6) detected at xfs_fs_goingdown+0x63/0xb0 (fs/xfs/xfs_fsops.c:475).  Shutting down filesystem.",
        "xfs", "loop0", KernelLogKind.Shutdown, function: "xfs_fs_goingdown", line: 475);

    [Fact]
    public void Ext4_GroupLockedError() => Expect(
        "EXT4-fs error (device loop0): ext4_mb_generate_buddy:1317: group 0, block bitmap and bg descriptor inconsistent: 3808 vs 100 free clusters",
        "ext4", "loop0", KernelLogKind.Corruption, function: "ext4_mb_generate_buddy", line: 1317);

    [Fact]
    public void Ext4_TriggerFsError() => Expect(
        "EXT4-fs error (device loop0): trigger_test_error:129: comm sh: x",
        "ext4", "loop0", KernelLogKind.Corruption, function: "trigger_test_error", line: 129, comm: "sh");

    [Fact]
    public void Ext4_RemountingReadOnly() => Expect(
        "EXT4-fs (loop0): Remounting filesystem read-only",
        "ext4", "loop0", KernelLogKind.ReadOnly);

    [Fact]
    public void Ext4_ShutDownRequested() => Expect(
        "EXT4-fs (loop0): shut down requested (2)",
        "ext4", "loop0", KernelLogKind.Shutdown);

    [Fact]
    public void Ext4_AbortForcedByUser_IsAShutdown() => Expect(
        "EXT4-fs error (device loop1): __ext4_remount:6785: comm mount: Abort forced by user",
        "ext4", "loop1", KernelLogKind.Shutdown, function: "__ext4_remount", line: 6785, comm: "mount");

    // ---- XFS, kernel-abi.md §7.7 --------------------------------------------------------------

    [Fact]
    public void Xfs_InodeVerifierCorruption_InModule() => Expect(
        "XFS (sda1): Metadata corruption detected at xfs_dinode_verify.part.0+0x1a0/0x5c0 [xfs], inode 0x83 dinode",
        "xfs", "sda1", KernelLogKind.Corruption, inode: 0x83, errno: 117, function: "xfs_dinode_verify.part.0");

    [Fact]
    public void Xfs_InodeCrcError() => Expect(
        "XFS (nvme0n1p2): Metadata CRC error detected at xfs_inode_buf_read_verify+0x8e/0x110 [xfs], inode 0x2a0 xfs_inode",
        "xfs", "nvme0n1p2", KernelLogKind.ChecksumError, inode: 0x2a0, errno: 74, function: "xfs_inode_buf_read_verify");

    [Fact]
    public void Xfs_BufferCrcError_InModule() => Expect(
        "XFS (dm-0): Metadata CRC error detected at xfs_agf_read_verify+0xd0/0xf0 [xfs], xfs_agf block 0x1 ",
        "xfs", "dm-0", KernelLogKind.ChecksumError, daddr: 0x1, errno: 74, function: "xfs_agf_read_verify");

    [Fact]
    public void Xfs_InternalError() => Expect(
        "XFS (sda1): Internal error XFS_WANT_CORRUPTED_GOTO at line 1423 of file fs/xfs/libxfs/xfs_alloc.c.  Caller xfs_free_ag_extent+0x3f6/0x870 [xfs]",
        "xfs", "sda1", KernelLogKind.InternalError, function: "xfs_free_ag_extent", line: 1423);

    [Fact]
    public void Xfs_InternalError_WithSpacesInTheExpression() => Expect(
        "XFS (sda1): Internal error !xfs_verify_fsbno(mp, bno) at line 73 of file fs/xfs/libxfs/xfs_alloc.c.  Caller xfs_alloc_get_rec+0x80/0xa0",
        "xfs", "sda1", KernelLogKind.InternalError, function: "xfs_alloc_get_rec", line: 73);

    [Fact]
    public void Xfs_MetadataIoError_Eio() => Expect(
        "XFS (sdb): metadata I/O error in \"xfs_buf_ioend_work\" at daddr 0x2 len 1 error 5",
        "xfs", "sdb", KernelLogKind.IoError, daddr: 0x2, errno: 5, function: "xfs_buf_ioend_work");

    [Fact]
    public void Xfs_MetadataIoError_Efscorrupted() => Expect(
        "XFS (sdb): metadata I/O error in \"xfs_trans_read_buf_map+0x1f9/0x300 [xfs]\" at daddr 0x1d4c0 len 8 error 117",
        "xfs", "sdb", KernelLogKind.Corruption, daddr: 0x1d4c0, errno: 117, function: "xfs_trans_read_buf_map");

    [Fact]
    public void Xfs_MetadataIoError_Pre419Format() => Expect(
        "XFS (sdb): metadata I/O error: block 0x1d4c0 (\"xfs_trans_read_buf_map\") error 5 numblks 8",
        "xfs", "sdb", KernelLogKind.IoError, daddr: 0x1d4c0, errno: 5, function: "xfs_trans_read_buf_map");

    [Fact]
    public void Xfs_LogIoError() => Expect(
        "XFS (loop0): log I/O error -5",
        "xfs", "loop0", KernelLogKind.IoError, errno: 5);

    [Theory]
    [InlineData("Corruption of in-memory data (0x8) detected at xfs_trans_cancel+0x15c/0x170 [xfs] (fs/xfs/xfs_trans.c:1098).  Shutting down filesystem.", "xfs_trans_cancel", 1098)]
    [InlineData("Corruption of on-disk metadata (0x2) detected at xfs_bmap_btalloc+0x1d/0x30 (fs/xfs/libxfs/xfs_bmap.c:3402).  Shutting down filesystem.", "xfs_bmap_btalloc", 3402)]
    [InlineData("Block device removal (0x20) detected at fs_bdev_mark_dead+0x59/0x70 (fs/super.c:1261).  Shutting down filesystem.", "fs_bdev_mark_dead", 1261)]
    [InlineData("Metadata I/O Error (0x1) detected at xfs_trans_read_buf_map+0x1f9/0x300 [xfs] (fs/xfs/xfs_trans_buf.c:296).  Shutting down filesystem.", "xfs_trans_read_buf_map", 296)]
    [InlineData("Log I/O Error (0x2) detected at xlog_ioend_work+0x6e/0x70 (fs/xfs/xfs_log.c:1254).  Shutting down filesystem.", "xlog_ioend_work", 1254)]
    public void Xfs_ShutdownReasons(string rest, string function, int line) => Expect(
        "XFS (vda3): " + rest, "xfs", "vda3", KernelLogKind.Shutdown, function: function, line: line);

    [Theory]
    [InlineData("User initiated shutdown received. Shutting down filesystem")]
    [InlineData("Corruption of in-memory data detected.  Shutting down filesystem")]
    [InlineData("Log I/O Error Detected.  Shutting down filesystem")]
    public void Xfs_OlderShutdownForms(string rest) => Expect("XFS (sda5): " + rest, "xfs", "sda5", KernelLogKind.Shutdown);

    [Fact]
    public void Xfs_AssertionWithoutMount() => Expect(
        "XFS: Assertion failed: 0, file: fs/xfs/xfs_inode.c, line: 1234",
        "xfs", null, KernelLogKind.InternalError, line: 1234);

    // ---- ext4, kernel-abi.md §7.7 -------------------------------------------------------------

    [Fact]
    public void Ext4_InodeError() => Expect(
        "EXT4-fs error (device sda1): ext4_lookup:1855: inode #2: comm ls: deleted inode referenced: 12",
        "ext4", "sda1", KernelLogKind.Corruption, inode: 2, function: "ext4_lookup", line: 1855, comm: "ls");

    [Fact]
    public void Ext4_InodeError_NumbersInTheTextAreNotFields() => Expect(
        "EXT4-fs error (device sda1): ext4_find_extent:923: inode #12: comm cat: pblk 1234 bad header/extent: invalid magic - magic 0, entries 0, max 0(0), depth 0(0)",
        "ext4", "sda1", KernelLogKind.Corruption, inode: 12, function: "ext4_find_extent", line: 923, comm: "cat");

    [Fact]
    public void Ext4_InodeAndBlockError() => Expect(
        "EXT4-fs error (device sdb1): htree_dirblock_to_tree:1080: inode #2: block 1234: comm ls: bad entry in directory: rec_len is smaller than minimal - offset=0, inode=0, rec_len=0, size=4096 fake=0",
        "ext4", "sdb1", KernelLogKind.Corruption, inode: 2, block: 1234, function: "htree_dirblock_to_tree", line: 1080, comm: "ls");

    [Fact]
    public void Ext4_FileError_WithPath() => Expect(
        "EXT4-fs error (device loop0): ext4_readdir:260: inode #2: block 9: comm ls: path /mnt/x: bad entry in directory",
        "ext4", "loop0", KernelLogKind.Corruption, inode: 2, block: 9, function: "ext4_readdir", line: 260, comm: "ls");

    [Fact]
    public void Ext4_ChecksumWording_IsAChecksumError() => Expect(
        "EXT4-fs error (device loop0): ext4_iget:4988: inode #12: comm stat: iget: checksum invalid",
        "ext4", "loop0", KernelLogKind.ChecksumError, inode: 12, function: "ext4_iget", line: 4988, comm: "stat");

    [Fact]
    public void Ext4_GroupLockedError_WithInodeAndBlock() => Expect(
        "EXT4-fs error (device sda): ext4_mb_complex_scan_group:2204: group 5, inode 12: block 1234:free 3 clusters as per group info",
        "ext4", "sda", KernelLogKind.Corruption, inode: 12, block: 1234, function: "ext4_mb_complex_scan_group", line: 2204);

    [Theory]
    [InlineData("Corrupt filesystem", KernelLogKind.Corruption, 117)]
    [InlineData("Filesystem failed CRC", KernelLogKind.ChecksumError, 74)]
    [InlineData("IO failure", KernelLogKind.IoError, 5)]
    [InlineData("Out of memory", KernelLogKind.Error, 12)]
    [InlineData("Journal has aborted", KernelLogKind.ReadOnly, 30)]
    [InlineData("Readonly filesystem", KernelLogKind.ReadOnly, 30)]
    [InlineData("error 28", KernelLogKind.Error, 28)]
    [InlineData("error 5", KernelLogKind.IoError, 5)]
    public void Ext4_StdError(string errstr, KernelLogKind kind, int errno) => Expect(
        $"EXT4-fs error (device loop0) in ext4_reserve_inode_write:5701: {errstr}",
        "ext4", "loop0", kind, errno: errno, function: "ext4_reserve_inode_write", line: 5701);

    [Fact]
    public void Ext4_StdError_UnknownText_IsAnError() => Expect(
        "EXT4-fs error (device loop0) in ext4_evict_inode:250: something new",
        "ext4", "loop0", KernelLogKind.Error, function: "ext4_evict_inode", line: 250);

    [Fact]
    public void Ext4_SuperblockWriteError() => Expect(
        "EXT4-fs (sda1): I/O error while writing superblock",
        "ext4", "sda1", KernelLogKind.IoError, errno: 5);

    [Fact]
    public void Ext4_DelayedAllocationFailure() => Expect(
        "EXT4-fs (dm-3): Delayed block allocation failed for inode 131 at logical offset 0 with max blocks 2 with error 117",
        "ext4", "dm-3", KernelLogKind.Corruption, inode: 131, errno: 117);

    [Fact]
    public void Ext4_UnwrittenConversionFailure() => Expect(
        "EXT4-fs (loop0): failed to convert unwritten extents to written extents -- potential data loss!  (inode 12, error -5)",
        "ext4", "loop0", KernelLogKind.IoError, inode: 12, errno: 5);

    // ---- mount boundaries -----------------------------------------------------------------------

    [Theory]
    [InlineData("XFS (loop0): Mounting V5 Filesystem 9c8f7376-ee84-4391-a73f-b74c41eaf5ee", "xfs")]
    [InlineData("EXT4-fs (loop0): mounted filesystem 9c8f7376-ee84-4391-a73f-b74c41eaf5ee r/w with ordered data mode. Quota mode: none.", "ext4")]
    public void Mount_lines_mark_where_earlier_lines_about_the_device_stop_applying(string message, string fsType) =>
        Expect(message, fsType, "loop0", KernelLogKind.Mounted);

    [Fact]
    public void A_mount_line_drops_block_hints_from_an_earlier_filesystem_on_the_same_device()
    {
        var sb = new ErrorWatch.Filesystems.Superblock(new ErrorWatch.Filesystems.DeviceNumber(7, 0), "xfs", []) { KernelName = "loop0", Magic = ErrorWatch.Modules.Xfs.XfsModule.SuperMagic };
        using var source = new ErrorWatch.Modules.Xfs.XfsHealth(new ErrorWatch.Watching.SuperblockWatch(sb, null!), ErrorWatch.Health.HealthBaseline.InMemory(),
            "boot/7:0/1", new ErrorWatch.Health.HealthOptions { XfsHealthMonitor = false }, Serilog.Core.Logger.None);
        source.Hint(Match("XFS (loop0): Metadata corruption detected at f+0x1/0x2, xfs_dir3_data block 0x78 ")!);
        Assert.Equal(1, source.PendingBlocks);
        source.Hint(Match("XFS (loop0): Mounting V5 Filesystem 9c8f7376-ee84-4391-a73f-b74c41eaf5ee")!);
        Assert.Equal(0, source.PendingBlocks);
        source.Hint(Match("XFS (loop0): metadata I/O error in \"xfs_da_read_buf+0xea/0x180\" at daddr 0x78 len 8 error 74")!);
        Assert.Equal(1, source.PendingBlocks);
    }

    // ---- not signals ----------------------------------------------------------------------------

    [Theory]
    [InlineData("")]
    [InlineData("XFS (loop0): Unmount and run xfs_repair")]
    [InlineData("XFS (loop0): Corruption detected. Unmount and run xfs_repair")]
    [InlineData("XFS (loop0): First 128 bytes of corrupted metadata buffer:")]
    [InlineData("00000000: 58 44 44 33 00 00 00 00 00 00 00 00 00 00 00 78  XDD3...........x")]
    [InlineData("00000010: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  ................")]
    [InlineData("XFS (loop0): Please unmount the filesystem and rectify the problem(s)")]
    [InlineData("XFS (loop0): Ending clean mount")]
    [InlineData("XFS (loop0): Unmounting Filesystem 9c8f7376-ee84-4391-a73f-b74c41eaf5ee")]
    [InlineData("XFS (loop0): xfs_do_force_shutdown(0x2) called from line 1196 of file fs/xfs/xfs_trans.c. Return address = xfs_trans_cancel+0x15c/0x170")]
    [InlineData("xfs filesystem being mounted at /mnt supports timestamps until 2038-01-19 (0x7fffffff)")]
    [InlineData("EXT4-fs (loop0): unmounting filesystem 9c8f7376-ee84-4391-a73f-b74c41eaf5ee.")]
    [InlineData("EXT4-fs (loop0): re-mounted 9c8f7376-ee84-4391-a73f-b74c41eaf5ee ro.")]
    [InlineData("EXT4-fs (loop0): error count since last fsck: 7")]
    [InlineData("EXT4-fs (loop0): initial error at time 1700000000: ext4_lookup:1855: inode 12")]
    [InlineData("EXT4-fs (loop0): last error at time 1700000000: ext4_lookup:1855: inode 12")]
    [InlineData("EXT4-fs warning (device loop0): ext4_dirblock_csum_verify:405: inode #2: comm ls: No space for directory leaf checksum. Please run e2fsck -D.")]
    [InlineData("EXT4-fs: Warning: mounting with data=journal disables delayed allocation, dioread_nolock, O_DIRECT and fast_commit support!")]
    [InlineData("loop0: detected capacity change from 0 to 65536")]
    [InlineData("Aborting journal on device loop0-8.")]
    [InlineData("XFS (loop0) Metadata corruption detected at f+0x1/0x2, xfs_agf block 0x1 ")]
    [InlineData("XFS (bad dev): Metadata corruption detected at f+0x1/0x2, xfs_agf block 0x1 ")]
    [InlineData("XFS (): Metadata corruption detected at f+0x1/0x2, xfs_agf block 0x1 ")]
    [InlineData("XFS (loop0\\x0a): Metadata corruption detected at f+0x1/0x2, xfs_agf block 0x1 ")]
    [InlineData("xfs (loop0): Metadata corruption detected at f+0x1/0x2, xfs_agf block 0x1 ")]
    [InlineData("EXT4-fs error (device loop0)")]
    [InlineData("EXT4-fs error (device loop0")]
    [InlineData("EXT4-fs error (device ): f:1: comm x: y")]
    [InlineData("EXT4-fs (loop0)")]
    [InlineData("sh[123]: XFS (loop0): Metadata corruption detected at f+0x1/0x2, xfs_agf block 0x1 ")]
    public void OtherLines_AreNotSignals(string message)
    {
        Assert.Null(Match(message));
    }

    // ---- trust ----------------------------------------------------------------------------------

    [Theory]
    [InlineData(12)] // "<4>..." written to /dev/kmsg: user.warning
    [InlineData(8)]  // "<0>..." written to /dev/kmsg: facility 0 is turned into user
    [InlineData(11)] // "<11>" user.err
    [InlineData(30)] // daemon.info
    public void UserFacilityLines_MatchButAreUntrusted(int priority)
    {
        var signal = Match("XFS (loop0): Metadata corruption detected at f+0x1/0x2, xfs_agf block 0x1 ", priority);

        Assert.NotNull(signal);
        Assert.False(signal.IsTrusted);
        Assert.Equal(priority >> 3, signal.Facility);
        Assert.Equal(priority & 7, signal.Level);
    }

    [Theory]
    [InlineData(KernCrit)]
    [InlineData(KernAlert)]
    [InlineData(7)]
    public void KernelFacilityLines_AreTrusted(int priority)
    {
        var signal = Match("EXT4-fs (loop0): Remounting filesystem read-only", priority);

        Assert.NotNull(signal);
        Assert.True(signal.IsTrusted);
        Assert.Equal(0, signal.Facility);
        Assert.Equal(priority, signal.Level);
    }

    // ---- hostile text -----------------------------------------------------------------------------

    public static TheoryData<string> SignalLines => new()
    {
        "XFS (loop0): Metadata corruption detected at xfs_dir3_data_reada_verify+0x25/0x70, xfs_dir3_data_reada block 0x78 ",
        "XFS (loop0): metadata I/O error in \"xfs_da_read_buf+0xea/0x180\" at daddr 0x78 len 8 error 74",
        "XFS (loop0): Log I/O Error (0x6) detected at xfs_fs_goingdown+0x63/0xb0 (fs/xfs/xfs_fsops.c:475).  Shutting down filesystem.",
        "XFS (sda1): Internal error XFS_WANT_CORRUPTED_GOTO at line 1423 of file fs/xfs/libxfs/xfs_alloc.c.  Caller xfs_free_ag_extent+0x3f6/0x870 [xfs]",
        "XFS: Assertion failed: 0, file: fs/xfs/xfs_inode.c, line: 1234",
        "EXT4-fs error (device sdb1): htree_dirblock_to_tree:1080: inode #2: block 1234: comm ls: bad entry",
        "EXT4-fs error (device sda): ext4_mb_complex_scan_group:2204: group 5, inode 12: block 1234:free",
        "EXT4-fs error (device loop0) in ext4_reserve_inode_write:5701: error 28",
        "EXT4-fs (dm-3): Delayed block allocation failed for inode 131 at logical offset 0 with max blocks 2 with error 117",
        "EXT4-fs (loop0): failed to convert unwritten extents to written extents -- potential data loss!  (inode 12, error -5)",
    };

    [Theory]
    [MemberData(nameof(SignalLines))]
    public void EveryPrefixOfASignalLine_NeverThrows(string line)
    {
        for (var length = 0; length <= line.Length; length++)
            _ = Match(line[..length]);
    }

    [Theory]
    [InlineData("XFS (loop0): Metadata corruption detected at , inode 0x")]
    [InlineData("XFS (loop0): Metadata corruption detected at +0x1/0x2 [xfs], xfs_agf block 0xZZ")]
    [InlineData("XFS (loop0): Metadata CRC error detected at f, inode 0x11111111111111111111111111")]
    [InlineData("XFS (loop0): metadata I/O error in \"unterminated at daddr 0x error error -")]
    [InlineData("XFS (loop0): Internal error  at line 99999999999999999999999 of file .  Caller ")]
    [InlineData("XFS (loop0): x detected at (:).  Shutting down filesystem.")]
    [InlineData("EXT4-fs error (device loop0): :1: comm")]
    [InlineData("EXT4-fs error (device loop0): f:99999999999999999999999: inode #99999999999999999999999: block : comm ")]
    [InlineData("EXT4-fs error (device loop0): f:1: group , inode : block")]
    [InlineData("EXT4-fs error (device loop0) in f:1: error -")]
    [InlineData("EXT4-fs error (device loop0) in f:1: error 99999999999")]
    public void NonsenseNumbers_GiveNullFields_NotExceptions(string message)
    {
        var signal = Match(message);

        Assert.NotNull(signal); // the shape is right; only the numbers are missing
        Assert.True(signal.Inode is null or < 1UL << 63);
    }
}
