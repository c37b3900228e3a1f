using System.Buffers.Binary;
using ErrorWatch.Interop;

namespace ErrorWatch.Modules.Xfs;

/// <summary>
/// XFS's own health reporting (kernel-abi.md §7): geometry and per-AG/per-inode sick masks,
/// reverse mapping of a disk address to its owner, and the 7.0 health monitor.
/// Numbers and layouts mirror fs/xfs/libxfs/xfs_fs.h and include/uapi/linux/fsmap.h (64-bit Linux).
/// Every function returns 0 or a positive errno and never throws for a kernel error, so a daemon can
/// treat "old kernel" (ENOTTY), "no privilege" (EPERM) and "not XFS" alike as "feature missing".
/// </summary>
public static unsafe class XfsIoctl
{
    // _IOC encoding (include/uapi/asm-generic/ioctl.h): dir<<30 | size<<16 | type<<8 | nr,
    // with _IOC_WRITE = 1, _IOC_READ = 2; 'X' = 0x58.

    /// <summary>_IOR('X', 126, struct xfs_fsop_geom), 256 bytes (§7.2; 5.1+, health fields valid when version is 5).</summary>
    public const uint XFS_IOC_FSGEOMETRY = 0x8100587e;
    /// <summary>_IOWR('X', 61, struct xfs_ag_geometry), 128 bytes (§7.3; 5.2+).</summary>
    public const uint XFS_IOC_AG_GEOMETRY = 0xc080583d;
    /// <summary>_IOR('X', 127, struct xfs_bulkstat_req): only the 64-byte header counts in the size (§7.4; v5, 5.4-ish, CAP_SYS_ADMIN).</summary>
    public const uint XFS_IOC_BULKSTAT = 0x8040587f;
    /// <summary>_IOWR('X', 59, struct fsmap_head), 192 bytes (fsmap.h; 4.12+; XFS reports inode owners only with rmapbt).</summary>
    public const uint FS_IOC_GETFSMAP = 0xc0c0583b;
    /// <summary>_IOW('X', 68, struct xfs_health_monitor), 32 bytes (§7.5; 7.0+, ENOTTY before).</summary>
    public const uint XFS_IOC_HEALTH_MONITOR = 0x40205844;

    // struct xfs_fsop_geom (256 bytes). 6.13 put rgextents@120 and rgcount@124 in front of reserved[16]@128.
    public const int FsGeomSize = 256;
    public const int FsGeomBlockSizeOffset = 0;
    public const int FsGeomAgBlocksOffset = 8;
    public const int FsGeomAgCountOffset = 12;
    public const int FsGeomInodeSizeOffset = 24; // u32 inodesize
    public const int FsGeomUuidOffset = 64;     // unsigned char[16], RFC 4122 byte order
    public const int FsGeomVersionOffset = 88;  // s32
    public const int FsGeomFlagsOffset = 92;
    public const int FsGeomSickOffset = 112;
    public const int FsGeomCheckedOffset = 116;

    /// <summary>XFS_FSOP_GEOM_VERSION_V5: sick/checked are only meaningful at this version.</summary>
    public const int XFS_FSOP_GEOM_VERSION_V5 = 5;

    // xfs_fsop_geom.flags (XFS_FSOP_GEOM_FLAGS_*), the ones a health reader cares about.
    public const uint XFS_FSOP_GEOM_FLAGS_V5SB = 1u << 15;
    public const uint XFS_FSOP_GEOM_FLAGS_FINOBT = 1u << 17;
    public const uint XFS_FSOP_GEOM_FLAGS_RMAPBT = 1u << 19; // GETFSMAP can name inode owners
    public const uint XFS_FSOP_GEOM_FLAGS_REFLINK = 1u << 20;
    public const uint XFS_FSOP_GEOM_FLAGS_PARENT = 1u << 25; // 6.10: parent pointers
    public const uint XFS_FSOP_GEOM_FLAGS_METADIR = 1u << 26; // 6.13

