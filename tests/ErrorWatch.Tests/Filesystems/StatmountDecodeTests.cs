using System.Runtime.InteropServices;
using System.Text;
using ErrorWatch.Filesystems;

namespace ErrorWatch.Tests.Filesystems;

/// <summary>
/// struct statmount as laid out in kernel-abi.md §1.5: a 512-byte fixed part, then str[] holding
/// NUL-terminated strings that [str] fields point at by offset; `mask` says which fields were filled.
/// </summary>
public class StatmountDecodeTests
{
    // Request bits (include/uapi/linux/mount.h).
    private const ulong SbBasic = 0x1, MntBasic = 0x2, MntRoot = 0x8, MntPoint = 0x10, FsType = 0x20, MntOpts = 0x80, SbSource = 0x200;
    private const ulong AllStrings = SbBasic | MntBasic | MntRoot | MntPoint | FsType | MntOpts | SbSource;
    private const uint SB_RDONLY = 0x1;
    private const ulong MOUNT_ATTR_RDONLY = 0x1, MOUNT_ATTR_NOSUID = 0x2, MOUNT_ATTR_NODEV = 0x4;

    /// <summary>Field offsets from the kernel-abi.md table.</summary>
    private static class Off
    {
        public const int Size = 0, MntOpts = 4, Mask = 8, SbDevMajor = 16, SbDevMinor = 20, SbMagic = 24, SbFlags = 32,
            FsType = 36, MntId = 40, MntParentId = 48, MntIdOld = 56, MntParentIdOld = 60, MntAttr = 64,
            MntPropagation = 72, MntRoot = 104, MntPoint = 108, MntNsId = 112, SbSource = 124, Str = 512;
    }

    private sealed class StatmountBuilder
    {
        private readonly byte[] _fixed = new byte[Off.Str];
        private readonly List<byte> _strings = new();

        public StatmountBuilder Set<T>(int offset, T value) where T : unmanaged
        {
            MemoryMarshal.Write(_fixed.AsSpan(offset), in value);
            return this;
        }

        /// <summary>Appends a NUL-terminated string to str[] and stores its offset in the field.</summary>
        public StatmountBuilder String(int fieldOffset, ReadOnlySpan<byte> value)
        {
            Set(fieldOffset, (uint)_strings.Count);
            _strings.AddRange(value);
            _strings.Add(0);
            return this;
        }

        public StatmountBuilder String(int fieldOffset, string value) => String(fieldOffset, Encoding.UTF8.GetBytes(value));

        /// <summary>The buffer; size defaults to the bytes written, and the kernel's buffer may be larger.</summary>
        public byte[] Build(uint? size = null, int slack = 0, byte slackFill = 0)
        {
            var length = Off.Str + _strings.Count;
            Set(Off.Size, size ?? (uint)length);
            var buffer = new byte[length + slack];
            _fixed.CopyTo(buffer, 0);
            _strings.CopyTo(buffer, Off.Str);
            buffer.AsSpan(length).Fill(slackFill);
            return buffer;
        }
    }

