using ErrorWatch.Decoding;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Modules.Xfs;
using ErrorWatch.Tests.Kernel;

namespace ErrorWatch.Tests.Decoding;

/// <summary>
/// File handle layouts of kernel-abi.md §4 (include/linux/exportfs.h, fs/xfs/xfs_export.c), host byte
/// order: type 1 = ino32, gen32; type 2 adds parent ino32, gen32; 0x81 = ino64, gen32 (packed, 12 bytes);
/// 0x82 adds parent ino64, gen32 (24 bytes); FILEID_INVALID (0xff) with 0 bytes = whole filesystem.
/// </summary>
public class FileHandleTests
{
    private const int Ino32Gen = 1, Ino32GenParent = 2, Ino64Gen = 0x81, Ino64GenParent = 0x82;
    private const int BtrfsWithoutParent = 0x4d, FileIdInvalid = 0xff;

    private static readonly Ext4Decoder Ext4 = new();
    private static readonly XfsDecoder Xfs = new();

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    [Fact]
    public void Ext4_Type1_IsInode32AndGeneration()
    {
        // 0xfffffff0: an inode number with the top bit set must not come back sign-extended.
        var handle = EventBuilder.Ino32Gen(0xfffffff0, 0xdeadbeef);

        var obj = Ext4.DecodeHandle(Ino32Gen, handle);

        Assert.Null(obj.Problem);
        Assert.False(obj.IsWholeFilesystem);
        Assert.Equal(0xfffffff0ul, obj.Inode);
        Assert.Equal(0xdeadbeefu, obj.Generation);
        Assert.Null(obj.ParentInode);
        Assert.Null(obj.ParentGeneration);
        Assert.Equal(Ino32Gen, obj.HandleType);
        Assert.Equal("f0ffffffefbeadde", obj.HandleHex);
    }

    [Fact]
    public void Ext4_Type1_TypicalInode12()
    {
        var obj = Ext4.DecodeHandle(Ino32Gen, [0x0c, 0, 0, 0, 0x2a, 0, 0, 0]);

        Assert.Equal(12ul, obj.Inode);
        Assert.Equal(42u, obj.Generation);
    }

    [Fact]
    public void Ext4_Type2_CarriesTheParent()
    {
        var handle = Concat(EventBuilder.Ino32Gen(13, 0x01020304), EventBuilder.Ino32Gen(2, 0x0a0b0c0d));
        Assert.Equal(16, handle.Length);

        var obj = Ext4.DecodeHandle(Ino32GenParent, handle);

        Assert.Null(obj.Problem);
        Assert.Equal(13ul, obj.Inode);
        Assert.Equal(0x01020304u, obj.Generation);
        Assert.Equal(2ul, obj.ParentInode);
        Assert.Equal(0x0a0b0c0du, obj.ParentGeneration);
        Assert.Equal(Ino32GenParent, obj.HandleType);
    }

    [Fact]
    public void Xfs_0x81_IsInode64AndGeneration()
    {
        const ulong ino = 0x0000_0001_2345_6789; // needs more than 32 bits
        var handle = EventBuilder.Ino64Gen(ino, 0xfeedc0de);
        Assert.Equal(12, handle.Length);

        var obj = Xfs.DecodeHandle(Ino64Gen, handle);

        Assert.Null(obj.Problem);
        Assert.Equal(ino, obj.Inode);
        Assert.True(obj.Inode > uint.MaxValue);
        Assert.Equal(0xfeedc0deu, obj.Generation);
        Assert.Null(obj.ParentInode);
        Assert.Equal(Ino64Gen, obj.HandleType);
        Assert.Equal("8967452301000000dec0edfe", obj.HandleHex);
    }

    [Fact]
    public void Xfs_0x82_CarriesTheParentIn24PackedBytes()
    {
        const ulong ino = 0x0000_0002_0000_0083, parent = 0x0000_0003_0000_0080;
        var handle = Concat(EventBuilder.Ino64Gen(ino, 7), EventBuilder.Ino64Gen(parent, 0x80000001));
        Assert.Equal(24, handle.Length);

        var obj = Xfs.DecodeHandle(Ino64GenParent, handle);

        Assert.Null(obj.Problem);
        Assert.Equal(ino, obj.Inode);
        Assert.Equal(7u, obj.Generation);
        // Packed: the parent inode starts at byte 12, not at an 8-byte boundary (16).
        Assert.Equal(parent, obj.ParentInode);
        Assert.Equal(0x80000001u, obj.ParentGeneration);
    }

    [Fact]
    public void Xfs_Type1_IsTheInode32Layout()
    {
        var obj = Xfs.DecodeHandle(Ino32Gen, EventBuilder.Ino32Gen(131, 5));

        Assert.Null(obj.Problem);
        Assert.Equal(131ul, obj.Inode);
        Assert.Equal(5u, obj.Generation);
        Assert.Equal(Ino32Gen, obj.HandleType);
    }

