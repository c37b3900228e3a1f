namespace ErrorWatch.Modules.Ext4;

/// <summary>
/// EXT4_ERR_* codes stored in s_first/last_error_errcode (fs/ext4/ext4.h, kernel-abi.md §6.3) and the
/// errno each stands for, with x86_64/arm64 numbering.
/// </summary>
public static class Ext4ErrorCodes
{
    public const byte None = 0;
    public const byte Unknown = 1;
    public const byte EIO = 2;
    public const byte ENOMEM = 3;
    public const byte EFSBADCRC = 4;
    public const byte EFSCORRUPTED = 5;
    public const byte ENOSPC = 6;
    public const byte ENOKEY = 7;
    public const byte EROFS = 8;
    public const byte EFBIG = 9;
    public const byte EEXIST = 10;
    public const byte ERANGE = 11;
    public const byte EOVERFLOW = 12;
    public const byte EBUSY = 13;
    public const byte ENOTDIR = 14;
    public const byte ENOTEMPTY = 15;
    public const byte ESHUTDOWN = 16;
    public const byte EFAULT = 17;

    // Indexed by code. EFSBADCRC is EBADMSG (74), EFSCORRUPTED is EUCLEAN (117); 0 for "none" and "unknown".
    private static readonly int[] Errnos = [0, 0, 5, 12, 74, 117, 28, 126, 30, 27, 17, 34, 75, 16, 20, 39, 108, 14];

    /// <summary>
    /// The code the kernel would store for an error site's errno: ext4_errno_to_code() after
    /// save_error_info() turned 0 into EFSCORRUPTED. Negative errnos (some fanotify ERROR records
    /// before 7.0) count as their absolute value; errnos outside the table are <see cref="Unknown"/>.
    /// </summary>
    public static byte ToExt4ErrCode(int errno)
    {
        if (errno == 0)
            return EFSCORRUPTED;
        var positive = errno == int.MinValue ? int.MaxValue : Math.Abs(errno);
        var code = Array.IndexOf(Errnos, positive, 2);
        return code < 0 ? Unknown : (byte)code;
    }

    /// <summary>The errno a stored code stands for; 0 for <see cref="None"/>, <see cref="Unknown"/> and codes newer than this table.</summary>
    public static int ErrnoOf(byte ext4ErrCode) => ext4ErrCode < Errnos.Length ? Errnos[ext4ErrCode] : 0;
}
