using System.Runtime.InteropServices;
using ErrorWatch.Kernel;
using static ErrorWatch.Tests.Kernel.EventBuilder;

namespace ErrorWatch.Tests.Kernel;

/// <summary>Well-formed buffers the fixtures do not cover (README "Not covered by a capture").</summary>
public class SyntheticBufferTests
{
    private static readonly FilesystemId Fsid = new(0x12345678, unchecked((int)0x9abcdef0));

    [Fact]
    public void QueueOverflow_Is24BytesWithoutRecords()
    {
        var buffer = new EventBuilder().Event(FanQOverflow, pid: 0).Build();
        Assert.Equal(24, buffer.Length);

        var parsed = ParsedBuffer.Parse(buffer);
        var ev = parsed.Single();

        Assert.True(parsed.AtEnd);
        Assert.False(parsed.Error.IsError);
        Assert.Equal(24u, ev.Length);
        Assert.Equal(FanQOverflow, ev.Mask);
        Assert.True(ev.IsOverflow);
        Assert.False(ev.IsFsError);
        Assert.False(ev.IsMountEvent);
        Assert.Equal(0, ev.Pid);
        Assert.Equal(-1, ev.Fd);
        Assert.Empty(ev.RawRecords);
        Assert.Equal(0, ev.RecordBytesLength);
        Assert.False(ev.HasFid || ev.HasError || ev.HasPidfd || ev.HasMountId);
        Assert.False(ev.Problem.IsError); // not an FS_ERROR event: no record is required
    }

    [Fact]
    public void XfsIno64GenHandle_Record32Bytes_Event68Bytes()
    {
        const ulong ino = 0x0000_0001_2345_6789;
        const uint gen = 0xdeadbeef;
        var buffer = new EventBuilder().Event().Fid(Fsid, FileIdIno64Gen, Ino64Gen(ino, gen)).Error(117).Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        // kernel-abi.md §2.6: XFS 64-bit handle → FID record 32, event_len 68.
        Assert.Equal(68u, ev.Length);
        Assert.Equal(new[] { new RecordInfo(1, 32, 24), new RecordInfo(5, 12, 56) }, ev.RawRecords);
        Assert.Equal(0x81, ev.HandleType);
        Assert.Equal(12, ev.Handle.Length);
        Assert.Equal(ino, MemoryMarshal.Read<ulong>(ev.Handle));
        Assert.Equal(gen, MemoryMarshal.Read<uint>(ev.Handle.AsSpan(8)));
        Assert.Equal(Fsid, ev.Fsid);
        Assert.False(ev.IsWholeFilesystem);
        Assert.False(ev.Problem.IsError);
    }

    [Fact]
    public void OddHandleLength_IsPaddedToFourAndHandleKeepsItsOwnLength()
    {
        byte[] handle = [1, 2, 3, 4, 5, 6];
        var buffer = new EventBuilder().Event().Fid(Fsid, 0x4d, handle).Error(117).Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.Equal(28, ev.RawRecords[0].Length); // roundup(20 + 6, 4)
        Assert.Equal(handle, ev.Handle);
        Assert.Equal(0x4d, ev.HandleType);
    }

    [Fact]
    public void NegativeErrnoFromExt4StdError_IsReportedAsAbsoluteValue()
    {
        var buffer = new EventBuilder().Event().Fid(Fsid, FileIdInvalid, []).Error(-5).Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.Equal(-5, ev.Error.RawError);
        Assert.Equal(5, ev.Error.Errno);
    }

    [Fact]
    public void IntMinValueErrno_SaturatesInsteadOfOverflowing()
    {
        var buffer = new EventBuilder().Event().Fid(Fsid, FileIdInvalid, []).Error(int.MinValue).Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.Equal(int.MinValue, ev.Error.RawError);
        Assert.Equal(int.MaxValue, ev.Error.Errno);
    }

    [Fact]
    public void RecordsAreFoundByTypeWhateverTheirOrder()
    {
        var handle = Ino32Gen(4711, 99);
        var kernelOrder = new EventBuilder().Event().Fid(Fsid, FileIdIno32Gen, handle).Pidfd(17).Error(74, 2).Build();
        var pidfdFirst = new EventBuilder().Event().Pidfd(17).Error(74, 2).Fid(Fsid, FileIdIno32Gen, handle).Build();
        var errorFirst = new EventBuilder().Event().Error(74, 2).Fid(Fsid, FileIdIno32Gen, handle).Pidfd(17).Build();

        foreach (var buffer in new[] { kernelOrder, pidfdFirst, errorFirst })
        {
            var ev = ParsedBuffer.Parse(buffer).Single();
            Assert.Equal(72u, ev.Length); // 24 + 28 + 8 + 12: "add 8 for a PIDFD record"
            Assert.True(ev.HasFid);
            Assert.Equal(Fsid, ev.Fsid);
            Assert.Equal(handle, ev.Handle);
            Assert.True(ev.HasPidfd);
            Assert.Equal(17, ev.Pidfd);
            Assert.True(ev.HasError);
            Assert.Equal(new ErrorRecord(74, 2), ev.Error);
            Assert.Equal(2u, ev.ErrorCount);
            Assert.False(ev.Problem.IsError, ev.Problem.ToString());
        }
        Assert.Equal(new byte[] { 4, 5, 1 }, ParsedBuffer.Parse(pidfdFirst).Single().RawRecords.Select(r => r.Type));
        Assert.Equal(new byte[] { 5, 1, 4 }, ParsedBuffer.Parse(errorFirst).Single().RawRecords.Select(r => r.Type));
    }

