using System.Collections.Immutable;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Reports;
using static ErrorWatch.Tests.Journal.JournalTestReports;

namespace ErrorWatch.Tests.Journal;

/// <summary>A report as journal fields: every report field, details flattened, raw path bytes.</summary>
public class ReportJournalTests
{
    [Theory]
    [InlineData(Severity.Critical, 2)]
    [InlineData(Severity.Error, 3)]
    [InlineData(Severity.Warning, 4)]
    public void Priority_FollowsSeverity(Severity severity, int priority)
    {
        Assert.Equal(priority, ReportJournal.PriorityOf(severity));
        var entry = ReportJournal.ToEntry(Small("id", EIO, 1, severity: severity));
        Assert.Equal(priority.ToString(), Text(entry, "PRIORITY"));
    }

    [Fact]
    public void EveryReportField_HasItsField()
    {
        var report = Full("0196f0a2-0000-7000-8000-000000000001");
        var e = ReportJournal.ToEntry(report);

        Assert.Equal(report.Summary, Text(e, "MESSAGE"));
        Assert.DoesNotContain('\n', Text(e, "MESSAGE"));
        Assert.Equal("bd42365c534f459287726f415119295b", Text(e, "MESSAGE_ID"));
        Assert.Equal("2", Text(e, "PRIORITY"));
        Assert.Equal("errorwatch", Text(e, "SYSLOG_IDENTIFIER"));
        Assert.Equal("117", Text(e, "ERRNO"));
        Assert.Equal(ReportJournal.DefaultDocumentation, Text(e, "DOCUMENTATION"));

        var expected = new Dictionary<string, string>
        {
            ["ERRORWATCH_REPORT_ID"] = report.Id,
            ["ERRORWATCH_TIME"] = "2026-03-14T15:09:26.000000Z",
            ["ERRORWATCH_HOST"] = "testhost",
            ["ERRORWATCH_SOURCE"] = "fanotify",
            ["ERRORWATCH_EVENT"] = "corruption",
            ["ERRORWATCH_SEVERITY"] = "critical",
            ["ERRORWATCH_DEVICE"] = "/dev/sdb1",
            ["ERRORWATCH_MAJOR_MINOR"] = "8:17",
            ["ERRORWATCH_UUID"] = Uuid.ToString(),
            ["ERRORWATCH_LABEL"] = "data",
            ["ERRORWATCH_FSTYPE"] = "ext4",
            ["ERRORWATCH_MOUNTPOINT"] = "/srv",
            ["ERRORWATCH_MOUNTPOINTS"] = "/srv\n/mnt/bind\nsecond line",
            ["ERRORWATCH_FSID"] = "4a3b2c1d:5e6f7a8b",
            ["ERRORWATCH_ERRNO_NAME"] = "EUCLEAN",
            ["ERRORWATCH_ERRNO_ALIAS"] = "EFSCORRUPTED",
            ["ERRORWATCH_RAW_ERRNO"] = "-117",
            ["ERRORWATCH_ERROR_DESCRIPTION"] = "Structure needs cleaning",
            ["ERRORWATCH_ERROR_MEANING"] = "metadata corruption",
            ["ERRORWATCH_ERROR_COUNT"] = "3",
            ["ERRORWATCH_SCOPE"] = "inode",
            ["ERRORWATCH_INODE"] = "12",
            ["ERRORWATCH_GENERATION"] = "4660",
            ["ERRORWATCH_PARENT_INODE"] = "2",
            ["ERRORWATCH_HANDLE_TYPE"] = "0x81",
            ["ERRORWATCH_HANDLE"] = "0c00000034120000",
            ["ERRORWATCH_PATH_ERROR"] = "may be stale: resolved after the error",
            ["ERRORWATCH_DECODER"] = "ext4",
            ["ERRORWATCH_PID"] = "4242",
            ["ERRORWATCH_RAISED_BY_ERRORWATCH"] = "false",
            ["ERRORWATCH_KERNEL_EVENTS"] = "2",
        };
        foreach (var (name, value) in expected)
            Assert.True(value == Text(e, name), $"{name}: expected '{value}', got '{Text(e, name)}'");
        Assert.Equal(HostilePath, e.Get("ERRORWATCH_PATH"));
        Assert.All(e.Fields, f => Assert.True(JournalEntry.IsValidName(f.Name), f.Name));
        Assert.Equal(e.Fields.Count, e.Fields.Select(f => f.Name).Distinct().Count());
    }

