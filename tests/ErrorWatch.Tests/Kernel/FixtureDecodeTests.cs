using System.Buffers.Binary;
using ErrorWatch.Kernel;

namespace ErrorWatch.Tests.Kernel;

/// <summary>
/// Golden vectors: the captured buffers in shared/fixtures/fanotify must decode to the values the
/// fixture README states. Expectations come from that README and kernel-abi.md §2, not from the parser.
/// </summary>
public class FixtureDecodeTests
{
    private const int EUCLEAN = 117, EBADMSG = 74, ESHUTDOWN = 108;
    private const string Uuid1 = "11111111-2222-3333-4444-555555555555";
    private const string Uuid2 = "22222222-3333-4444-5555-666666666666";
    private const string Uuid3 = "33333333-4444-5555-6666-777777777777";

    /// <summary>The README table: file, bytes, events, sum of error_count.</summary>
    public static TheoryData<string, int, int, long> ReadmeTable => new()
    {
        { "ext4-fswide-x3.bin", 56, 1, 3 },
        { "ext4-inode-dir-extent.bin", 64, 1, 1 },
        { "ext4-three-events-two-objects.bin", 184, 3, 3 },
        { "ext4-inode-badcrc.bin", 64, 1, 1 },
        { "ext4-abort-eshutdown.bin", 56, 1, 1 },
        { "ext4-storm-buffer.bin", 38456, 601, 1200 },
        { "mntns-attach-detach.bin", 80, 2, 0 },
    };

    [Fact]
    public void EveryFixtureOnDiskIsCoveredByTheReadmeTable()
    {
        var onDisk = Directory.GetFiles(TestPaths.FixturesDir, "*.bin").Select(Path.GetFileName).Order().ToArray();
        var inTable = ReadmeTable.Select(row => (string)row[0]).Order().ToArray();
        Assert.Equal(inTable, onDisk);
    }

    [Theory]
    [MemberData(nameof(ReadmeTable))]
    public void FixtureFramesIntoTheReadmeEventCountAndErrorSum(string file, int bytes, int events, long errorSum)
    {
        var buffer = TestPaths.ReadFixture(file);
        Assert.Equal(bytes, buffer.Length);

        var parsed = ParsedBuffer.Parse(buffer);

        Assert.False(parsed.Error.IsError, parsed.Error.ToString());
        Assert.True(parsed.AtEnd);
        Assert.Equal(buffer.Length, parsed.Offset);
        Assert.Equal(events, parsed.Events.Count);
        Assert.Equal(errorSum, parsed.Events.Where(e => e.HasError).Sum(e => (long)e.Error.Count));

        var expectedOffset = 0;
        foreach (var ev in parsed.Events)
        {
            // kernel-abi.md §2.1: version 3, metadata_len 24, fd FAN_NOFD in FID/MNT mode; events are contiguous.
            Assert.Equal(expectedOffset, ev.Offset);
            Assert.Equal(3, ev.Version);
            Assert.Equal(24, ev.MetadataLength);
            Assert.Equal(-1, ev.Fd);
            Assert.Equal(0u, ev.Length % 4);
            Assert.False(ev.Problem.IsError, ev.Problem.ToString());
            Assert.False(ev.RecordWalkError.IsError, ev.RecordWalkError.ToString());
            Assert.Equal(0, ev.UnknownCount);
            Assert.Equal((int)ev.Length - 24, ev.RecordBytesLength);
            Assert.Equal(ev.Offset + 24, ev.RecordOffset);
            expectedOffset += (int)ev.Length;
        }
    }

    [Fact]
    public void FsWideX3_IsOneWholeFilesystemEventWithCountThree()
    {
        var ev = ParsedBuffer.Parse(TestPaths.ReadFixture("ext4-fswide-x3.bin")).Single();

        AssertFsError(ev, Uuid1, EUCLEAN, count: 3);
        AssertWholeFilesystem(ev);
        Assert.Equal(56u, ev.Length); // kernel-abi.md §2.6: 24 + FID 20 + ERROR 12
    }

    [Fact]
    public void InodeDirExtent_CarriesInode12AndItsGeneration()
    {
        var ev = ParsedBuffer.Parse(TestPaths.ReadFixture("ext4-inode-dir-extent.bin")).Single();

        AssertFsError(ev, Uuid1, EUCLEAN, count: 1);
        AssertIno32Gen(ev, ino: 12, generation: 0xa2a0ce80);
        Assert.Equal(64u, ev.Length); // 24 + FID 28 + ERROR 12
    }

    [Fact]
    public void InodeBadCrc_HasGenerationZeroAndEbadmsg()
    {
        var ev = ParsedBuffer.Parse(TestPaths.ReadFixture("ext4-inode-badcrc.bin")).Single();

        AssertFsError(ev, Uuid2, EBADMSG, count: 1);
        AssertIno32Gen(ev, ino: 12, generation: 0);
    }

    [Fact]
    public void AbortEshutdown_IsWholeFilesystemEshutdown()
    {
        var ev = ParsedBuffer.Parse(TestPaths.ReadFixture("ext4-abort-eshutdown.bin")).Single();

        AssertFsError(ev, Uuid2, ESHUTDOWN, count: 1);
        AssertWholeFilesystem(ev);
    }

