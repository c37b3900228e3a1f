using System.Buffers.Binary;
using ErrorWatch.Kernel;

namespace ErrorWatch.Tests.Kernel;

/// <summary>What the reference parser says about one event: positions are absolute buffer offsets, -1 when absent.</summary>
internal readonly record struct ReferenceEvent(
    int Offset, int Length, ushort MetadataLength, ulong Mask,
    int Fid, int Error, int Pidfd, int Mount, int Unknown, int RawRecords,
    FanotifyParseError WalkError, FanotifyParseError Problem);

/// <summary>
/// The parser's contract written the slow, obvious way, straight from kernel-abi.md §2 and the
/// framing rules (FAN_EVENT_OK): byte offsets, little-endian reads, no spans, no shortcuts. The
/// fuzzer holds the real parser (its FID+ERROR fast path and its general walk alike) to exactly
/// these answers, field by field, problem by problem.
/// </summary>
internal static class ReferenceParser
{
    public const int MetadataLength = 24;

    /// <summary>Events in order, then either the framing error that stopped the walk or none (at the end).</summary>
    public static (List<ReferenceEvent> Events, FanotifyParseError Error) Parse(ReadOnlySpan<byte> b)
    {
        if (!BitConverter.IsLittleEndian)
            throw new PlatformNotSupportedException("the reference reads little-endian, like the x86_64 captures");
        var events = new List<ReferenceEvent>();
        var off = 0;
        while (true)
        {
            var remaining = b.Length - off;
            if (remaining == 0)
                return (events, default);
            if (remaining < MetadataLength)
                return (events, new(off, FanotifyProblem.TruncatedMetadata, remaining));
            var eventLength = BinaryPrimitives.ReadUInt32LittleEndian(b[off..]);
            var version = b[off + 4];
            var metadataLength = BinaryPrimitives.ReadUInt16LittleEndian(b[(off + 6)..]);
            if (eventLength < MetadataLength)
                return (events, new(off, FanotifyProblem.EventLengthTooSmall, eventLength));
            if (eventLength > (uint)remaining)
                return (events, new(off, FanotifyProblem.EventLengthPastEnd, eventLength));
            if (version != 3)
                return (events, new(off, FanotifyProblem.UnsupportedVersion, version));
            if (metadataLength < MetadataLength || metadataLength > eventLength)
                return (events, new(off, FanotifyProblem.MetadataLengthInvalid, metadataLength));
            events.Add(Records(b, off, (int)eventLength, metadataLength, BinaryPrimitives.ReadUInt64LittleEndian(b[(off + 8)..])));
            off += (int)eventLength;
        }
    }

    private static ReferenceEvent Records(ReadOnlySpan<byte> b, int off, int eventLength, ushort metadataLength, ulong mask)
    {
        int fid = -1, error = -1, pidfd = -1, mount = -1, unknown = 0, raw = 0;
        FanotifyParseError problem = default, walkError = default;
        var end = off + eventLength;
        var p = off + metadataLength;
        while (p < end)
        {
            var rest = end - p;
            if (rest < 4)
            {
                walkError = new(p, FanotifyProblem.RecordHeaderTruncated, rest);
                break;
            }
            var type = b[p];
            int length = BinaryPrimitives.ReadUInt16LittleEndian(b[(p + 2)..]);
            if (length < 4)
            {
                walkError = new(p, FanotifyProblem.RecordLengthTooSmall, length);
                break;
            }
            if (length > rest)
            {
                walkError = new(p, FanotifyProblem.RecordLengthPastEvent, length);
                break;
            }
            raw++;
            if (type == 1 && fid < 0)
            {
                if (length < 20)
                    First(ref problem, new(p, FanotifyProblem.RecordTooShortForType, type));
                else if (BinaryPrimitives.ReadUInt32LittleEndian(b[(p + 12)..]) is var handleBytes && (handleBytes > 128 || handleBytes > length - 20))
                    First(ref problem, new(p, FanotifyProblem.HandleLengthInvalid, handleBytes));
                else
                    fid = p;
            }
            else if (type == 5 && error < 0)
            {
                if (length >= 12)
                    error = p;
                else
                    First(ref problem, new(p, FanotifyProblem.RecordTooShortForType, type));
            }
            else if (type == 4 && pidfd < 0)
            {
                if (length >= 8)
                    pidfd = p;
                else
                    First(ref problem, new(p, FanotifyProblem.RecordTooShortForType, type));
            }
            else if (type == 7 && mount < 0)
            {
                if (length >= 16)
                    mount = p;
                else
                    First(ref problem, new(p, FanotifyProblem.RecordTooShortForType, type));
            }
            else
            {
                unknown++;
            }
            p += length;
        }
        First(ref problem, walkError);
        if ((mask & 0x8000) != 0 && error < 0)
            First(ref problem, new(off, FanotifyProblem.MissingErrorRecord, 0));
        else if ((mask & 0x8000) != 0 && fid < 0)
            First(ref problem, new(off, FanotifyProblem.MissingFidRecord, 0));
        return new ReferenceEvent(off, eventLength, metadataLength, mask, fid, error, pidfd, mount, unknown, raw, walkError, problem);
    }

    private static void First(ref FanotifyParseError problem, FanotifyParseError candidate)
    {
        if (!problem.IsError)
            problem = candidate;
    }
}
