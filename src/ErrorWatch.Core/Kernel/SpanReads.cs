using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ErrorWatch.Kernel;

/// <summary>
/// Host-order unaligned loads from a span with one bounds check each. <c>MemoryMarshal.Read(span.Slice(offset))</c>
/// checks twice (the slice, then the length of what is left) and builds a span in between; on the
/// parser's hot path those checks were a large part of the cost per event. The check here is the
/// same guarantee in one unsigned comparison: offset + size ≤ length, computed in 64 bits so that no
/// offset can wrap around it. Out of range throws, exactly as a span index would.
/// </summary>
internal static class SpanReads
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Read<T>(ReadOnlySpan<byte> span, int offset) where T : unmanaged
    {
        if ((ulong)(uint)offset + (ulong)(uint)Unsafe.SizeOf<T>() > (ulong)(uint)span.Length)
            ThrowOutOfRange();
        return Unsafe.ReadUnaligned<T>(ref Unsafe.Add(ref MemoryMarshal.GetReference(span), (nint)(uint)offset));
    }

    [DoesNotReturn]
    private static void ThrowOutOfRange() => throw new ArgumentOutOfRangeException("offset");
}