    // XFS_FSOP_GEOM_SICK_*: xfs_fsop_geom.sick/checked and the health monitor's fs mask.
    public const uint XFS_FSOP_GEOM_SICK_COUNTERS = 1u << 0;
    public const uint XFS_FSOP_GEOM_SICK_UQUOTA = 1u << 1;
    public const uint XFS_FSOP_GEOM_SICK_GQUOTA = 1u << 2;
    public const uint XFS_FSOP_GEOM_SICK_PQUOTA = 1u << 3;
    public const uint XFS_FSOP_GEOM_SICK_RT_BITMAP = 1u << 4;
    public const uint XFS_FSOP_GEOM_SICK_RT_SUMMARY = 1u << 5;
    public const uint XFS_FSOP_GEOM_SICK_QUOTACHECK = 1u << 6; // 6.9
    public const uint XFS_FSOP_GEOM_SICK_NLINKS = 1u << 7;     // 6.9
    public const uint XFS_FSOP_GEOM_SICK_METADIR = 1u << 8;    // 6.13
    public const uint XFS_FSOP_GEOM_SICK_METAPATH = 1u << 9;   // 6.14

    // struct xfs_ag_geometry (128 bytes); ag_flags and ag_reserved must be zero on input.
    public const int AgGeomSize = 128;
    public const int AgGeomNumberOffset = 0;
    public const int AgGeomLengthOffset = 4;
    public const int AgGeomFreeBlocksOffset = 8;
    public const int AgGeomInodeCountOffset = 12;
    public const int AgGeomFreeInodesOffset = 16;
    public const int AgGeomSickOffset = 20;
    public const int AgGeomCheckedOffset = 24;

    // XFS_AG_GEOM_SICK_*: ag_sick/ag_checked and the health monitor's AG mask.
    public const uint XFS_AG_GEOM_SICK_SB = 1u << 0;
    public const uint XFS_AG_GEOM_SICK_AGF = 1u << 1;
    public const uint XFS_AG_GEOM_SICK_AGFL = 1u << 2;
    public const uint XFS_AG_GEOM_SICK_AGI = 1u << 3;
    public const uint XFS_AG_GEOM_SICK_BNOBT = 1u << 4;
    public const uint XFS_AG_GEOM_SICK_CNTBT = 1u << 5;
    public const uint XFS_AG_GEOM_SICK_INOBT = 1u << 6;
    public const uint XFS_AG_GEOM_SICK_FINOBT = 1u << 7;
    public const uint XFS_AG_GEOM_SICK_RMAPBT = 1u << 8;
    public const uint XFS_AG_GEOM_SICK_REFCNTBT = 1u << 9;
    public const uint XFS_AG_GEOM_SICK_INODES = 1u << 10; // 6.9: a sick inode was reclaimed, its own state lost

    // XFS_RTGROUP_GEOM_SICK_* (6.13): XFS_IOC_RTGROUP_GEOMETRY and the health monitor's rtgroup mask.
    public const uint XFS_RTGROUP_GEOM_SICK_SUPER = 1u << 0;
    public const uint XFS_RTGROUP_GEOM_SICK_BITMAP = 1u << 1;
    public const uint XFS_RTGROUP_GEOM_SICK_SUMMARY = 1u << 2;
    public const uint XFS_RTGROUP_GEOM_SICK_RMAPBT = 1u << 3;
    public const uint XFS_RTGROUP_GEOM_SICK_REFCNTBT = 1u << 4;

    // struct xfs_bulk_ireq (64 bytes), the header of struct xfs_bulkstat_req.
    public const int BulkIreqSize = 64;
    public const int BulkIreqInoOffset = 0;     // u64 in: first inode to look at; out: next cursor
    public const int BulkIreqFlagsOffset = 8;   // u32
    public const int BulkIreqICountOffset = 12; // u32 in: records the buffer holds
    public const int BulkIreqOCountOffset = 16; // u32 out: records filled
    public const int BulkIreqAgnoOffset = 20;   // u32, with XFS_BULK_IREQ_AGNO
    public const uint XFS_BULK_IREQ_AGNO = 1u << 0;
    public const uint XFS_BULK_IREQ_SPECIAL = 1u << 1;
    public const uint XFS_BULK_IREQ_NREXT64 = 1u << 2;