    [Fact]
    public void Xfs_Type2_IsTheInode32LayoutWithParent()
    {
        var obj = Xfs.DecodeHandle(Ino32GenParent, Concat(EventBuilder.Ino32Gen(131, 5), EventBuilder.Ino32Gen(128, 1)));

        Assert.Equal(131ul, obj.Inode);
        Assert.Equal(128ul, obj.ParentInode);
        Assert.Equal(1u, obj.ParentGeneration);
    }

    [Fact]
    public void Generic_AcceptsBoth32And64BitLayouts()
    {
        var generic = new GenericDecoder();

        Assert.Equal(12ul, generic.DecodeHandle(Ino32Gen, EventBuilder.Ino32Gen(12, 1)).Inode);
        Assert.Equal(0x1_0000_0000ul, generic.DecodeHandle(Ino64Gen, EventBuilder.Ino64Gen(0x1_0000_0000, 1)).Inode);
    }

    /// <summary>Handles shorter than their type's layout: 8 / 16 / 12 / 24 bytes are needed (§4.1).</summary>
    public static TheoryData<string, int, int> TooShort => new()
    {
        { "ext4", Ino32Gen, 4 },
        { "ext4", Ino32Gen, 7 },
        { "ext4", Ino32GenParent, 8 },
        { "ext4", Ino32GenParent, 15 },
        { "xfs", Ino32Gen, 4 },
        { "xfs", Ino64Gen, 8 },
        { "xfs", Ino64Gen, 11 },
        { "xfs", Ino64GenParent, 12 },
        { "xfs", Ino64GenParent, 23 },
        { "generic", Ino64Gen, 1 },
    };

    [Theory]
    [MemberData(nameof(TooShort))]
    public void TooShortHandle_IsAProblemWithoutInode(string fs, int handleType, int length)
    {
        IFilesystemDecoder decoder = fs switch { "ext4" => Ext4, "xfs" => Xfs, _ => new GenericDecoder() };
        var handle = Enumerable.Range(1, length).Select(i => (byte)i).ToArray();

        var obj = decoder.DecodeHandle(handleType, handle);

        Assert.NotNull(obj.Problem);
        Assert.Null(obj.Inode);
        Assert.Null(obj.Generation);
        Assert.Null(obj.ParentInode);
        Assert.Equal(handleType, obj.HandleType);
        Assert.Equal(Convert.ToHexStringLower(handle), obj.HandleHex); // the raw bytes are kept for the report
    }

    [Fact]
    public void Ext4_UnknownType0x4d_IsAProblem()
    {
        // 0x4d is FILEID_BTRFS_WITHOUT_PARENT: never produced by ext4.
        var handle = new byte[20];
        handle[0] = 0x11;

        var obj = Ext4.DecodeHandle(BtrfsWithoutParent, handle);

        Assert.NotNull(obj.Problem);
        Assert.Null(obj.Inode);
        Assert.Equal(BtrfsWithoutParent, obj.HandleType);
        Assert.Equal(Convert.ToHexStringLower(handle), obj.HandleHex);
    }

    [Fact]
    public void Ext4_Type0x81_IsAProblem()
    {
        // kernel-abi.md §4.2: ext4 inode numbers are always 32-bit; it never encodes FILEID_INO64_GEN.
        var obj = Ext4.DecodeHandle(Ino64Gen, EventBuilder.Ino64Gen(12, 1));

        Assert.NotNull(obj.Problem);
        Assert.Null(obj.Inode);
    }

    [Fact]
    public void Xfs_UnknownType0x4d_IsAProblem()
    {
        var obj = Xfs.DecodeHandle(BtrfsWithoutParent, new byte[20]);

        Assert.NotNull(obj.Problem);
        Assert.Null(obj.Inode);
    }

    /// <summary>kernel-abi.md §2.7: an empty handle is forced to FILEID_INVALID and means "whole filesystem"; 0xff is never a real handle.</summary>
    public static TheoryData<int, byte[]> WholeFilesystemHandles => new()
    {
        { FileIdInvalid, [] },
        { FileIdInvalid, [1, 0, 0, 0, 2, 0, 0, 0] },
        { Ino32Gen, [] },
        { Ino64Gen, [] },
    };

    [Theory]
    [MemberData(nameof(WholeFilesystemHandles))]
    public void InvalidOrEmptyHandle_IsTheWholeFilesystem(int handleType, byte[] handle)
    {
        foreach (IFilesystemDecoder decoder in new IFilesystemDecoder[] { Ext4, Xfs, new GenericDecoder() })
        {
            var obj = decoder.DecodeHandle(handleType, handle);

            Assert.True(obj.IsWholeFilesystem, decoder.Name);
            Assert.Null(obj.Inode);
            Assert.Null(obj.Generation);
            Assert.Null(obj.Problem);
            Assert.Equal(FileIdInvalid, obj.HandleType);
        }
    }
}
