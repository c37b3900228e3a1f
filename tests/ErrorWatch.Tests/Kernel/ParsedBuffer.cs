using ErrorWatch.Kernel;

namespace ErrorWatch.Tests.Kernel;

/// <summary>One raw info record as walked by <see cref="FanotifyEvent.Records"/>.</summary>
internal sealed record RecordInfo(byte Type, int Length, int Offset);

/// <summary>A heap copy of one parsed event and of its <see cref="EventRecords"/> (the originals are ref structs).</summary>
internal sealed record ParsedEvent(
    int Offset, uint Length, byte Version, ushort MetadataLength, ulong Mask, int Fd, int Pid,
    bool IsOverflow, bool IsFsError, bool IsMountEvent,
    IReadOnlyList<RecordInfo> RawRecords, FanotifyParseError RecordWalkError,
    bool HasFid, FilesystemId Fsid, int HandleType, byte[] Handle,
    bool HasError, ErrorRecord Error, uint ErrorCount,
    bool HasPidfd, int Pidfd, bool HasMountId, ulong MountId,
    int UnknownCount, int RecordBytesLength, int RecordOffset, bool IsWholeFilesystem,
    FanotifyParseError Problem);

/// <summary>Everything one <see cref="FanotifyEventReader"/> pass over a buffer produced.</summary>
internal sealed record ParsedBuffer(IReadOnlyList<ParsedEvent> Events, FanotifyParseError Error, bool AtEnd, int Offset)
{
    public static ParsedBuffer Parse(ReadOnlySpan<byte> buffer)
    {
        var events = new List<ParsedEvent>();
        var reader = new FanotifyEventReader(buffer);
        while (reader.TryRead(out var ev))
            events.Add(Snapshot(ev));
        return new ParsedBuffer(events, reader.Error, reader.AtEnd, reader.Offset);
    }

    public ParsedEvent Single() => Assert.Single(Events);

    private static ParsedEvent Snapshot(FanotifyEvent ev)
    {
        var raw = new List<RecordInfo>();
        var walker = ev.Records;
        while (walker.TryRead(out var rec))
        {
            raw.Add(new RecordInfo(rec.Type, rec.Length, rec.Offset));
            Assert.True(raw.Count <= ev.Bytes.Length / 4, "the record walk does not advance");
        }

        var r = ev.ReadRecords();
        return new ParsedEvent(
            ev.Offset, ev.Length, ev.Version, ev.MetadataLength, ev.Mask, ev.Fd, ev.Pid,
            ev.IsOverflow, ev.IsFsError, ev.IsMountEvent,
            raw, walker.Error,
            r.HasFid, r.Fsid, r.HandleType, r.Handle.ToArray(),
            r.HasError, r.Error, r.ErrorCount,
            r.HasPidfd, r.Pidfd, r.HasMountId, r.MountId,
            r.UnknownCount, r.RecordBytes.Length, r.RecordOffset, r.IsWholeFilesystem,
            r.Problem);
    }
}