    [Fact]
    public void Details_AreFlattened_WithShortAliases()
    {
        var e = ReportJournal.ToEntry(Full("id"));

        Assert.Equal("continue", Text(e, "ERRORWATCH_EXT4_ERRORS_BEHAVIOR"));
        Assert.Equal("7", Text(e, "ERRORWATCH_EXT4_ERRORS_COUNT"));
        Assert.Equal("ext4_lookup", Text(e, "ERRORWATCH_EXT4_LAST_ERROR_FUNCTION"));
        Assert.Equal("1812", Text(e, "ERRORWATCH_EXT4_LAST_ERROR_LINE"));
        Assert.Equal("12", Text(e, "ERRORWATCH_EXT4_LAST_ERROR_INODE"));
        Assert.Equal("EXT4_ERR_EFSCORRUPTED", Text(e, "ERRORWATCH_EXT4_LAST_ERROR_CODE"));
        Assert.Equal("bnobt,cntbt", Text(e, "ERRORWATCH_XFS_HEALTH_SICK"));
        Assert.Equal("3", Text(e, "ERRORWATCH_XFS_HEALTH_SICK_MASK"));

        Assert.Equal("ext4_lookup", Text(e, "ERRORWATCH_EXT4_FUNCTION"));
        Assert.Equal("1812", Text(e, "ERRORWATCH_EXT4_LINE"));
        Assert.Equal("0", Text(e, "ERRORWATCH_EXT4_BLOCK"));
        Assert.Equal("bnobt,cntbt", Text(e, "ERRORWATCH_XFS_SICK"));
    }

    [Fact]
    public void Ext4Aliases_ComeFromTheSysfsFinding_AndXfsSickFromTheDecodersHealth()
    {
        var details = new ReportDetails();
        details.Section("ext4-sysfs").Set("errors_count", 9L).Set("last_error", new ReportDetails()
            .Set("function", "ext4_mb_generate_buddy").Set("line", 1217L).Set("block", 8193UL));
        var health = details.Section("xfs").Section("health");
        health.Set("filesystem", new ReportDetails().Set("sick", new[] { "counters" }).Set("checked", new[] { "counters" }));
        health.Set("ag_0", new ReportDetails().Set("sick", new[] { "bnobt", "inobt" }));
        health.Set("inode_131", new ReportDetails().Set("sick", Array.Empty<string>()).Set("generation", 5U));
        var e = ReportJournal.ToEntry(Small("id", EUCLEAN, 1) with { Details = details });

        Assert.Equal("ext4_mb_generate_buddy", Text(e, "ERRORWATCH_EXT4_FUNCTION"));
        Assert.Equal("1217", Text(e, "ERRORWATCH_EXT4_LINE"));
        Assert.Equal("8193", Text(e, "ERRORWATCH_EXT4_BLOCK"));
        Assert.Equal("ext4_mb_generate_buddy", Text(e, "ERRORWATCH_EXT4_SYSFS_LAST_ERROR_FUNCTION"));
        Assert.Equal("counters,bnobt,inobt", Text(e, "ERRORWATCH_XFS_SICK"));
        Assert.Equal("bnobt,inobt", Text(e, "ERRORWATCH_XFS_HEALTH_AG_0_SICK"));
        Assert.Equal("", Text(e, "ERRORWATCH_XFS_HEALTH_INODE_131_SICK"));
        Assert.Equal("5", Text(e, "ERRORWATCH_XFS_HEALTH_INODE_131_GENERATION"));
    }

    [Fact]
    public void UnknownValues_AreAbsent_NotEmpty()
    {
        var report = Small("id", EIO, 1) with
        {
            Filesystem = Filesystem() with { Uuid = null, Label = null, Mountpoints = [] },
            Error = Error(EIO, 1) with { Alias = null },
        };
        var e = ReportJournal.ToEntry(report);

        foreach (var name in new[] { "ERRORWATCH_UUID", "ERRORWATCH_LABEL", "ERRORWATCH_MOUNTPOINT", "ERRORWATCH_ERRNO_ALIAS",
                     "ERRORWATCH_INODE", "ERRORWATCH_GENERATION", "ERRORWATCH_PARENT_INODE", "ERRORWATCH_PATH",
                     "ERRORWATCH_PATH_ERROR", "ERRORWATCH_FINDING", "ERRORWATCH_EXT4_FUNCTION", "ERRORWATCH_XFS_SICK" })
            Assert.False(e.Contains(name), name);
        Assert.Equal("", Text(e, "ERRORWATCH_MOUNTPOINTS"));
        Assert.Equal("filesystem", Text(e, "ERRORWATCH_SCOPE"));
    }

    [Fact]
    public void LostEvents_HaveNoErrno()
    {
        var report = Small("id", 0, 0, severity: Severity.Warning) with { Category = ErrorCategory.EventsLost };
        var e = ReportJournal.ToEntry(report);
        Assert.False(e.Contains("ERRNO"));
        Assert.Equal("events-lost", Text(e, "ERRORWATCH_EVENT"));
    }

    [Fact]
    public void FoldedErrnos_HaveOneFieldEach()
    {
        var folded = new Dictionary<string, ulong> { ["EUCLEAN"] = 4, ["EIO"] = 2 }.ToImmutableDictionary();
        var e = ReportJournal.ToEntry(Small("id", EUCLEAN, 6, folded: folded));
        Assert.Equal("4", Text(e, "ERRORWATCH_FOLDED_EUCLEAN"));
        Assert.Equal("2", Text(e, "ERRORWATCH_FOLDED_EIO"));
    }

    [Fact]
    public void FieldPart_UppercasesAndReplaces()
    {
        Assert.Equal("EXT4_SYSFS", ReportJournal.FieldPart("ext4-sysfs"));
        Assert.Equal("INODE_131", ReportJournal.FieldPart("inode_131"));
        Assert.Equal("A_B_C_", ReportJournal.FieldPart("a.b c\u00e9"));
    }
}
