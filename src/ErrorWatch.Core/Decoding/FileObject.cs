using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Decoding;

/// <summary>What a file handle names: the whole filesystem, or an inode (and maybe its parent).</summary>
public sealed record FileObject
{
    public static readonly FileObject WholeFilesystem = new() { HandleType = FILEID_INVALID, IsWholeFilesystem = true };

    /// <summary>Only an empty FILEID_INVALID handle means the whole filesystem (kernel-abi.md §2.7); an undecodable handle still names a file.</summary>
    public bool IsWholeFilesystem { get; private init; }
    public ulong? Inode { get; init; }
    public uint? Generation { get; init; }
    public ulong? ParentInode { get; init; }
    public uint? ParentGeneration { get; init; }
    public int HandleType { get; init; }
    /// <summary>The raw handle bytes in hex, for handle types no decoder understands.</summary>
    public string HandleHex { get; init; } = "";
    /// <summary>Why the handle could not be decoded (unknown type, wrong length), or null.</summary>
    public string? Problem { get; init; }
}

/// <summary>
/// The generic export encodings of include/linux/exportfs.h (kernel-abi.md §4): 32-bit inode +
/// generation (type 1, parent variant 2) and 64-bit inode + generation (0x81, parent 0x82), host order.
/// </summary>
public static class FileHandleLayout
{
    public static FileObject Decode(int handleType, ReadOnlySpan<byte> handle, ReadOnlySpan<int> acceptedTypes)
    {
        if (handle.IsEmpty || handleType == FILEID_INVALID)
            return FileObject.WholeFilesystem;
        var hex = Convert.ToHexStringLower(handle);
        if (!acceptedTypes.Contains(handleType))
            return new FileObject { HandleType = handleType, HandleHex = hex, Problem = $"handle type 0x{handleType:x} is not one this filesystem encodes" };

        ulong? ino = null, parentIno = null;
        uint? gen = null, parentGen = null;
        int need;
        switch (handleType)
        {
            case FILEID_INO32_GEN:
            case FILEID_INO32_GEN_PARENT:
                need = handleType == FILEID_INO32_GEN ? 8 : 16;
                if (handle.Length < need)
                    break;
                ino = BitConverter.ToUInt32(handle);
                gen = BitConverter.ToUInt32(handle[4..]);
                if (handleType == FILEID_INO32_GEN_PARENT)
                {
                    parentIno = BitConverter.ToUInt32(handle[8..]);
                    parentGen = BitConverter.ToUInt32(handle[12..]);
                }
                break;
            case FILEID_INO64_GEN:
            case FILEID_INO64_GEN_PARENT:
                need = handleType == FILEID_INO64_GEN ? 12 : 24;
                if (handle.Length < need)
                    break;
                ino = BitConverter.ToUInt64(handle);
                gen = BitConverter.ToUInt32(handle[8..]);
                if (handleType == FILEID_INO64_GEN_PARENT)
                {
                    parentIno = BitConverter.ToUInt64(handle[12..]);
                    parentGen = BitConverter.ToUInt32(handle[20..]);
                }
                break;
            default:
                return new FileObject { HandleType = handleType, HandleHex = hex, Problem = $"handle type 0x{handleType:x} has no generic layout" };
        }
        if (ino is null)
            return new FileObject { HandleType = handleType, HandleHex = hex, Problem = $"handle type 0x{handleType:x} needs more than {handle.Length} bytes" };
        return new FileObject
        {
            HandleType = handleType,
            HandleHex = hex,
            Inode = ino,
            Generation = gen,
            ParentInode = parentIno,
            ParentGeneration = parentGen,
        };
    }
}
