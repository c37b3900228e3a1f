using System.Buffers.Binary;
using System.Text;

namespace ErrorWatch.Tests.Modules.Ext4;

/// <summary>Writes ext4 superblock fields at the offsets of kernel-abi.md §6.2, independently of the reader.</summary>
internal sealed class SuperblockBuilder
{
    public byte[] Bytes { get; } = new byte[1024];

    public SuperblockBuilder()
    {
        U16(0x38, 0xEF53);
    }

    public SuperblockBuilder U8(int offset, byte value)
    {
        Bytes[offset] = value;
        return this;
    }

    public SuperblockBuilder U16(int offset, ushort value)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(Bytes.AsSpan(offset), value);
        return this;
    }

    public SuperblockBuilder U32(int offset, uint value)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(Bytes.AsSpan(offset), value);
        return this;
    }

    public SuperblockBuilder U64(int offset, ulong value)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(Bytes.AsSpan(offset), value);
        return this;
    }

    public SuperblockBuilder Text(int offset, int size, string value)
    {
        var bytes = Encoding.ASCII.GetBytes(value);
        Assert.True(bytes.Length <= size);
        Bytes.AsSpan(offset, size).Clear();
        bytes.CopyTo(Bytes, offset);
        return this;
    }

    public SuperblockBuilder Raw(int offset, byte[] bytes)
    {
        bytes.CopyTo(Bytes, offset);
        return this;
    }

    /// <summary>Stores the crc32c of bytes 0..0x3FB at 0x3FC, as ext4_superblock_csum_set() does.</summary>
    public SuperblockBuilder Checksum()
    {
        U32(0x3FC, BitwiseCrc32C(uint.MaxValue, Bytes.AsSpan(0, 0x3FC)));
        return this;
    }

    /// <summary>Reflected CRC-32C (polynomial 0x82F63B78) one bit at a time, without pre/post inversion.</summary>
    public static uint BitwiseCrc32C(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data)
        {
            crc ^= b;
            for (var i = 0; i < 8; i++)
                crc = (crc & 1) != 0 ? crc >> 1 ^ 0x82F63B78u : crc >> 1;
        }
        return crc;
    }
}
