using System.Buffers.Binary;
using System.Numerics;

namespace ErrorWatch;

/// <summary>CRC-32C (Castagnoli): ext4's metadata checksum and the report store's record checksum.</summary>
public static class Crc32C
{
    /// <summary>Raw update (no pre/post inversion), eight bytes at a time; BitOperations uses SSE4.2/ARMv8 CRC when present.</summary>
    public static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        while (data.Length >= sizeof(ulong))
        {
            crc = BitOperations.Crc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
            data = data.Slice(sizeof(ulong));
        }
        foreach (var b in data)
            crc = BitOperations.Crc32C(crc, b);
        return crc;
    }
}
