using ErrorWatch.Kernel;
using static ErrorWatch.Tests.Kernel.EventBuilder;

namespace ErrorWatch.Tests.Kernel;

/// <summary>
/// Framing errors (FAN_EVENT_OK, kernel-abi.md §2.1) stop the walk with an error at the bad event;
/// record errors (§2.2–2.4) are reported per event without stopping it. Nothing may throw or loop.
/// </summary>
public class MalformedBufferTests
{
    private static readonly FilesystemId Fsid = new(0x44445555, 0x66667777);

    /// <summary>One good 56-byte whole-filesystem event, to put in front of the bad part.</summary>
    private static EventBuilder GoodEvent() => new EventBuilder().Event().Fid(Fsid, FileIdInvalid, []).Error(117);

    // ---- framing ----------------------------------------------------------------------------

    [Theory]
    [InlineData(1)]
    [InlineData(10)]
    [InlineData(23)]
    public void TrailingBytesShorterThanMetadata_AreTruncatedMetadata(int trailing)
    {
        var buffer = GoodEvent().Tail(new byte[trailing]).Build();

        AssertFramingError(buffer, eventsBefore: 1, FanotifyProblem.TruncatedMetadata, offset: 56, value: trailing);
    }

    [Fact]
    public void BufferShorterThanMetadata_FailsAtOffsetZero()
    {
        var buffer = GoodEvent().Build()[..23];

        AssertFramingError(buffer, eventsBefore: 0, FanotifyProblem.TruncatedMetadata, offset: 0, value: 23);
    }

    [Theory]
    [InlineData(0u)] // would never advance if accepted
    [InlineData(20u)]
    [InlineData(23u)]
    public void EventLengthBelowMetadataLength_IsRejected(uint eventLength)
    {
        var buffer = GoodEvent().Event(eventLength: eventLength).Fid(Fsid, FileIdInvalid, []).Error(117).Build();

        AssertFramingError(buffer, eventsBefore: 1, FanotifyProblem.EventLengthTooSmall, offset: 56, value: eventLength);
    }

    [Theory]
    [InlineData(60u)]
    [InlineData(uint.MaxValue)]
    public void EventLengthPastTheBuffer_IsRejected(uint eventLength)
    {
        var buffer = GoodEvent().Event(eventLength: eventLength).Fid(Fsid, FileIdInvalid, []).Error(117).Build();
        Assert.Equal(112, buffer.Length);

        AssertFramingError(buffer, eventsBefore: 1, FanotifyProblem.EventLengthPastEnd, offset: 56, value: eventLength);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(255)]
    public void VersionOtherThan3_IsRejected(byte version)
    {
        var buffer = GoodEvent().Event(version: version).Fid(Fsid, FileIdInvalid, []).Error(117).Build();

        AssertFramingError(buffer, eventsBefore: 1, FanotifyProblem.UnsupportedVersion, offset: 56, value: version);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(23)]
    [InlineData(57)] // event_len is 56
    [InlineData(0xffff)]
    public void MetadataLengthBelow24OrBeyondEventLength_IsRejected(ushort metadataLength)
    {
        var buffer = GoodEvent().Event(metadataLength: metadataLength).Fid(Fsid, FileIdInvalid, []).Error(117).Build();

        AssertFramingError(buffer, eventsBefore: 1, FanotifyProblem.MetadataLengthInvalid, offset: 56, value: metadataLength);
    }

    [Fact]
    public void MetadataLengthEqualToEventLength_IsAnEventWithoutRecords()
    {
        var buffer = new EventBuilder().Event(metadataLength: 56).Fid(Fsid, FileIdInvalid, []).Error(117).Build();

        var parsed = ParsedBuffer.Parse(buffer);

        Assert.True(parsed.AtEnd);
        Assert.Empty(parsed.Single().RawRecords);
        Assert.Equal(FanotifyProblem.MissingErrorRecord, parsed.Single().Problem.Problem);
    }

    [Fact]
    public void SecondEventCorrupt_FirstIsReturnedAndTheErrorIsSticky()
    {
        var buffer = GoodEvent().Event(version: 9).Fid(Fsid, FileIdInvalid, []).Error(5).Build();

        var reader = new FanotifyEventReader(buffer);
        Assert.True(reader.TryRead(out var first));
        Assert.Equal(0, first.Offset);
        Assert.Equal(117, first.ReadRecords().Error.Errno);

        Assert.False(reader.TryRead(out _));
        Assert.Equal(new FanotifyParseError(56, FanotifyProblem.UnsupportedVersion, 9), reader.Error);
        Assert.False(reader.AtEnd);
        Assert.Equal(56, reader.Offset);

        Assert.False(reader.TryRead(out _)); // stays stopped
        Assert.Equal(56, reader.Error.Offset);
    }