    [Fact]
    public void ThreeEvents_InodeFsWideInode_FromThreeProcessesAboutTwoObjects()
    {
        var events = ParsedBuffer.Parse(TestPaths.ReadFixture("ext4-three-events-two-objects.bin")).Events;

        Assert.Equal(3, events.Count);
        Assert.All(events, ev => Assert.Equal(ExpectedFsid(Uuid1), ev.Fsid));
        Assert.All(events, ev => Assert.Equal(1u, ev.Error.Count)); // not merged
        Assert.Equal(new[] { 1, 0xff, 1 }, events.Select(e => e.HandleType));
        Assert.Equal(new[] { false, true, false }, events.Select(e => e.IsWholeFilesystem));
        Assert.Equal(events[0].Handle, events[2].Handle); // the two inode errors concern the same object
        Assert.Equal(3, events.Select(e => e.Pid).Distinct().Count());
    }

    [Fact]
    public void StormBuffer_OneMergedFsWideEventAnd600InodeEventsFrom600Processes()
    {
        var events = ParsedBuffer.Parse(TestPaths.ReadFixture("ext4-storm-buffer.bin")).Events;
        var fsid = ExpectedFsid(Uuid3);

        Assert.All(events, ev => Assert.True(ev.IsFsError && ev.HasFid && ev.HasError));
        Assert.All(events, ev => Assert.Equal(fsid, ev.Fsid));

        var fsWide = Assert.Single(events, e => e.IsWholeFilesystem);
        Assert.Equal(600u, fsWide.Error.Count);
        Assert.Equal(0xff, fsWide.HandleType);

        var inodeEvents = events.Where(e => !e.IsWholeFilesystem).ToList();
        Assert.Equal(600, inodeEvents.Count);
        Assert.All(inodeEvents, ev => Assert.Equal(1u, ev.Error.Count));
        Assert.All(inodeEvents, ev => Assert.Equal(1, ev.HandleType));
        Assert.Equal(600, inodeEvents.Select(e => e.Pid).Distinct().Count());
    }

    [Fact]
    public void MntnsAttachDetach_YieldsAttachThenDetachWithTheUniqueMountId()
    {
        var events = ParsedBuffer.Parse(TestPaths.ReadFixture("mntns-attach-detach.bin")).Events;

        Assert.Equal(new ulong[] { 0x01000000, 0x02000000 }, events.Select(e => e.Mask));
        Assert.All(events, ev =>
        {
            Assert.True(ev.IsMountEvent);
            Assert.False(ev.IsFsError);
            Assert.Equal(40u, ev.Length); // kernel-abi.md §1.5: 24 + MNT record 16
            var record = Assert.Single(ev.RawRecords);
            Assert.Equal(new RecordInfo(7, 16, ev.Offset + 24), record);
            Assert.True(ev.HasMountId);
            Assert.Equal(0x800001d0ul, ev.MountId);
            Assert.False(ev.HasFid);
            Assert.False(ev.HasError);
        });
    }

    [Fact]
    public void FsidHelperMatchesTheBytesTheReadmeSpellsOut()
    {
        // README: uuid 11111111-2222-3333-4444-555555555555 gives fsid bytes 55 55 44 44 77 77 66 66.
        var fsid = ExpectedFsid(Uuid1);
        Assert.Equal(FilesystemId.FromBytes([0x55, 0x55, 0x44, 0x44, 0x77, 0x77, 0x66, 0x66]), fsid);
        // __kernel_fsid_t is int val[2] in host order; the captures (and this test host) are little-endian.
        Assert.True(BitConverter.IsLittleEndian);
        Assert.Equal(0x44445555, fsid.Val0);
        Assert.Equal(0x66667777, fsid.Val1);
        Assert.Equal("44445555:66667777", fsid.ToString());
    }

    /// <summary>ext4 fsid: byte i is uuid[i] ^ uuid[i + 8] (include/linux/statfs.h uuid_to_fsid).</summary>
    private static FilesystemId ExpectedFsid(string uuid)
    {
        var u = Convert.FromHexString(uuid.Replace("-", ""));
        var fsid = new byte[8];
        for (var i = 0; i < 8; i++)
            fsid[i] = (byte)(u[i] ^ u[i + 8]);
        return FilesystemId.FromBytes(fsid);
    }

    private static void AssertFsError(ParsedEvent ev, string uuid, int errno, uint count)
    {
        Assert.Equal(0x8000ul, ev.Mask);
        Assert.True(ev.IsFsError);
        Assert.False(ev.IsOverflow);
        Assert.True(ev.HasFid);
        Assert.True(ev.HasError);
        Assert.False(ev.HasPidfd);
        Assert.False(ev.HasMountId);
        Assert.Equal(ExpectedFsid(uuid), ev.Fsid);
        Assert.Equal(errno, ev.Error.RawError);
        Assert.Equal(errno, ev.Error.Errno);
        Assert.Equal(count, ev.Error.Count);
        Assert.Equal(count, ev.ErrorCount);
        // kernel-abi.md §2.5: [FID] then [ERROR] on every kernel so far.
        Assert.Equal(new byte[] { 1, 5 }, ev.RawRecords.Select(r => r.Type));
    }

    private static void AssertWholeFilesystem(ParsedEvent ev)
    {
        Assert.Equal(0xff, ev.HandleType);
        Assert.Empty(ev.Handle);
        Assert.True(ev.IsWholeFilesystem);
        Assert.Equal(20, ev.RawRecords[0].Length);
    }

    private static void AssertIno32Gen(ParsedEvent ev, uint ino, uint generation)
    {
        Assert.Equal(1, ev.HandleType);
        Assert.Equal(8, ev.Handle.Length);
        Assert.False(ev.IsWholeFilesystem);
        Assert.Equal(ino, BinaryPrimitives.ReadUInt32LittleEndian(ev.Handle)); // fixtures are x86_64 captures
        Assert.Equal(generation, BinaryPrimitives.ReadUInt32LittleEndian(ev.Handle.AsSpan(4)));
        Assert.Equal(28, ev.RawRecords[0].Length);
    }
}
