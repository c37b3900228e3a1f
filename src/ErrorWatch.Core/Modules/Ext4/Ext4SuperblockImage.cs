using System.Buffers.Binary;
using System.Numerics;
using System.Text;
using ErrorWatch.Decoding;
using ErrorWatch.Interop;

namespace ErrorWatch.Modules.Ext4;

/// <summary>s_state bits (fs/ext4/ext4.h EXT4_VALID_FS, EXT4_ERROR_FS, EXT4_ORPHAN_FS, EXT4_FC_REPLAY).</summary>
[Flags]
public enum Ext4State : ushort
{
    None = 0,
    Valid = 0x1,
    Errors = 0x2,
    OrphanRecovery = 0x4,
    FastCommitReplay = 0x20,
}

/// <summary>What ext4 does on an error when no errors= mount option overrides s_errors (kernel-abi.md §6.4).</summary>
public enum Ext4ErrorsBehavior : byte
{
    Continue = 1,
    RemountReadOnly = 2,
    Panic = 3,
}

/// <summary>
/// The 1024-byte ext4 superblock (device offset 1024), read in place without copying, in the style of
/// <see cref="Kernel.FanotifyEventReader"/>. Offsets are kernel-abi.md §6.2 (struct ext4_super_block);
/// every field is little-endian on disk whatever the host.
/// </summary>
public readonly ref struct Ext4SuperblockImage
{
    public const int Size = 1024;
    public const long DeviceOffset = 1024;
    public const ushort Ext4Magic = 0xEF53;

    /// <summary>EXT4_FEATURE_RO_COMPAT_METADATA_CSUM: s_checksum is a crc32c of the superblock.</summary>
    public const uint RoCompatMetadataCsum = 0x400;

    private const int MagicOffset = 0x38;
    private const int StateOffset = 0x3A;
    private const int ErrorsOffset = 0x3C;
    private const int FeatureCompatOffset = 0x5C;
    private const int FeatureIncompatOffset = 0x60;
    private const int FeatureRoCompatOffset = 0x64;
    private const int UuidOffset = 0x68;
    private const int VolumeNameOffset = 0x78;
    private const int VolumeNameLength = 16;
    private const int ErrorCountOffset = 0x194;
    private const int FirstErrorTimeOffset = 0x198;
    private const int FirstErrorInoOffset = 0x19C;
    private const int FirstErrorBlockOffset = 0x1A0;
    private const int FirstErrorFuncOffset = 0x1A8;
    private const int FirstErrorLineOffset = 0x1C8;
    private const int LastErrorTimeOffset = 0x1CC;
    private const int LastErrorInoOffset = 0x1D0;
    private const int LastErrorLineOffset = 0x1D4;
    private const int LastErrorBlockOffset = 0x1D8;
    private const int LastErrorFuncOffset = 0x1E0;
    private const int ErrorFuncLength = 32;
    private const int FirstErrorTimeHiOffset = 0x278;
    private const int LastErrorTimeHiOffset = 0x279;
    private const int FirstErrorCodeOffset = 0x27A;
    private const int LastErrorCodeOffset = 0x27B;
    private const int ChecksumOffset = 0x3FC;

    // DateTimeOffset ends at 9999-12-31T23:59:59Z; a 40-bit on-disk time can go past it.
    private const long MaxUnixSeconds = 253402300799;

    private readonly ReadOnlySpan<byte> _bytes;

    /// <param name="superblock">At least <see cref="Size"/> bytes starting at the superblock (device byte 1024).</param>
    public Ext4SuperblockImage(ReadOnlySpan<byte> superblock)
    {
        if (superblock.Length < Size)
            throw new ArgumentException($"an ext4 superblock is {Size} bytes, got {superblock.Length}", nameof(superblock));
        _bytes = superblock.Slice(0, Size);
    }

    public ReadOnlySpan<byte> Bytes => _bytes;

    public ushort Magic => U16(MagicOffset);

    /// <summary>s_magic is 0xEF53 (shared by ext2, ext3 and ext4).</summary>
    public bool IsExt4 => Magic == Ext4Magic;

    public Ext4State State => (Ext4State)U16(StateOffset);

    /// <summary>s_errors as stored; see <see cref="ErrorsBehavior"/> for how the kernel reads it.</summary>
    public ushort RawErrorsBehavior => U16(ErrorsOffset);

    /// <summary>1 continue, 3 panic, anything else remount-ro, as fs/ext4/super.c does when no errors= option is given.</summary>
    public Ext4ErrorsBehavior ErrorsBehavior => RawErrorsBehavior switch
    {
        1 => Ext4ErrorsBehavior.Continue,
        3 => Ext4ErrorsBehavior.Panic,
        _ => Ext4ErrorsBehavior.RemountReadOnly,
    };

    public uint FeatureCompat => U32(FeatureCompatOffset);
    public uint FeatureIncompat => U32(FeatureIncompatOffset);
    public uint FeatureRoCompat => U32(FeatureRoCompatOffset);
    public bool HasMetadataCsum => (FeatureRoCompat & RoCompatMetadataCsum) != 0;

    /// <summary>s_uuid: 16 bytes in RFC 4122 (big-endian) order, so the text matches blkid and dumpe2fs.</summary>
    public Guid Uuid => new(_bytes.Slice(UuidOffset, 16), bigEndian: true);

    /// <summary>s_volume_name: up to 16 bytes, NUL-terminated only when shorter.</summary>
    public string VolumeName => BoundedString(_bytes.Slice(VolumeNameOffset, VolumeNameLength));

    public uint ErrorCount => U32(ErrorCountOffset);

    public Ext4ErrorSite? FirstError => Site(FirstErrorTimeOffset, FirstErrorTimeHiOffset, FirstErrorFuncOffset,
        FirstErrorLineOffset, FirstErrorInoOffset, FirstErrorBlockOffset, FirstErrorCodeOffset);

    public Ext4ErrorSite? LastError => Site(LastErrorTimeOffset, LastErrorTimeHiOffset, LastErrorFuncOffset,
        LastErrorLineOffset, LastErrorInoOffset, LastErrorBlockOffset, LastErrorCodeOffset);

    public uint StoredChecksum => U32(ChecksumOffset);

    /// <summary>
    /// crc32c seeded with ~0 over bytes 0..0x3FB with no final inversion: ext4_superblock_csum() uses the
    /// kernel's raw crc32c(), not the finalised CRC-32C of RFC 3720.
    /// </summary>
    public uint ComputedChecksum => ErrorWatch.Crc32C.Update(uint.MaxValue, _bytes.Slice(0, ChecksumOffset));

    /// <summary>True when s_checksum matches, or when the filesystem has no metadata_csum and so no checksum to check.</summary>
    public bool ChecksumValid => !HasMetadataCsum || StoredChecksum == ComputedChecksum;

    public Ext4SuperblockSnapshot ToSnapshot() => new(this);

    /// <summary>
    /// preads the superblock of <paramref name="devicePath"/> (a block device or an image file). Returns null
    /// with <paramref name="problem"/> set when it cannot be read or is not ext2/3/4. A checksum mismatch
    /// still returns the snapshot (ChecksumValid false) with a problem: a mounted filesystem rewrites its
    /// superblock in the block device's page cache, so a read can catch it half-updated.
    /// </summary>
    public static unsafe Ext4SuperblockSnapshot? ReadDevice(string devicePath, out string? problem)
    {
        var fd = Libc.Open(devicePath, Libc.O_RDONLY | Libc.O_CLOEXEC);
        if (fd < 0)
        {
            problem = $"cannot open {devicePath}: {DescribeErrno(Libc.LastErrno)}";
            return null;
        }
        using var owned = new FileDescriptor(fd);

        Span<byte> buffer = stackalloc byte[Size];
        var got = 0;
        fixed (byte* start = buffer)
        {
            while (got < Size)
            {
                var n = Libc.PRead(fd, start + got, Size - got, DeviceOffset + got);
                if (n < 0)
                {
                    var errno = Libc.LastErrno;
                    if (errno == Libc.EINTR)
                        continue;
                    problem = $"cannot read the superblock of {devicePath}: {DescribeErrno(errno)}";
                    return null;
                }
                if (n == 0)
                    break;
                got += (int)n;
            }
        }
        if (got < Size)
        {
            problem = $"short read of {devicePath}: {got} of {Size} superblock bytes at offset {DeviceOffset}";
            return null;
        }

        var image = new Ext4SuperblockImage(buffer);
        if (!image.IsExt4)
        {
            problem = $"{devicePath} holds no ext2/3/4 superblock: magic 0x{image.Magic:x4} at byte {DeviceOffset + MagicOffset}, expected 0x{Ext4Magic:x4}";
            return null;
        }
        var snapshot = image.ToSnapshot();
        problem = snapshot.ChecksumValid
            ? null
            : $"superblock checksum mismatch on {devicePath}: stored 0x{snapshot.StoredChecksum:x8}, computed 0x{snapshot.ComputedChecksum:x8} " +
              "(a mounted filesystem may have been rewriting it; read again before trusting the fields)";
        return snapshot;
    }

    private Ext4ErrorSite? Site(int timeOffset, int timeHiOffset, int funcOffset, int lineOffset, int inoOffset, int blockOffset, int codeOffset)
    {
        var seconds = (long)_bytes[timeHiOffset] << 32 | U32(timeOffset);
        if (seconds == 0)
            return null; // the kernel's "no error recorded"
        return new Ext4ErrorSite(
            DateTimeOffset.FromUnixTimeSeconds(Math.Min(seconds, MaxUnixSeconds)),
            BoundedString(_bytes.Slice(funcOffset, ErrorFuncLength)),
            U32(lineOffset),
            U32(inoOffset),
            BinaryPrimitives.ReadUInt64LittleEndian(_bytes.Slice(blockOffset)),
            _bytes[codeOffset]);
    }

    private ushort U16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(_bytes.Slice(offset));
    private uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(_bytes.Slice(offset));

    /// <summary>A fixed-size char array: up to the first NUL, or all of it when full (strncpy leaves no NUL).</summary>
    private static string BoundedString(ReadOnlySpan<byte> field)
    {
        var nul = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? field : field.Slice(0, nul));
    }

    private static string DescribeErrno(int errno)
    {
        ErrnoTable.TryGet(errno, out var name, out var text);
        return $"{name} ({text})";
    }
}