    // struct xfs_bulkstat (192 bytes), XFS_BULKSTAT_VERSION_V5.
    public const int BulkstatSize = 192;
    public const int BulkstatInoOffset = 0;      // u64
    public const int BulkstatGenOffset = 64;     // u32
    public const int BulkstatSickOffset = 128;   // u16
    public const int BulkstatCheckedOffset = 130; // u16
    public const int BulkstatModeOffset = 132;   // u16

    // XFS_BS_SICK_*: bs_sick/bs_checked and the health monitor's inode mask.
    public const uint XFS_BS_SICK_INODE = 1u << 0;
    public const uint XFS_BS_SICK_BMBTD = 1u << 1;
    public const uint XFS_BS_SICK_BMBTA = 1u << 2;
    public const uint XFS_BS_SICK_BMBTC = 1u << 3;
    public const uint XFS_BS_SICK_DIR = 1u << 4;
    public const uint XFS_BS_SICK_XATTR = 1u << 5;
    public const uint XFS_BS_SICK_SYMLINK = 1u << 6;
    public const uint XFS_BS_SICK_PARENT = 1u << 7;
    public const uint XFS_BS_SICK_DIRTREE = 1u << 8; // 6.10

    /// <summary>Records per BULKSTAT call when walking an AG (xfs_scrub uses 64–1024): 48 KiB of buffer.</summary>
    public const int BulkstatBatch = 256;

    // struct fsmap_head (192 bytes: 64 bytes of counts and reserved, then fmh_keys[2]) and struct fsmap (64 bytes).
    public const int FsMapHeadSize = 192;
    public const int FsMapSize = 64;
    public const int FsMapHeadCountOffset = 8;   // u32 fmh_count: capacity of fmh_recs
    public const int FsMapHeadEntriesOffset = 12; // u32 fmh_entries: filled
    public const int FsMapHeadKeysOffset = 64;   // fmh_keys[0] (low), fmh_keys[1] (high) at 128
    public const int FsMapDeviceOffset = 0;      // u32
    public const int FsMapFlagsOffset = 4;       // u32
    public const int FsMapPhysicalOffset = 8;    // u64 bytes
    public const int FsMapOwnerOffset = 16;      // u64 inode number unless FMR_OF_SPECIAL_OWNER
    public const int FsMapOffsetOffset = 24;     // u64 file offset, bytes
    public const int FsMapLengthOffset = 32;     // u64 bytes
    public const uint FMR_OF_PREALLOC = 0x1;
    public const uint FMR_OF_ATTR_FORK = 0x2;
    public const uint FMR_OF_EXTENT_MAP = 0x4;
    public const uint FMR_OF_SHARED = 0x8;
    public const uint FMR_OF_SPECIAL_OWNER = 0x10;
    public const uint FMR_OF_LAST = 0x20;

    // Special owners (FMR_OWNER(type, code) = type << 32 | code), meaningful with FMR_OF_SPECIAL_OWNER.
    public const ulong FMR_OWN_FREE = 1, FMR_OWN_UNKNOWN = 2, FMR_OWN_METADATA = 3;
    public const ulong XFS_FMR_OWN_FS = (ulong)'X' << 32 | 1;
    public const ulong XFS_FMR_OWN_LOG = (ulong)'X' << 32 | 2;
    public const ulong XFS_FMR_OWN_AG = (ulong)'X' << 32 | 3;
    public const ulong XFS_FMR_OWN_INOBT = (ulong)'X' << 32 | 4;
    public const ulong XFS_FMR_OWN_INODES = (ulong)'X' << 32 | 5;
    public const ulong XFS_FMR_OWN_REFC = (ulong)'X' << 32 | 6;
    public const ulong XFS_FMR_OWN_COW = (ulong)'X' << 32 | 7;
    public const ulong XFS_FMR_OWN_DEFECTIVE = (ulong)'X' << 32 | 8;

