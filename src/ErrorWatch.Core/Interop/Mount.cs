namespace ErrorWatch.Interop;

/// <summary>
/// Mirrors include/uapi/linux/mount.h for statmount(2)/listmount(2) (6.8+).
/// Offsets are those of struct statmount / struct mnt_id_req in shared/docs/kernel-abi.md §1.5.
/// </summary>
internal static class Mount
{
    public const int SYS_statmount = 457; // x86_64 and arm64 (generic table)
    public const int SYS_listmount = 458;

    public const ulong LSMT_ROOT = ulong.MaxValue;
    public const int MntIdReqSizeVer0 = 24;

    public const ulong STATMOUNT_SB_BASIC = 0x1;
    public const ulong STATMOUNT_MNT_BASIC = 0x2;
    public const ulong STATMOUNT_MNT_ROOT = 0x8;
    public const ulong STATMOUNT_MNT_POINT = 0x10;
    public const ulong STATMOUNT_FS_TYPE = 0x20;
    public const ulong STATMOUNT_MNT_OPTS = 0x80;
    public const ulong STATMOUNT_SB_SOURCE = 0x200; // 6.13

    // struct statmount field offsets
    public const int SmSize = 0;           // u32
    public const int SmMntOpts = 4;        // u32 str offset
    public const int SmMask = 8;           // u64
    public const int SmSbDevMajor = 16;    // u32
    public const int SmSbDevMinor = 20;    // u32
    public const int SmSbMagic = 24;       // u64
    public const int SmSbFlags = 32;       // u32 (SB_RDONLY = 1)
    public const int SmFsType = 36;        // u32 str offset
    public const int SmMntId = 40;         // u64 unique id
    public const int SmMntParentId = 48;   // u64
    public const int SmMntIdOld = 56;      // u32
    public const int SmMntAttr = 64;       // u64 MOUNT_ATTR_*
    public const int SmMntRoot = 104;      // u32 str offset
    public const int SmMntPoint = 108;     // u32 str offset
    public const int SmSbSource = 124;     // u32 str offset
    public const int SmFixedSize = 512;    // str[] follows

    public const uint SB_RDONLY = 0x1;
    public const ulong MOUNT_ATTR_RDONLY = 0x1;
}
