using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Kernel;
using ErrorWatch.Modules;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Reports;
using ErrorWatch.Tests.Kernel;
using static ErrorWatch.Tests.Decoding.TestEvents;

namespace ErrorWatch.Tests.Decoding;

/// <summary>
/// From an <see cref="FsErrorEvent"/> to a <see cref="CorruptionReport"/>: errno sign (kernel-abi.md §3.1:
/// ext4 std_error sends -errno before 7.0), queue overflow (§2.8), whole-filesystem errors (§2.7),
/// offline path resolution, fsid cross-check (§1.4, §5) and the one-line summary.
/// </summary>
public class EventDecoderTests
{
    private static readonly FsPath Scratch = P("/mnt/scratch");

    private static FsErrorEvent InodeEvent(Superblock sb, int errno = EUCLEAN, uint count = 1) =>
        FsError(sb, errno, count, EventBuilder.FileIdIno32Gen, EventBuilder.Ino32Gen(12, 0x1234));

    [Fact]
    public void NegativeRawErrno_IsReportedAsItsAbsoluteValue()
    {
        var report = Decoder().Decode(FsError(Ext4(Scratch), -5));

        Assert.Equal(EIO, report.Error.Errno);
        Assert.Equal(-5, report.Error.RawErrno);
        Assert.Equal("EIO", report.Error.Name);
        Assert.Equal(ErrorCategory.Io, report.Category);
        Assert.Equal(Severity.Error, report.Severity);
    }

    [Fact]
    public void PositiveRawErrno_IsKeptAsIs()
    {
        var report = Decoder().Decode(FsError(Ext4(Scratch), EROFS));

        Assert.Equal(EROFS, report.Error.Errno);
        Assert.Equal(EROFS, report.Error.RawErrno);
    }

    [Fact]
    public void Overflow_IsAnEventsLostWarningWithCountZero()
    {
        var report = Decoder().Decode(Overflow(Ext4(Scratch)));

        Assert.Equal(ErrorCategory.EventsLost, report.Category);
        Assert.Equal(Severity.Warning, report.Severity);
        Assert.Equal("events-lost", report.EventName);
        Assert.Equal(0ul, report.Error.Count);
        Assert.Equal(0, report.Error.Errno);
        Assert.Equal("FAN_Q_OVERFLOW", report.Error.Name);
        Assert.Equal("filesystem", report.Object.Scope);
        Assert.Null(report.Object.Inode);
        Assert.Null(report.ParseProblem);
        Assert.Equal("ext4", report.Decoder);
        Assert.Contains("/dev/loop0", report.Summary);
        Assert.Contains("/mnt/scratch", report.Summary);
    }

    [Fact]
    public void LostAfterAMalformedBuffer_SaysSoAndKeepsTheProblem()
    {
        var problem = new FanotifyParseError(48, FanotifyProblem.EventLengthPastEnd, 4096);
        var ev = FsErrorEvent.Lost(Ext4(), Time, 0, 0, problem);

        var report = Decoder().Decode(ev);

        Assert.Equal(ErrorCategory.EventsLost, report.Category);
        Assert.Equal(Severity.Warning, report.Severity);
        Assert.Equal(0ul, report.Error.Count);
        Assert.NotEqual("FAN_Q_OVERFLOW", report.Error.Name);
        Assert.Equal(problem.ToString(), report.ParseProblem);
    }

    [Fact]
    public void WholeFilesystemEvent_HasFilesystemScopeAndNoPathOrPathError()
    {
        var report = Decoder().Decode(FsError(Ext4(Scratch), EUCLEAN, 3));

        Assert.Equal("filesystem", report.Object.Scope);
        Assert.Null(report.Object.Inode);
        Assert.Null(report.Object.Generation);
        Assert.Null(report.Object.Path);
        Assert.Null(report.Object.PathError); // nothing to resolve is not a resolution failure
        Assert.Null(report.Object.HandleProblem);
        Assert.Equal(0xff, report.Object.HandleType);
        Assert.Equal("", report.Object.Handle);
        Assert.Equal(3ul, report.Error.Count);
        Assert.Contains("whole filesystem", report.Summary);
    }

