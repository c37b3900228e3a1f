using ErrorWatch.Decoding;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Modules.Xfs;
using ErrorWatch.Reports;
using static ErrorWatch.Tests.Decoding.TestEvents;

namespace ErrorWatch.Tests.Decoding;

/// <summary>
/// What each errno means per filesystem (kernel-abi.md §3.1, §3.2, §3.4): EUCLEAN 117 is ext4/XFS's
/// EFSCORRUPTED, EBADMSG 74 is EFSBADCRC, EIO 5, ESHUTDOWN 108 (abort / forced shutdown), EROFS 30
/// (journal aborted). Severity: corruption and shutdown are critical, lost events a warning, the rest errors.
/// </summary>
public class DecoderMeaningTests
{
    public static TheoryData<int, string, ErrorCategory, string?> Ext4Meanings => new()
    {
        { EUCLEAN, "EUCLEAN", ErrorCategory.Corruption, "EFSCORRUPTED" },
        { EBADMSG, "EBADMSG", ErrorCategory.Corruption, "EFSBADCRC" },
        { EIO, "EIO", ErrorCategory.Io, null },
        { ESHUTDOWN, "ESHUTDOWN", ErrorCategory.Shutdown, null },
        { EROFS, "EROFS", ErrorCategory.ReadOnly, null },
        { ENOMEM, "ENOMEM", ErrorCategory.Resource, null },
        { ENOSPC, "ENOSPC", ErrorCategory.Resource, null },
    };

    [Theory]
    [MemberData(nameof(Ext4Meanings))]
    public void Ext4_DescribesErrno(int errno, string name, ErrorCategory category, string? alias)
    {
        var meaning = new Ext4Decoder().DescribeError(errno);

        Assert.Equal(errno, meaning.Errno);
        Assert.Equal(name, meaning.Name);
        Assert.Equal(category, meaning.Category);
        Assert.Equal(alias, meaning.Alias);
        Assert.False(string.IsNullOrWhiteSpace(meaning.Description));
        Assert.False(string.IsNullOrWhiteSpace(meaning.Meaning));
    }

    public static TheoryData<int, string, ErrorCategory, string?> XfsMeanings => new()
    {
        { EUCLEAN, "EUCLEAN", ErrorCategory.Corruption, "EFSCORRUPTED" },
        { EBADMSG, "EBADMSG", ErrorCategory.Corruption, "EFSBADCRC" },
        { ESHUTDOWN, "ESHUTDOWN", ErrorCategory.Shutdown, null },
        { EIO, "EIO", ErrorCategory.Io, null },
    };

    [Theory]
    [MemberData(nameof(XfsMeanings))]
    public void Xfs_DescribesErrno(int errno, string name, ErrorCategory category, string? alias)
    {
        var meaning = new XfsDecoder().DescribeError(errno);

        Assert.Equal(errno, meaning.Errno);
        Assert.Equal(name, meaning.Name);
        Assert.Equal(category, meaning.Category);
        Assert.Equal(alias, meaning.Alias);
        Assert.False(string.IsNullOrWhiteSpace(meaning.Meaning));
    }

    [Fact]
    public void Ext4AndXfs_GiveTheirOwnMeaningText()
    {
        // Same errno, filesystem-specific wording: ext4 abort vs XFS forced shutdown.
        Assert.NotEqual(new Ext4Decoder().DescribeError(ESHUTDOWN).Meaning, new XfsDecoder().DescribeError(ESHUTDOWN).Meaning);
        Assert.NotEqual(new Ext4Decoder().DescribeError(EUCLEAN).Meaning, new GenericDecoder().DescribeError(EUCLEAN).Meaning);
    }

    [Theory]
    [InlineData("ext4")]
    [InlineData("xfs")]
    [InlineData("generic")]
    public void UnknownErrno_GetsTheGenericName(string fs)
    {
        IFilesystemDecoder decoder = fs switch { "ext4" => new Ext4Decoder(), "xfs" => new XfsDecoder(), _ => new GenericDecoder() };

        var meaning = decoder.DescribeError(200);

        Assert.Equal(200, meaning.Errno);
        Assert.Equal("E200", meaning.Name);
        Assert.Equal(ErrorCategory.Other, meaning.Category);
        Assert.Null(meaning.Alias);
        Assert.Contains("200", meaning.Description);
    }

    [Fact]
    public void Generic_KnowsTheKernelErrnoNamesWithoutFilesystemAliases()
    {
        var generic = new GenericDecoder();

        Assert.Equal("EUCLEAN", generic.DescribeError(EUCLEAN).Name);
        Assert.Equal(ErrorCategory.Corruption, generic.DescribeError(EUCLEAN).Category);
        Assert.Equal(ErrorCategory.Io, generic.DescribeError(EIO).Category);
        Assert.Equal(ErrorCategory.Shutdown, generic.DescribeError(ESHUTDOWN).Category);
        Assert.Equal("Input/output error", generic.DescribeError(EIO).Description);
    }

    [Theory]
    [InlineData(ErrorCategory.Corruption, Severity.Critical)]
    [InlineData(ErrorCategory.Shutdown, Severity.Critical)]
    [InlineData(ErrorCategory.Io, Severity.Error)]
    [InlineData(ErrorCategory.ReadOnly, Severity.Error)]
    [InlineData(ErrorCategory.Resource, Severity.Error)]
    [InlineData(ErrorCategory.Other, Severity.Error)]
    [InlineData(ErrorCategory.EventsLost, Severity.Warning)]
    public void SeverityOf_MapsEachCategory(ErrorCategory category, Severity severity)
    {
        Assert.Equal(severity, EventDecoder.SeverityOf(category));
    }

    [Theory]
    [InlineData(EUCLEAN, ErrorCategory.Corruption, Severity.Critical)]
    [InlineData(EBADMSG, ErrorCategory.Corruption, Severity.Critical)]
    [InlineData(ESHUTDOWN, ErrorCategory.Shutdown, Severity.Critical)]
    [InlineData(EIO, ErrorCategory.Io, Severity.Error)]
    [InlineData(EROFS, ErrorCategory.ReadOnly, Severity.Error)]
    [InlineData(200, ErrorCategory.Other, Severity.Error)]
    public void Ext4Report_CarriesCategoryAndSeverity(int errno, ErrorCategory category, Severity severity)
    {
        var report = Decoder().Decode(FsError(Ext4(), errno));

        Assert.Equal(category, report.Category);
        Assert.Equal(severity, report.Severity);
        Assert.Equal(errno, report.Error.Errno);
    }

    [Fact]
    public void XfsReport_UsesTheXfsMeaning()
    {
        var report = Decoder().Decode(FsError(Xfs(), ESHUTDOWN));

        Assert.Equal("xfs", report.Decoder);
        Assert.Equal(new XfsDecoder().DescribeError(ESHUTDOWN).Meaning, report.Error.Meaning);
        Assert.Equal(Severity.Critical, report.Severity);
        Assert.Equal("shutdown", report.EventName);
    }
}
