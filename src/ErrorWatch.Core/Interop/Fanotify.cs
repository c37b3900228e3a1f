using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// Mirrors include/uapi/linux/fanotify.h (Linux 6.18; values stable since their first release).
/// See shared/docs/kernel-abi.md §1–§2 for which kernel introduced which flag.
/// </summary>
internal static unsafe partial class Fanotify
{
    // fanotify_init() flags
    public const uint FAN_CLOEXEC = 0x1;
    public const uint FAN_NONBLOCK = 0x2;
    public const uint FAN_CLASS_NOTIF = 0x0;
    public const uint FAN_UNLIMITED_QUEUE = 0x10;
    public const uint FAN_REPORT_PIDFD = 0x80;    // 5.15
    public const uint FAN_REPORT_TID = 0x100;
    public const uint FAN_REPORT_FID = 0x200;     // 5.1
    public const uint FAN_REPORT_DIR_FID = 0x400;
    public const uint FAN_REPORT_NAME = 0x800;
    public const uint FAN_REPORT_FD_ERROR = 0x2000; // 6.13
    public const uint FAN_REPORT_MNT = 0x4000;    // 6.15; cannot be combined with FID flags

    // fanotify_mark() flags
    public const uint FAN_MARK_ADD = 0x1;
    public const uint FAN_MARK_REMOVE = 0x2;
    public const uint FAN_MARK_FLUSH = 0x80;
    public const uint FAN_MARK_INODE = 0x0;
    public const uint FAN_MARK_MOUNT = 0x10;
    public const uint FAN_MARK_FILESYSTEM = 0x100; // 4.20
    public const uint FAN_MARK_MNTNS = 0x110;      // 6.15

    // Event mask bits
    public const ulong FAN_Q_OVERFLOW = 0x4000;
    public const ulong FAN_FS_ERROR = 0x8000;         // 5.16
    public const ulong FAN_MNT_ATTACH = 0x01000000;   // 6.15
    public const ulong FAN_MNT_DETACH = 0x02000000;   // 6.15

    // struct fanotify_event_metadata
    public const byte FANOTIFY_METADATA_VERSION = 3;
    public const int FAN_EVENT_METADATA_LEN = 24;
    public const int FAN_NOFD = -1;
    public const int FAN_NOPIDFD = -1;
    public const int FAN_EPIDFD = -2;

    // struct fanotify_event_info_header.info_type
    public const byte FAN_EVENT_INFO_TYPE_FID = 1;
    public const byte FAN_EVENT_INFO_TYPE_DFID_NAME = 2;
    public const byte FAN_EVENT_INFO_TYPE_DFID = 3;
    public const byte FAN_EVENT_INFO_TYPE_PIDFD = 4;
    public const byte FAN_EVENT_INFO_TYPE_ERROR = 5;  // 5.16
    public const byte FAN_EVENT_INFO_TYPE_RANGE = 6;  // 6.14
    public const byte FAN_EVENT_INFO_TYPE_MNT = 7;    // 6.15
    public const byte FAN_EVENT_INFO_TYPE_OLD_DFID_NAME = 10;
    public const byte FAN_EVENT_INFO_TYPE_NEW_DFID_NAME = 12;

    // Record sizes (bytes, 64-bit): header 4, FID fixed part 20 (+ handle, padded to 4),
    // ERROR 12, PIDFD 8, MNT 16, RANGE 24.
    public const int InfoHeaderLength = 4;
    public const int FidRecordFixedLength = 20;
    public const int ErrorRecordLength = 12;
    public const int PidfdRecordLength = 8;
    public const int MntRecordLength = 16;

    // include/linux/exportfs.h: enum fid_type
    public const int FILEID_ROOT = 0;
    public const int FILEID_INO32_GEN = 1;
    public const int FILEID_INO32_GEN_PARENT = 2;
    public const int FILEID_INO64_GEN = 0x81;
    public const int FILEID_INO64_GEN_PARENT = 0x82;
    public const int FILEID_INVALID = 0xff;

    [LibraryImport("libc", EntryPoint = "fanotify_init", SetLastError = true)]
    public static partial int Init(uint flags, uint eventFFlags);

    [LibraryImport("libc", EntryPoint = "fanotify_mark", SetLastError = true)]
    public static partial int Mark(int fanotifyFd, uint flags, ulong mask, int dirfd, byte* path);
}