    private static StatmountBuilder Typical(ulong mask = AllStrings) => new StatmountBuilder()
        .Set(Off.Mask, mask)
        .Set(Off.SbDevMajor, 7u)
        .Set(Off.SbDevMinor, 3u)
        .Set(Off.SbMagic, 0xEF53ul)
        .Set(Off.SbFlags, SB_RDONLY)
        .Set(Off.MntId, 0x8000_01d0ul)
        .Set(Off.MntParentId, 0x8000_0001ul)
        .Set(Off.MntIdOld, 464u)
        .Set(Off.MntParentIdOld, 1u)
        .Set(Off.MntAttr, MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
        .Set(Off.MntPropagation, 0x100000ul) // MS_SHARED
        .Set(Off.MntNsId, 0x4000_0001ul)
        .String(Off.FsType, "ext4")           // at str offset 0: offset 0 is a real string
        .String(Off.MntRoot, "/sub/dir")
        .String(Off.MntPoint, "/mnt/data")
        .String(Off.SbSource, "/dev/loop3")
        .String(Off.MntOpts, "errors=continue,data=ordered");

    [Fact]
    public void EveryField_IsDecoded()
    {
        var entry = MountTable.ToEntry(Typical().Build(slack: 3000, slackFill: 0xcc));

        Assert.Equal(0x8000_01d0ul, entry.Id);          // the 64-bit unique id, not mnt_id_old
        Assert.Equal(0x8000_0001ul, entry.ParentId);
        Assert.True(entry.UniqueId);
        Assert.Equal(new DeviceNumber(7, 3), entry.Device);
        Assert.Equal(0xEF53ul, entry.Magic);
        Assert.Equal("ext4", entry.FsType);
        Assert.Equal("/dev/loop3", entry.Source);
        Assert.Equal("/mnt/data", entry.MountPoint.Text);
        Assert.Equal("/sub/dir", entry.Root.Text);
        Assert.False(entry.IsFilesystemRoot);
        Assert.Equal("errors=continue,data=ordered", entry.SuperOptions);
        Assert.True(entry.ReadOnly);                     // MOUNT_ATTR_RDONLY
        Assert.True(entry.SuperblockReadOnly);           // SB_RDONLY
        Assert.Equal("ro", entry.Options.Split(',')[0]); // mountinfo-style: first option is ro/rw
    }

    [Fact]
    public void ReadWriteMountOfReadWriteSuperblock()
    {
        var buffer = Typical().Set(Off.MntAttr, MOUNT_ATTR_NOSUID).Set(Off.SbFlags, 0u).Build();

        var entry = MountTable.ToEntry(buffer);

        Assert.False(entry.ReadOnly);
        Assert.False(entry.SuperblockReadOnly);
        Assert.Equal("rw", entry.Options.Split(',')[0]);
    }

    [Fact]
    public void ReadWriteMountOfReadOnlySuperblock_AreIndependent()
    {
        var entry = MountTable.ToEntry(Typical().Set(Off.MntAttr, 0ul).Set(Off.SbFlags, SB_RDONLY).Build());

        Assert.False(entry.ReadOnly);
        Assert.True(entry.SuperblockReadOnly);
    }

    [Theory]
    [InlineData(FsType)]
    [InlineData(SbSource)]
    [InlineData(MntOpts)]
    [InlineData(MntPoint)]
    [InlineData(MntRoot)]
    public void MaskWithoutTheBit_LeavesThatStringEmpty(ulong missing)
    {
        var entry = MountTable.ToEntry(Typical(AllStrings & ~missing).Build());

        Assert.Equal(missing == FsType ? "" : "ext4", entry.FsType);
        Assert.Equal(missing == SbSource ? "" : "/dev/loop3", entry.Source);
        Assert.Equal(missing == MntOpts ? "" : "errors=continue,data=ordered", entry.SuperOptions);
        Assert.Equal(missing == MntPoint ? "" : "/mnt/data", entry.MountPoint.Text);
        Assert.Equal(missing == MntRoot ? "" : "/sub/dir", entry.Root.Text);
    }

    [Fact]
    public void OldKernelWithoutSbSource_LeavesSourceEmptyEvenIfTheOffsetFieldIsZero()
    {
        // Before 6.13 the kernel never sets STATMOUNT_SB_SOURCE; the field stays 0, a valid offset.
        var entry = MountTable.ToEntry(Typical(AllStrings & ~SbSource).Set(Off.SbSource, 0u).Build());

        Assert.Equal("", entry.Source);
        Assert.Equal("ext4", entry.FsType);
    }

    [Theory]
    [InlineData(0u, "ext4")]        // any offset inside str[] is followed to its NUL
    [InlineData(5u, "/sub/dir")]
    [InlineData(7u, "ub/dir")]
    [InlineData(63u, "")]           // the last byte of str[]: the options string's NUL
    public void StringOffsetInRange_ReadsUpToTheNul(uint offset, string expected)
    {
        var entry = MountTable.ToEntry(Typical().Set(Off.MntPoint, offset).Build());

        Assert.Equal(expected, entry.MountPoint.Text);
    }

    [Theory]
    [InlineData(64u)]               // exactly the end of str[] (5 + 9 + 10 + 11 + 29 bytes)
    [InlineData(65u)]
    [InlineData(4096u)]
    [InlineData(0x7fffffffu)]
    [InlineData(0xffffffffu)]       // must not wrap to a negative index
    public void StringOffsetOutOfRange_YieldsEmpty(uint offset)
    {
        // The caller's buffer continues past `size` with stale bytes that must not be read.
        var buffer = Typical().Set(Off.MntPoint, offset).Set(Off.FsType, offset).Build(slack: 4096, slackFill: (byte)'X');
        Assert.Equal(Off.Str + 64, (int)MemoryMarshal.Read<uint>(buffer));

        var entry = MountTable.ToEntry(buffer);

        Assert.Empty(entry.MountPoint.Bytes.ToArray());
        Assert.Equal("", entry.FsType);
        Assert.Equal("/dev/loop3", entry.Source); // the other fields are unaffected
    }

    [Fact]
    public void StringsBeyondTheSizeField_AreIgnored()
    {
        // size says where the kernel stopped writing; the rest of the caller's buffer is stale.
        var builder = new StatmountBuilder()
            .Set(Off.Mask, SbBasic | FsType | MntPoint)
            .String(Off.FsType, "xfs")          // str[0..4)
            .String(Off.MntPoint, "/stale");    // str[4..11)
        var buffer = builder.Build(size: (uint)(Off.Str + 4));

        var entry = MountTable.ToEntry(buffer);

        Assert.Equal("xfs", entry.FsType);
        Assert.Empty(entry.MountPoint.Bytes.ToArray());
    }

    [Fact]
    public void SizeFieldLargerThanTheBuffer_IsClampedAndAnUnterminatedStringEndsAtTheBuffer()
    {
        var buffer = new StatmountBuilder()
            .Set(Off.Mask, FsType | MntPoint)
            .String(Off.FsType, "ext4")
            .String(Off.MntPoint, "/mnt/cut")
            .Build(size: 100_000);
        var truncated = buffer[..^1]; // drop the final NUL

        var entry = MountTable.ToEntry(truncated);

        Assert.Equal("ext4", entry.FsType);
        Assert.Equal("/mnt/cut", entry.MountPoint.Text);
    }

    [Fact]
    public void SizeOfOnlyTheFixedPart_LeavesEveryStringEmpty()
    {
        var entry = MountTable.ToEntry(Typical().Build(size: Off.Str));

        Assert.Equal("", entry.FsType);
        Assert.Empty(entry.MountPoint.Bytes.ToArray());
        Assert.Equal(0x8000_01d0ul, entry.Id);
    }

    [Fact]
    public void PathBytesAreKeptRaw_NotUnescaped()
    {
        // statmount returns paths verbatim: no octal escaping, any byte but NUL.
        byte[] point = [.. "/mnt/a b\\040\n"u8, 0xff];
        var entry = MountTable.ToEntry(new StatmountBuilder()
            .Set(Off.Mask, MntPoint | MntRoot)
            .String(Off.MntPoint, point)
            .String(Off.MntRoot, "/")
            .Build());

        Assert.Equal(point, entry.MountPoint.Bytes.ToArray());
        Assert.False(entry.MountPoint.IsValidUtf8);
        Assert.True(entry.IsFilesystemRoot);
    }
}