    [Fact]
    public void InodeEvent_WithResolverDisabled_ExplainsWhyThereIsNoPath()
    {
        var report = Decoder().Decode(InodeEvent(Ext4(Scratch)));

        Assert.Equal("inode", report.Object.Scope);
        Assert.Equal(12ul, report.Object.Inode);
        Assert.Equal(0x1234u, report.Object.Generation);
        Assert.Equal(1, report.Object.HandleType);
        Assert.Equal("0c00000034120000", report.Object.Handle);
        Assert.Null(report.Object.Path);
        Assert.Equal(DisabledReason, report.Object.PathError);
        Assert.False(report.Object.Deleted);
        Assert.Null(report.Object.HandleProblem);
    }

    [Fact]
    public void XfsInodeEvent_Decodes64BitInode()
    {
        var sb = Xfs(P("/srv/xfs"));
        var report = Decoder().Decode(FsError(sb, EUCLEAN, 1, EventBuilder.FileIdIno64Gen, EventBuilder.Ino64Gen(0x2_0000_0080, 17)));

        Assert.Equal("xfs", report.Decoder);
        Assert.Equal(0x2_0000_0080ul, report.Object.Inode);
        Assert.Equal(17u, report.Object.Generation);
        Assert.Equal("EFSCORRUPTED", report.Error.Alias);
        Assert.Equal(DisabledReason, report.Object.PathError);
    }

    [Fact]
    public void FsidMismatch_IsRecordedInDetails()
    {
        var sb = Ext4(Scratch);
        var other = new FilesystemId(0x01010101, 0x02020202);
        var ev = FsError(sb, EUCLEAN, 1, EventBuilder.FileIdInvalid, [], fsid: other);

        var report = Decoder().Decode(ev);

        var mismatch = Assert.IsType<string>(report.Details["fsid_mismatch"]);
        Assert.Contains(other.ToString(), mismatch);
        Assert.Contains(sb.Fsid.ToString(), mismatch);
    }

    [Fact]
    public void MatchingFsid_IsNotAMismatch()
    {
        var report = Decoder().Decode(FsError(Ext4(Scratch), EUCLEAN));

        Assert.Null(report.Details["fsid_mismatch"]);
    }

    [Fact]
    public void UnknownSuperblockFsid_IsNotAMismatch()
    {
        var sb = Ext4(Scratch, fsid: default(FilesystemId));
        var report = Decoder().Decode(FsError(sb, EUCLEAN, fsid: new FilesystemId(5, 6)));

        Assert.Null(report.Details["fsid_mismatch"]);
    }

    [Fact]
    public void Summary_NamesDeviceMountPointErrnoAndCount()
    {
        var report = Decoder().Decode(InodeEvent(Ext4(Scratch), EUCLEAN, 3));

        Assert.Contains("ext4", report.Summary);
        Assert.Contains("/dev/loop0", report.Summary);
        Assert.Contains("/mnt/scratch", report.Summary);
        Assert.Contains("EUCLEAN", report.Summary);
        Assert.Contains("EFSCORRUPTED", report.Summary);
        Assert.Contains("inode 12", report.Summary);
        Assert.Contains("3 errors", report.Summary);
    }

    [Fact]
    public void Summary_UsesTheSingularForOneError()
    {
        var report = Decoder().Decode(FsError(Ext4(Scratch), EBADMSG, 1));

        Assert.Contains("1 error", report.Summary);
        Assert.DoesNotContain("1 errors", report.Summary);
        Assert.Contains("EBADMSG", report.Summary);
    }

    [Fact]
    public void Report_CarriesIdentityTimeAndFilesystem()
    {
        var uuid = Guid.Parse("11111111-2222-3333-4444-555555555555");
        var sb = Ext4(Scratch, uuid: uuid, label: "scratch");

        var report = Decoder().Decode(FsError(sb, EUCLEAN, pid: 777));

        Assert.Equal(7, Guid.Parse(report.Id).Version); // UUIDv7, time-ordered
        Assert.Equal(Time, report.Time);
        Assert.Equal("fanotify", report.Source);
        Assert.Equal(Environment.MachineName, report.Host);
        Assert.Equal("/dev/loop0", report.Filesystem.Device);
        Assert.Equal(new DeviceNumber(7, 0), report.Filesystem.MajorMinor);
        Assert.Equal("ext4", report.Filesystem.Type);
        Assert.Equal(uuid, report.Filesystem.Uuid);
        Assert.Equal("scratch", report.Filesystem.Label);
        Assert.Equal(Scratch, Assert.Single(report.Filesystem.Mountpoints));
        Assert.Equal(Ext4Fsid.ToString(), report.Filesystem.Fsid);
        Assert.Equal(777, report.Pid);
        Assert.False(report.RaisedByErrorWatch);
        Assert.Equal(1, report.KernelEvents);
    }