    [Fact]
    public void EmptyBuffer_IsAtEndWithoutError()
    {
        var reader = new FanotifyEventReader([]);

        Assert.False(reader.TryRead(out _));
        Assert.True(reader.AtEnd);
        Assert.False(reader.Error.IsError);
        Assert.Equal("no error", reader.Error.ToString());
    }

    // ---- records ------------------------------------------------------------------------------

    [Theory]
    [InlineData(0)] // must not loop forever
    [InlineData(2)]
    [InlineData(3)]
    public void RecordLengthBelowHeader_StopsTheRecordWalkButNotTheEventWalk(ushort length)
    {
        var buffer = GoodEvent()
            .Event().Fid(Fsid, FileIdInvalid, []).Record(InfoError, new byte[8], length)
            .Event().Fid(Fsid, FileIdInvalid, []).Error(74)
            .Build();

        var parsed = ParsedBuffer.Parse(buffer);

        Assert.True(parsed.AtEnd);
        Assert.Equal(3, parsed.Events.Count);
        var bad = parsed.Events[1];
        Assert.Single(bad.RawRecords); // the FID record before the bad one
        AssertRecordProblem(bad.RecordWalkError, FanotifyProblem.RecordLengthTooSmall, offset: 56 + 24 + 20, value: length);
        AssertRecordProblem(bad.Problem, FanotifyProblem.RecordLengthTooSmall, offset: 100, value: length);
        Assert.True(bad.HasFid);
        Assert.False(bad.HasError);
        Assert.Equal(1u, bad.ErrorCount);
        Assert.Equal(74, parsed.Events[2].Error.Errno);
    }

    [Fact]
    public void RecordLengthPastEventEnd_IsRejected()
    {
        var buffer = GoodEvent().Event().Fid(Fsid, FileIdInvalid, []).Record(InfoError, new byte[8], length: 40).Build();

        var bad = ParsedBuffer.Parse(buffer).Events[1];

        AssertRecordProblem(bad.RecordWalkError, FanotifyProblem.RecordLengthPastEvent, offset: 100, value: 40);
        AssertRecordProblem(bad.Problem, FanotifyProblem.RecordLengthPastEvent, offset: 100, value: 40);
        Assert.False(bad.HasError);
    }

    [Fact]
    public void TrailingBytesShorterThanRecordHeader_AreReported()
    {
        var buffer = GoodEvent().Raw([0, 0]).Build(); // event_len 58

        var ev = ParsedBuffer.Parse(buffer).Single();

        AssertRecordProblem(ev.Problem, FanotifyProblem.RecordHeaderTruncated, offset: 56, value: 2);
        Assert.True(ev.HasFid && ev.HasError); // fields before the problem stay valid
    }

    [Fact]
    public void HandleBytesBeyondTheRecord_IsHandleLengthInvalid()
    {
        var buffer = GoodEvent().Event().Fid(Fsid, FileIdIno32Gen, Ino32Gen(12, 7), handleBytesField: 16).Error(117).Build();

        var bad = ParsedBuffer.Parse(buffer).Events[1];

        AssertRecordProblem(bad.Problem, FanotifyProblem.HandleLengthInvalid, offset: 80, value: 16);
        Assert.False(bad.HasFid);
        Assert.True(bad.IsWholeFilesystem);
        Assert.True(bad.HasError); // the walk went on past the bad FID record
        Assert.False(bad.RecordWalkError.IsError);
    }

    [Fact]
    public void HandleBytesAboveMaxHandleSize_IsHandleLengthInvalidEvenIfTheRecordHoldsThem()
    {
        var buffer = GoodEvent().Event().Fid(Fsid, 0x4d, new byte[132]).Error(117).Build();

        var bad = ParsedBuffer.Parse(buffer).Events[1];

        Assert.Equal(152, bad.RawRecords[0].Length);
        AssertRecordProblem(bad.Problem, FanotifyProblem.HandleLengthInvalid, offset: 80, value: 132);
        Assert.False(bad.HasFid);
    }

    [Fact]
    public void HandleOfExactlyMaxHandleSize_IsAccepted()
    {
        var handle = Enumerable.Range(0, 128).Select(i => (byte)i).ToArray();
        var buffer = new EventBuilder().Event().Fid(Fsid, 0x4d, handle).Error(117).Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.False(ev.Problem.IsError);
        Assert.Equal(handle, ev.Handle);
    }