    [Fact]
    public void NoPidfdValues_AreReportedAsGiven()
    {
        // FAN_NOPIDFD (-1) and FAN_EPIDFD (-2) are values of the record, not parse problems.
        var buffer = new EventBuilder()
            .Event().Fid(Fsid, FileIdInvalid, []).Pidfd(-1).Error(117)
            .Event().Fid(Fsid, FileIdInvalid, []).Pidfd(-2).Error(117)
            .Build();

        var events = ParsedBuffer.Parse(buffer).Events;

        Assert.Equal(new[] { -1, -2 }, events.Select(e => e.Pidfd));
        Assert.All(events, ev => Assert.True(ev.HasPidfd && !ev.Problem.IsError));
    }

    [Fact]
    public void UnknownRecordType_IsCountedSkippedAndStillWalkable()
    {
        byte[] body = [0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x11, 0x22];
        var buffer = new EventBuilder()
            .Event().Fid(Fsid, FileIdInvalid, []).Record(99, body).Error(117, 4)
            .Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.Equal(1, ev.UnknownCount);
        Assert.Equal(new[] { new RecordInfo(1, 20, 24), new RecordInfo(99, 12, 44), new RecordInfo(5, 12, 56) }, ev.RawRecords);
        Assert.True(ev.HasFid);
        Assert.Equal(4u, ev.ErrorCount); // the record after the unknown one was still read
        Assert.False(ev.Problem.IsError);

        // The unknown record's body is reachable through Records.
        var reader = new FanotifyEventReader(buffer);
        Assert.True(reader.TryRead(out var raw));
        var found = false;
        foreach (var rec in raw.Records)
        {
            if (rec.Type != 99)
                continue;
            found = true;
            Assert.Equal(body, rec.Bytes[4..].ToArray());
        }
        Assert.True(found);
    }

    [Fact]
    public void ZeroErrorCount_CountsAsOneError()
    {
        var buffer = new EventBuilder().Event().Fid(Fsid, FileIdInvalid, []).Error(117, 0).Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.Equal(0u, ev.Error.Count);
        Assert.Equal(1u, ev.ErrorCount);
    }

    [Fact]
    public void FsErrorWithoutErrorRecord_ReportsMissingErrorRecordAndCountsOne()
    {
        var buffer = new EventBuilder()
            .Event().Fid(Fsid, FileIdInvalid, []).Error(117) // a good event first, so the offset is not 0
            .Event().Fid(Fsid, FileIdIno32Gen, Ino32Gen(12, 1))
            .Build();

        var parsed = ParsedBuffer.Parse(buffer);
        var ev = parsed.Events[1];

        Assert.True(parsed.AtEnd); // a record problem does not stop the walk
        Assert.False(ev.HasError);
        Assert.True(ev.HasFid);
        Assert.Equal(1u, ev.ErrorCount);
        Assert.Equal(FanotifyProblem.MissingErrorRecord, ev.Problem.Problem);
        Assert.Equal(56, ev.Problem.Offset);
        Assert.Contains("offset 56", ev.Problem.ToString());
    }

    [Fact]
    public void FsErrorWithoutFidRecord_ReportsMissingFidRecordAndTreatsItAsWholeFilesystem()
    {
        var buffer = new EventBuilder().Event().Error(5, 2).Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.Equal(FanotifyProblem.MissingFidRecord, ev.Problem.Problem);
        Assert.Equal(0, ev.Problem.Offset);
        Assert.False(ev.HasFid);
        Assert.True(ev.IsWholeFilesystem);
        Assert.Equal(2u, ev.ErrorCount);
    }

    [Fact]
    public void LargerMetadataLength_RecordsStartAtMetadataLength()
    {
        // kernel-abi.md §2.1: records start at (char*)ev + metadata_len, which a future kernel may grow.
        var buffer = new EventBuilder()
            .Event(metadataLength: 32).Raw(new byte[8]).Fid(Fsid, FileIdInvalid, []).Error(30)
            .Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.Equal(new[] { new RecordInfo(1, 20, 32), new RecordInfo(5, 12, 52) }, ev.RawRecords);
        Assert.Equal(30, ev.Error.Errno);
        Assert.Equal(32, ev.RecordOffset);
        Assert.False(ev.Problem.IsError);
    }

    [Fact]
    public void SeveralEvents_AreReturnedInOrderWithTheirOffsets()
    {
        var buffer = new EventBuilder()
            .Event(pid: 1).Fid(Fsid, FileIdInvalid, []).Error(117)
            .Event(FanQOverflow, pid: 0)
            .Event(pid: 2).Fid(Fsid, FileIdIno64Gen, Ino64Gen(1, 2)).Error(5)
            .Event(FanMntAttach | FanMntDetach, pid: 3).Mount(0x8000_0000_0000_0042)
            .Build();

        var parsed = ParsedBuffer.Parse(buffer);

        Assert.True(parsed.AtEnd);
        Assert.Equal(new[] { 0, 56, 80, 148 }, parsed.Events.Select(e => e.Offset));
        Assert.Equal(new[] { 1, 0, 2, 3 }, parsed.Events.Select(e => e.Pid));
        var move = parsed.Events[3];
        Assert.True(move.IsMountEvent); // a move carries both bits (kernel-abi.md §1.5)
        Assert.Equal(0x8000_0000_0000_0042ul, move.MountId);
    }
}