    /// <summary>
    /// enum xfs_device XFS_DEV_DATA (6.15): fmr_device is this cookie instead of a dev_t when the
    /// realtime section shares the data device (zoned, sb_rtstart != 0).
    /// </summary>
    public const uint XFS_DEV_DATA = 1;

    /// <summary>A basic block, the unit of XFS daddrs (BBSHIFT 9).</summary>
    public const int BasicBlockSize = 512;

    // struct xfs_health_monitor (32 bytes): flags u64@0, format u8@8, pad1[7]@9, pad2[2] (u64)@16, all pads zero.
    public const int HealthMonitorArgSize = 32;
    public const int HealthMonitorFormatOffset = 8;
    public const ulong XFS_HEALTH_MONITOR_VERBOSE = 1ul << 0; // every status event, not only changes
    public const byte XFS_HEALTH_MONITOR_FMT_V0 = 0;

    /// <summary>XFS_IOC_FSGEOMETRY on any fd of the filesystem; needs no privilege.</summary>
    public static int Geometry(int fd, out XfsGeometry g)
    {
        g = default;
        var buf = stackalloc byte[FsGeomSize];
        new Span<byte>(buf, FsGeomSize).Clear();
        var rc = Ioctl(fd, XFS_IOC_FSGEOMETRY, buf);
        if (rc != 0)
            return rc;
        var b = new ReadOnlySpan<byte>(buf, FsGeomSize);
        g = new XfsGeometry(
            U32(b, FsGeomBlockSizeOffset), U32(b, FsGeomAgBlocksOffset), U32(b, FsGeomAgCountOffset),
            (int)U32(b, FsGeomVersionOffset), U32(b, FsGeomFlagsOffset),
            U32(b, FsGeomSickOffset), U32(b, FsGeomCheckedOffset),
            new Guid(b.Slice(FsGeomUuidOffset, 16), bigEndian: true))
        {
            InodeSize = U32(b, FsGeomInodeSizeOffset),
        };
        return 0;
    }