    [Theory]
    [InlineData(InfoFid, 16)]   // fixed part is 20
    [InlineData(InfoError, 4)]
    [InlineData(InfoError, 8)]  // ERROR is 12
    [InlineData(InfoPidfd, 4)]  // PIDFD is 8
    [InlineData(InfoMnt, 8)]    // MNT is 16
    public void RecordShorterThanItsType_IsRecordTooShortForType(byte type, int length)
    {
        var buffer = GoodEvent().Event().Record(type, new byte[length - 4]).Fid(Fsid, FileIdInvalid, []).Error(117).Build();

        var bad = ParsedBuffer.Parse(buffer).Events[1];

        AssertRecordProblem(bad.Problem, FanotifyProblem.RecordTooShortForType, offset: 80, value: type);
        Assert.False(bad.RecordWalkError.IsError);
    }

    [Fact]
    public void ShortErrorRecord_LeavesNoErrorAndCountsOne()
    {
        var buffer = new EventBuilder().Event().Fid(Fsid, FileIdInvalid, []).Record(InfoError, [0x75, 0, 0, 0]).Build();

        var ev = ParsedBuffer.Parse(buffer).Single();

        Assert.False(ev.HasError);
        Assert.Equal(1u, ev.ErrorCount);
        Assert.Equal(FanotifyProblem.RecordTooShortForType, ev.Problem.Problem); // the first problem wins over "missing"
    }

    // ---- robustness ---------------------------------------------------------------------------

