using ErrorWatch.Decoding;
using ErrorWatch.Modules.Ext4;

namespace ErrorWatch.Tests.Modules.Ext4;

/// <summary>EXT4_ERR_* ↔ errno (kernel-abi.md §6.3, fs/ext4/super.c ext4_errno_to_code / save_error_info).</summary>
public class Ext4ErrorCodesTests
{
    [Theory]
    [InlineData(2, 5)]     // EIO
    [InlineData(3, 12)]    // ENOMEM
    [InlineData(4, 74)]    // EFSBADCRC = EBADMSG
    [InlineData(5, 117)]   // EFSCORRUPTED = EUCLEAN
    [InlineData(6, 28)]    // ENOSPC
    [InlineData(7, 126)]   // ENOKEY
    [InlineData(8, 30)]    // EROFS
    [InlineData(9, 27)]    // EFBIG
    [InlineData(10, 17)]   // EEXIST
    [InlineData(11, 34)]   // ERANGE
    [InlineData(12, 75)]   // EOVERFLOW
    [InlineData(13, 16)]   // EBUSY
    [InlineData(14, 20)]   // ENOTDIR
    [InlineData(15, 39)]   // ENOTEMPTY
    [InlineData(16, 108)]  // ESHUTDOWN
    [InlineData(17, 14)]   // EFAULT
    public void Code_AndErrno_MapBothWays(int code, int errno)
    {
        Assert.Equal(errno, Ext4ErrorCodes.ErrnoOf((byte)code));
        Assert.Equal((byte)code, Ext4ErrorCodes.ToExt4ErrCode(errno));
        Assert.Equal((byte)code, Ext4ErrorCodes.ToExt4ErrCode(-errno)); // fanotify before 7.0 negates some
        Assert.NotEqual("UNKNOWN", Ext4ErrorSite.CodeName((byte)code));
    }

    [Fact]
    public void Zero_IsRecordedAsEfscorrupted_LikeSaveErrorInfo()
    {
        Assert.Equal(Ext4ErrorCodes.EFSCORRUPTED, Ext4ErrorCodes.ToExt4ErrCode(0));
    }

    [Theory]
    [InlineData(1)]    // EPERM
    [InlineData(22)]   // EINVAL
    [InlineData(9999)]
    [InlineData(int.MaxValue)]
    [InlineData(int.MinValue)]
    public void ErrnosOutsideTheTable_AreUnknown(int errno)
    {
        Assert.Equal(Ext4ErrorCodes.Unknown, Ext4ErrorCodes.ToExt4ErrCode(errno));
    }

    [Theory]
    [InlineData(0)]    // none recorded
    [InlineData(1)]    // UNKNOWN
    [InlineData(18)]   // newer than this table
    [InlineData(255)]
    public void CodesWithoutAnErrno_AreZero(int code)
    {
        Assert.Equal(0, Ext4ErrorCodes.ErrnoOf((byte)code));
    }
}