    [Fact]
    public void TwoReportsOfOneInstant_GetDistinctIds()
    {
        var decoder = Decoder();
        var ev = FsError(Ext4(), EUCLEAN);

        Assert.NotEqual(decoder.Decode(ev).Id, decoder.Decode(ev).Id);
    }

    [Fact]
    public void ErrorRaisedByTheReadingProcess_IsFlagged()
    {
        var live = new EventDecoder(FilesystemModules.CreateDefault(), OfflinePaths(), readerPid: Environment.ProcessId);

        var report = live.Decode(FsError(Ext4(), EUCLEAN, pid: Environment.ProcessId));

        Assert.True(report.RaisedByErrorWatch);
        Assert.Equal(Environment.ProcessId, report.Pid);
        Assert.False(live.Decode(FsError(Ext4(), EUCLEAN, pid: Environment.ProcessId + 1)).RaisedByErrorWatch);
    }

    [Fact]
    public void OfflineDecoding_NeverFlagsRaisedByErrorWatch_EvenForItsOwnPid()
    {
        var report = Decoder().Decode(FsError(Ext4(), EUCLEAN, pid: Environment.ProcessId));

        Assert.False(report.RaisedByErrorWatch);
        Assert.Equal(Environment.ProcessId, report.Pid);
    }

    [Fact]
    public void FoldedEvent_ReportsPerErrnoTalliesByName()
    {
        var ev = Queued(Ext4(), EUCLEAN, 7);
        ev.KernelEvents = 4;
        ev.FoldedErrnos = new() { [EUCLEAN] = 5, [EIO] = 2 };

        var report = Decoder().Decode(ev);

        Assert.Equal(7ul, report.Error.Count);
        Assert.Equal(4, report.KernelEvents);
        Assert.Equal(2, report.Error.Folded.Count);
        Assert.Equal(5ul, report.Error.Folded["EUCLEAN"]);
        Assert.Equal(2ul, report.Error.Folded["EIO"]);
    }

    [Fact]
    public void EventWithoutErrorRecord_StillReportsOneErrorAndTheParseProblem()
    {
        var sb = Ext4();
        var ev = Parse(sb, new EventBuilder().Event().Fid(sb.Fsid, EventBuilder.FileIdInvalid, []).Build());

        var report = Decoder().Decode(ev);

        Assert.Equal(1ul, report.Error.Count);
        Assert.NotNull(report.ParseProblem);
    }

    [Fact]
    public void Ext4Details_ShowTheErrorsMountOptionAndWhySysfsWasNotRead()
    {
        var device = Ext4Device;
        var sb = new Superblock(device, "ext4", [Mount(device, "ext4", "/dev/loop0", Scratch, "rw,errors=remount-ro")])
        {
            Magic = Ext4Module.SuperMagic,
            DevicePath = "/dev/loop0",
            KernelName = "",
        };

        var report = Decoder().Decode(FsError(sb, EUCLEAN));

        var ext4 = Assert.IsType<ReportDetails>(report.Details["ext4"]);
        Assert.Equal("remount-ro", ext4["errors_behavior"]);
        Assert.NotNull(ext4["sysfs_error"]);
        Assert.Null(ext4["errors_count"]);
    }

    [Fact]
    public void UndecodableHandle_IsNotReportedAsAWholeFilesystemError()
    {
        var report = Decoder().Decode(FsError(Ext4(Scratch), EUCLEAN, 1, 0x4d, new byte[20]));

        Assert.NotNull(report.Object.HandleProblem);
        Assert.NotEqual("filesystem", report.Object.Scope);
        Assert.DoesNotContain("whole filesystem", report.Summary);
    }
}