    [Fact]
    public void RandomlyMutatedBuffers_NeverThrowAndStayInsideTheBuffer()
    {
        const int seed = 20260121;
        const int iterations = 20000;
        var random = new Random(seed);
        var corpus = Directory.GetFiles(TestPaths.FixturesDir, "*.bin").Order().Select(File.ReadAllBytes).ToList();
        corpus.Add(new EventBuilder()
            .Event().Fid(Fsid, FileIdIno64Gen, Ino64Gen(1, 2)).Pidfd(5).Record(99, new byte[4]).Error(-5, 3)
            .Event(FanQOverflow)
            .Event(FanMntAttach).Mount(42)
            .Build());
        Assert.Equal(8, corpus.Count);

        for (var i = 0; i < iterations; i++)
        {
            var buffer = Mutate(corpus[random.Next(corpus.Count)], random);
            try
            {
                CheckInvariants(buffer);
            }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException(
                    $"iteration {i} (seed {seed}), buffer {Convert.ToHexString(buffer)}:{Environment.NewLine}{e}");
            }
        }
    }

    private static byte[] Mutate(byte[] original, Random random)
    {
        // Keep large buffers cheap: work on a window of whole bytes (not necessarily event-aligned).
        var start = original.Length > 512 && random.Next(2) == 0 ? random.Next(original.Length) : 0;
        var length = Math.Min(original.Length - start, original.Length > 512 ? random.Next(1, 1024) : original.Length);
        var buffer = original.AsSpan(start, length).ToArray();

        var mutations = random.Next(1, 5);
        for (var m = 0; m < mutations && buffer.Length > 0; m++)
        {
            switch (random.Next(5))
            {
                case 0: // bit flip
                    buffer[random.Next(buffer.Length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 1: // truncation
                    buffer = buffer[..random.Next(buffer.Length)];
                    break;
                case 2: // random bytes
                    for (var k = random.Next(1, 9); k > 0; k--)
                        buffer[random.Next(buffer.Length)] = (byte)random.Next(256);
                    break;
                case 3: // an interesting 16- or 32-bit value where a length field might be
                {
                    uint[] interesting = [0, 1, 3, 4, 8, 12, 16, 20, 23, 24, 25, 128, 129, 0x7fff, 0xffff, 0x7fffffff, 0x80000000, uint.MaxValue, (uint)buffer.Length];
                    var value = interesting[random.Next(interesting.Length)];
                    var at = random.Next(buffer.Length) & ~1;
                    if (at + 4 <= buffer.Length && random.Next(2) == 0)
                        BitConverter.TryWriteBytes(buffer.AsSpan(at), value);
                    else if (at + 2 <= buffer.Length)
                        BitConverter.TryWriteBytes(buffer.AsSpan(at), (ushort)value);
                    break;
                }
                default: // cut a chunk out of the middle
                {
                    var from = random.Next(buffer.Length);
                    var count = random.Next(1, Math.Min(16, buffer.Length - from) + 1);
                    buffer = [.. buffer.AsSpan(0, from), .. buffer.AsSpan(from + count)];
                    break;
                }
            }
        }
        return buffer;
    }

    private static void CheckInvariants(byte[] buffer)
    {
        ReadOnlySpan<byte> whole = buffer;
        var reader = new FanotifyEventReader(buffer);
        var expectedOffset = 0;
        var events = 0;
        while (reader.TryRead(out var ev))
        {
            Assert.True(++events <= buffer.Length / 24, "more events than the buffer can hold");
            Assert.Equal(expectedOffset, ev.Offset);
            AssertInside(whole, ev.Bytes, ev.Offset);
            Assert.Equal((int)ev.Length, ev.Bytes.Length);
            Assert.InRange(ev.Length, 24u, (uint)buffer.Length);
            Assert.Equal(3, ev.Version);
            Assert.InRange(ev.MetadataLength, (ushort)24, (ushort)Math.Min(ev.Length, ushort.MaxValue));
            _ = (ev.Mask, ev.Fd, ev.Pid, ev.IsOverflow, ev.IsFsError, ev.IsMountEvent);
            expectedOffset += (int)ev.Length;

            var eventEnd = ev.Offset + (int)ev.Length;
            var records = 0;
            var walker = ev.Records;
            while (walker.TryRead(out var rec))
            {
                Assert.True(++records <= (int)ev.Length / 4, "record walk does not advance");
                Assert.True(rec.Length >= 4);
                Assert.True(rec.Offset >= ev.Offset + ev.MetadataLength && rec.Offset + rec.Length <= eventEnd);
                AssertInside(whole, rec.Bytes, rec.Offset);
                _ = rec.Type;
                if (rec.TryGetFid(out var fid, out _))
                {
                    Assert.InRange(fid.Handle.Length, 0, 128);
                    AssertInside(whole, fid.Handle, rec.Offset + 20);
                    _ = (fid.Fsid.ToString(), fid.HandleType, fid.IsWholeFilesystem);
                }
                _ = rec.TryGetError(out var error) ? error.Errno : 0;
                _ = rec.TryGetPidfd(out var pidfd) ? pidfd : 0;
                _ = rec.TryGetMountId(out var mountId) ? mountId : 0;
            }
            _ = walker.Error.ToString();

            var r = ev.ReadRecords();
            Assert.True(r.ErrorCount >= 1);
            Assert.True(r.Error.Errno >= 0);
            Assert.InRange(r.Handle.Length, 0, 128);
            if (!r.Handle.IsEmpty)
                Assert.True(whole.Overlaps(r.Handle, out var handleAt) && handleAt >= ev.Offset && handleAt + r.Handle.Length <= eventEnd);
            AssertInside(whole, r.RecordBytes, r.RecordOffset);
            Assert.Equal(eventEnd, r.RecordOffset + r.RecordBytes.Length);
            Assert.NotNull(r.Problem.ToString());
            if (r.Problem.IsError)
                Assert.InRange(r.Problem.Offset, ev.Offset, eventEnd);
        }
        // The walk ends either at the end of the buffer or at a framing error, never both, never neither.
        Assert.NotEqual(reader.AtEnd, reader.Error.IsError);
        Assert.Equal(expectedOffset, reader.Offset);
        if (reader.Error.IsError)
        {
            Assert.Equal(expectedOffset, reader.Error.Offset);
            Assert.Contains($"offset {expectedOffset}:", reader.Error.ToString());
        }
    }

    private static void AssertInside(ReadOnlySpan<byte> buffer, ReadOnlySpan<byte> part, int expectedOffset)
    {
        if (part.IsEmpty)
        {
            Assert.InRange(expectedOffset, 0, buffer.Length);
            return;
        }
        Assert.True(buffer.Overlaps(part, out var at), "span does not point into the read buffer");
        Assert.Equal(expectedOffset, at);
        Assert.True(at + part.Length <= buffer.Length, "span runs past the read buffer");
    }

    // ---- helpers ------------------------------------------------------------------------------

    private static void AssertFramingError(byte[] buffer, int eventsBefore, FanotifyProblem problem, int offset, long value)
    {
        var parsed = ParsedBuffer.Parse(buffer);

        Assert.Equal(eventsBefore, parsed.Events.Count);
        Assert.False(parsed.AtEnd);
        Assert.Equal(offset, parsed.Offset);
        Assert.Equal(new FanotifyParseError(offset, problem, value), parsed.Error);
        var message = parsed.Error.ToString();
        Assert.Contains($"offset {offset}:", message);
        Assert.Contains(value.ToString(), message);
    }

    private static void AssertRecordProblem(FanotifyParseError error, FanotifyProblem problem, int offset, long value)
    {
        Assert.Equal(new FanotifyParseError(offset, problem, value), error);
        var message = error.ToString();
        Assert.Contains($"offset {offset}:", message);
        Assert.Contains(value.ToString(), message);
    }
}