    /// <summary>XFS_IOC_AG_GEOMETRY for one AG; EINVAL once <paramref name="agno"/> is past the last AG.</summary>
    public static int AgGeometry(int fd, uint agno, out XfsAgGeometry ag)
    {
        ag = default;
        var buf = stackalloc byte[AgGeomSize];
        var b = new Span<byte>(buf, AgGeomSize);
        b.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b.Slice(AgGeomNumberOffset), agno);
        var rc = Ioctl(fd, XFS_IOC_AG_GEOMETRY, buf);
        if (rc != 0)
            return rc;
        ag = new XfsAgGeometry(U32(b, AgGeomNumberOffset), U32(b, AgGeomLengthOffset), U32(b, AgGeomFreeBlocksOffset),
            U32(b, AgGeomInodeCountOffset), U32(b, AgGeomFreeInodesOffset), U32(b, AgGeomSickOffset), U32(b, AgGeomCheckedOffset));
        return 0;
    }

    /// <summary>
    /// BULKSTAT of one inode. The kernel returns the first allocated inode at or after the cursor,
    /// so a different bs_ino means <paramref name="ino"/> is not allocated: ENOENT.
    /// </summary>
    public static int BulkstatOne(int fd, ulong ino, out XfsInodeHealth inode)
    {
        inode = default;
        const int size = BulkIreqSize + BulkstatSize;
        var buf = stackalloc byte[size];
        var b = new Span<byte>(buf, size);
        b.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(b.Slice(BulkIreqInoOffset), ino);
        BinaryPrimitives.WriteUInt32LittleEndian(b.Slice(BulkIreqICountOffset), 1);
        var rc = Ioctl(fd, XFS_IOC_BULKSTAT, buf);
        if (rc != 0)
            return rc;
        if (U32(b, BulkIreqOCountOffset) == 0)
            return Libc.ENOENT;
        var found = ReadInode(b.Slice(BulkIreqSize, BulkstatSize));
        if (found.Inode != ino)
            return Libc.ENOENT;
        inode = found;
        return 0;
    }

    /// <summary>
    /// Walks the inodes of AG <paramref name="agno"/> (XFS_BULK_IREQ_AGNO) in batches of
    /// <see cref="BulkstatBatch"/>, stopping after <paramref name="maxInodes"/>, and adds those
    /// with a non-zero sick mask to <paramref name="sick"/>. Inodes reclaimed since they turned sick
    /// are not found here: their AG carries <see cref="XFS_AG_GEOM_SICK_INODES"/> instead.
    /// </summary>
    public static int BulkstatGroup(int fd, uint agno, int maxInodes, List<XfsInodeHealth> sick, out int scanned)
    {
        ArgumentNullException.ThrowIfNull(sick);
        scanned = 0;
        if (maxInodes < 0)
            return Libc.EINVAL;
        var buffer = new byte[BulkIreqSize + BulkstatBatch * BulkstatSize];
        fixed (byte* buf = buffer)
        {
            // The kernel advances hdr.ino to the next cursor itself; the header is reused as is.
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(BulkIreqFlagsOffset), XFS_BULK_IREQ_AGNO);
            BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(BulkIreqAgnoOffset), agno);
            while (scanned < maxInodes)
            {
                var want = Math.Min(BulkstatBatch, maxInodes - scanned);
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(BulkIreqICountOffset), (uint)want);
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(BulkIreqOCountOffset), 0);
                var rc = Ioctl(fd, XFS_IOC_BULKSTAT, buf);
                if (rc != 0)
                    return rc;
                var got = (int)Math.Min(U32(buffer, BulkIreqOCountOffset), (uint)want);
                if (got == 0)
                    break; // end of the AG
                for (var i = 0; i < got; i++)
                {
                    var inode = ReadInode(buffer.AsSpan(BulkIreqSize + i * BulkstatSize, BulkstatSize));
                    if (inode.Sick != 0)
                        sick.Add(inode);
                }
                scanned += got;
            }
        }
        return 0;
    }

    /// <summary>
    /// FS_IOC_GETFSMAP over data-device sectors [<paramref name="startDaddr"/>, +<paramref name="lengthSectors"/>)
    /// (512-byte units, as XFS logs daddrs), adding every mapping that overlaps it to <paramref name="owners"/>.
    /// Without rmapbt XFS knows no inode owners: in-use space then comes back as special owners only.
    /// </summary>
    public static int GetFsMap(int fd, ulong startDaddr, ulong lengthSectors, List<FsMapping> owners)
    {
        ArgumentNullException.ThrowIfNull(owners);
        const ulong maxSectors = ulong.MaxValue / BasicBlockSize;
        if (lengthSectors == 0 || startDaddr > maxSectors || lengthSectors > maxSectors - startDaddr)
            return Libc.EINVAL;
        var rc = DataDeviceKey(fd, out var device);
        if (rc != 0)
            return rc;
        var low = startDaddr * BasicBlockSize;
        var high = (startDaddr + lengthSectors) * BasicBlockSize - 1; // the high key is inclusive
        rc = GetFsMap(fd, device, low, high, owners);
        // A zoned filesystem with an internal RT section names its devices by cookie, not dev_t.
        if (rc == Libc.EINVAL && device != XFS_DEV_DATA)
            rc = GetFsMap(fd, XFS_DEV_DATA, low, high, owners);
        return rc;
    }

    private static int GetFsMap(int fd, uint device, ulong low, ulong high, List<FsMapping> owners)
    {
        const int batch = 64;
        var buffer = new byte[FsMapHeadSize + batch * FsMapSize];
        var lowKey = buffer.AsSpan(FsMapHeadKeysOffset, FsMapSize);
        var highKey = buffer.AsSpan(FsMapHeadKeysOffset + FsMapSize, FsMapSize);
        BinaryPrimitives.WriteUInt32LittleEndian(lowKey.Slice(FsMapDeviceOffset), device);
        BinaryPrimitives.WriteUInt64LittleEndian(lowKey.Slice(FsMapPhysicalOffset), low);
        // High key as xfs_io fsmap builds it: same device, the last byte, flags/owner/offset at their
        // maximum. Length and reserved stay zero: the kernel converts keys to 512-byte units, after
        // which an all-ones length is no longer "unset" and the keys are refused with EINVAL.
        BinaryPrimitives.WriteUInt32LittleEndian(highKey.Slice(FsMapDeviceOffset), device);
        BinaryPrimitives.WriteUInt32LittleEndian(highKey.Slice(FsMapFlagsOffset), uint.MaxValue);
        BinaryPrimitives.WriteUInt64LittleEndian(highKey.Slice(FsMapPhysicalOffset), high);
        BinaryPrimitives.WriteUInt64LittleEndian(highKey.Slice(FsMapOwnerOffset), ulong.MaxValue);
        BinaryPrimitives.WriteUInt64LittleEndian(highKey.Slice(FsMapOffsetOffset), ulong.MaxValue);
        BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(FsMapHeadCountOffset), batch);
        var added = 0;
        fixed (byte* buf = buffer)
        {
            // Bounded so that a kernel that stopped advancing cannot hold us here.
            for (var round = 0; round < 1 << 16; round++)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(FsMapHeadEntriesOffset), 0);
                var rc = Ioctl(fd, FS_IOC_GETFSMAP, buf);
                if (rc != 0)
                {
                    owners.RemoveRange(owners.Count - added, added);
                    return rc;
                }
                var entries = (int)Math.Min(U32(buffer, FsMapHeadEntriesOffset), (uint)batch);
                if (entries == 0)
                    return 0;
                uint lastFlags = 0;
                for (var i = 0; i < entries; i++)
                {
                    var r = buffer.AsSpan(FsMapHeadSize + i * FsMapSize, FsMapSize);
                    lastFlags = U32(r, FsMapFlagsOffset);
                    owners.Add(new FsMapping(U64(r, FsMapPhysicalOffset), U64(r, FsMapLengthOffset),
                        U64(r, FsMapOwnerOffset), U64(r, FsMapOffsetOffset), lastFlags));
                    added++;
                }
                if ((lastFlags & FMR_OF_LAST) != 0 || entries < batch)
                    return 0;
                // fsmap_advance(): the last record becomes the low key of the next call.
                buffer.AsSpan(FsMapHeadSize + (entries - 1) * FsMapSize, FsMapSize).CopyTo(lowKey);
            }
        }
        return 0;
    }

    /// <summary>
    /// XFS_IOC_HEALTH_MONITOR on the filesystem's root directory (CAP_SYS_ADMIN in the init user
    /// namespace). On success <paramref name="monitorFd"/> is a new O_RDONLY|O_CLOEXEC fd yielding
    /// 64-byte events; the caller closes it. ENOTTY before 7.0, EEXIST when a monitor is already open.
    /// </summary>
    public static int OpenHealthMonitor(int rootDirFd, bool verbose, out int monitorFd)
    {
        monitorFd = -1;
        var buf = stackalloc byte[HealthMonitorArgSize];
        var b = new Span<byte>(buf, HealthMonitorArgSize);
        b.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(b, verbose ? XFS_HEALTH_MONITOR_VERBOSE : 0);
        b[HealthMonitorFormatOffset] = XFS_HEALTH_MONITOR_FMT_V0;
        while (true)
        {
            var rc = Libc.Ioctl(rootDirFd, XFS_IOC_HEALTH_MONITOR, buf);
            if (rc >= 0)
            {
                monitorFd = rc;
                return 0;
            }
            var errno = Libc.LastErrno;
            if (errno != Libc.EINTR)
                return errno;
        }
    }

    /// <summary>
    /// The fmr_device value naming the data device: new_encode_dev(st_dev), which is what the kernel
    /// reports with FMH_OF_DEV_T. A low key on device 0 would cover the whole data device instead.
    /// </summary>
    private static int DataDeviceKey(int fd, out uint device)
    {
        device = 0;
        var stx = stackalloc byte[Libc.StatxSize];
        new Span<byte>(stx, Libc.StatxSize).Clear();
        if (Libc.Statx(fd, "", Libc.AT_EMPTY_PATH, Libc.STATX_TYPE, stx) != 0)
            return Libc.LastErrno;
        var s = new ReadOnlySpan<byte>(stx, Libc.StatxSize);
        var major = U32(s, Libc.StatxDevMajorOffset);
        var minor = U32(s, Libc.StatxDevMinorOffset);
        device = (minor & 0xff) | (major << 8) | ((minor & ~0xffu) << 12);
        return 0;
    }

    private static XfsInodeHealth ReadInode(ReadOnlySpan<byte> bs) => new(
        U64(bs, BulkstatInoOffset), U32(bs, BulkstatGenOffset), U16(bs, BulkstatModeOffset),
        U16(bs, BulkstatSickOffset), U16(bs, BulkstatCheckedOffset));

    private static int Ioctl(int fd, uint request, byte* arg)
    {
        while (true)
        {
            if (Libc.Ioctl(fd, request, arg) >= 0)
                return 0;
            var errno = Libc.LastErrno;
            if (errno != Libc.EINTR)
                return errno;
        }
    }

    private static ushort U16(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt16LittleEndian(b.Slice(offset));
    private static uint U32(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(offset));
    private static ulong U64(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(offset));
}

