using System.Runtime.InteropServices;
using ErrorWatch.Kernel;

namespace ErrorWatch.Benchmarks;

/// <summary>What one walk of a buffer yields: the three numbers fanotify-walk.c prints besides its timing.</summary>
public readonly record struct WalkSummary(ulong Events, ulong ErrorCountSum, ulong Checksum);

/// <summary>
/// The C reference loop (shared/anchors/fanotify-walk.c, walk()) re-expressed on the project's parser:
/// same fields extracted, same checksum formula, so both sides do the same work per event.
/// </summary>
public static class ParserWalk
{
    private const int FileIdIno32Gen = 1; // FILEID_INO32_GEN: u32 inode, u32 generation

    public static WalkSummary Walk(ReadOnlySpan<byte> buffer)
    {
        unchecked
        {
            ulong events = 0, errors = 0, checksum = 0;
            var reader = new FanotifyEventReader(buffer);
            while (reader.TryRead(out var ev))
            {
                events++;
                // C: s.checksum += mask ^ (uint64_t)pid;  (int32 -> uint64 sign-extends)
                checksum += ev.Mask ^ (ulong)(long)ev.Pid;

                var rec = ev.ReadRecords();
                if (rec.HasError)
                {
                    // C sums the raw error_count (not EventRecords.ErrorCount, which floors at 1).
                    var count = rec.Error.Count;
                    errors += count;
                    checksum += (ulong)rec.Error.Errno * 31 + count;
                }
                if (rec.HasFid)
                {
                    // C: memcpy(&fsid, p + 4, 8) -> val[0] in the low half, val[1] in the high half.
                    var fsid = (uint)rec.Fsid.Val0 | ((ulong)(uint)rec.Fsid.Val1 << 32);
                    checksum += fsid + (ulong)(long)rec.HandleType;
                    // C: memcpy, host order, like the parser itself.
                    var handle = rec.Handle;
                    if (rec.HandleType == FileIdIno32Gen && handle.Length >= 8)
                    {
                        ulong ino = MemoryMarshal.Read<uint>(handle);
                        ulong gen = MemoryMarshal.Read<uint>(handle.Slice(4));
                        checksum += (gen << 32) | ino;
                    }
                }
            }
            return new WalkSummary(events, errors, checksum);
        }
    }
}