/// <summary>The parts of struct xfs_fsop_geom a health reader needs.</summary>
public readonly record struct XfsGeometry(uint BlockSize, uint AgBlocks, uint AgCount, int Version, uint Flags, uint Sick, uint Checked, Guid Uuid)
{
    /// <summary>Bytes per inode: with BlockSize and AgBlocks it gives the AG of an inode number.</summary>
    public uint InodeSize { get; init; }

    /// <summary>Sick/Checked are filled in (geometry v5, 5.2+); older structures leave them zero.</summary>
    public bool HasHealth => Version >= XfsIoctl.XFS_FSOP_GEOM_VERSION_V5;

    /// <summary>Reverse mapping btree: GETFSMAP can name the inode owning a disk block.</summary>
    public bool HasRmapBt => (Flags & XfsIoctl.XFS_FSOP_GEOM_FLAGS_RMAPBT) != 0;
}

/// <summary>struct xfs_ag_geometry: one allocation group's size, usage and health masks (XFS_AG_GEOM_SICK_*).</summary>
public readonly record struct XfsAgGeometry(uint AgNumber, uint Length, uint FreeBlocks, uint InodeCount, uint FreeInodes, uint Sick, uint Checked);

/// <summary>The health-related fields of one struct xfs_bulkstat; masks are XFS_BS_SICK_*.</summary>
public readonly record struct XfsInodeHealth(ulong Inode, uint Generation, ushort Mode, ushort Sick, ushort Checked);

/// <summary>One struct fsmap record, in bytes. Owner is an inode number unless FMR_OF_SPECIAL_OWNER is set.</summary>
public readonly record struct FsMapping(ulong PhysicalBytes, ulong LengthBytes, ulong Owner, ulong Offset, uint Flags)
{
    public bool IsInodeOwner => (Flags & XfsIoctl.FMR_OF_SPECIAL_OWNER) == 0;
    public bool IsAttributeFork => (Flags & XfsIoctl.FMR_OF_ATTR_FORK) != 0;
    public bool IsExtentMap => (Flags & XfsIoctl.FMR_OF_EXTENT_MAP) != 0;
}
