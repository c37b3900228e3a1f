using System.Text;
using ErrorWatch.Modules.Ext4;

namespace ErrorWatch.Tests.Modules.Ext4;

/// <summary>Synthetic superblocks: every field of kernel-abi.md §6.2 at its documented offset.</summary>
public class Ext4SuperblockImageTests
{
    private const string FullFunc = "ext4_xattr_ibody_find_0123456789"; // exactly 32 bytes: no NUL on disk

    private static SuperblockBuilder Everything() => new SuperblockBuilder()
        .U16(0x3A, 0x27)              // valid | errors | orphan recovery | fast-commit replay
        .U16(0x3C, 2)                 // remount-ro
        .U32(0x5C, 0x3C)
        .U32(0x60, 0x2C2)
        .U32(0x64, 0x46B)             // includes metadata_csum (0x400)
        .Raw(0x68, Convert.FromHexString("00112233445566778899AABBCCDDEEFF"))
        .Text(0x78, 16, "data")
        .U32(0x194, 7)
        .U32(0x198, 0x5F5E1000).U8(0x278, 1)
        .U32(0x19C, 12)
        .U64(0x1A0, 0x123456789A)
        .Text(0x1A8, 32, FullFunc)
        .U32(0x1C8, 4321)
        .U8(0x27A, 4)
        .U32(0x1CC, 1_700_000_000)
        .U32(0x1D0, 13)
        .U32(0x1D4, 77)
        .U64(0x1D8, 99)
        .Text(0x1E0, 32, "ext4_lookup")
        .U8(0x27B, 5)
        .Checksum();

    [Fact]
    public void EveryField_IsReadFromItsOffset()
    {
        var bytes = Everything().Bytes;
        var image = new Ext4SuperblockImage(bytes);

        Assert.True(image.IsExt4);
        Assert.Equal((ushort)0xEF53, image.Magic);
        Assert.Equal(Ext4State.Valid | Ext4State.Errors | Ext4State.OrphanRecovery | Ext4State.FastCommitReplay, image.State);
        Assert.Equal((ushort)2, image.RawErrorsBehavior);
        Assert.Equal(Ext4ErrorsBehavior.RemountReadOnly, image.ErrorsBehavior);
        Assert.Equal(0x3Cu, image.FeatureCompat);
        Assert.Equal(0x2C2u, image.FeatureIncompat);
        Assert.Equal(0x46Bu, image.FeatureRoCompat);
        Assert.True(image.HasMetadataCsum);
        Assert.Equal(Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), image.Uuid);
        Assert.Equal("data", image.VolumeName);
        Assert.Equal(7u, image.ErrorCount);

        var first = image.FirstError;
        Assert.NotNull(first);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1L << 32 | 0x5F5E1000), first.Time); // time_hi counts
        Assert.Equal(FullFunc, first.Function); // all 32 bytes, and not the line number after them
        Assert.Equal(4321u, first.Line);
        Assert.Equal(12ul, first.Inode);
        Assert.Equal(0x123456789Aul, first.Block);
        Assert.Equal(Ext4ErrorCodes.EFSBADCRC, first.Code);

        var last = image.LastError;
        Assert.NotNull(last);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), last.Time);
        Assert.Equal("ext4_lookup", last.Function);
        Assert.Equal(77u, last.Line);
        Assert.Equal(13ul, last.Inode);
        Assert.Equal(99ul, last.Block);
        Assert.Equal(Ext4ErrorCodes.EFSCORRUPTED, last.Code);

        Assert.Equal(SuperblockBuilder.BitwiseCrc32C(uint.MaxValue, bytes.AsSpan(0, 0x3FC)), image.StoredChecksum);
        Assert.Equal(image.StoredChecksum, image.ComputedChecksum);
        Assert.True(image.ChecksumValid);
    }

    [Fact]
    public void Snapshot_CopiesEveryValue()
    {
        var bytes = Everything().Bytes;
        var image = new Ext4SuperblockImage(bytes);
        var snapshot = image.ToSnapshot();
        Array.Clear(bytes); // the copy must not look at the buffer again

        Assert.True(snapshot.IsExt4);
        Assert.True(snapshot.HasErrors);
        Assert.Equal(Ext4State.Valid | Ext4State.Errors | Ext4State.OrphanRecovery | Ext4State.FastCommitReplay, snapshot.State);
        Assert.Equal(Ext4ErrorsBehavior.RemountReadOnly, snapshot.ErrorsBehavior);
        Assert.Equal((ushort)2, snapshot.RawErrorsBehavior);
        Assert.Equal(0x3Cu, snapshot.FeatureCompat);
        Assert.Equal(0x2C2u, snapshot.FeatureIncompat);
        Assert.Equal(0x46Bu, snapshot.FeatureRoCompat);
        Assert.True(snapshot.HasMetadataCsum);
        Assert.Equal(Guid.Parse("00112233-4455-6677-8899-aabbccddeeff"), snapshot.Uuid);
        Assert.Equal("data", snapshot.VolumeName);
        Assert.Equal(7u, snapshot.ErrorCount);
        Assert.Equal(FullFunc, snapshot.FirstError!.Function);
        Assert.Equal("ext4_lookup", snapshot.LastError!.Function);
        Assert.True(snapshot.ChecksumValid);
        Assert.Equal(snapshot.StoredChecksum, snapshot.ComputedChecksum);
    }

    [Fact]
    public void ChangedByte_AfterChecksum_IsInvalid()
    {
        var builder = Everything();
        builder.U32(0x194, 8); // error_count changed without recomputing

        var image = new Ext4SuperblockImage(builder.Bytes);

        Assert.True(image.HasMetadataCsum);
        Assert.False(image.ChecksumValid);
        Assert.NotEqual(image.StoredChecksum, image.ComputedChecksum);
        Assert.False(image.ToSnapshot().ChecksumValid);
    }

    [Fact]
    public void WithoutMetadataCsum_ThereIsNothingToCheck()
    {
        var bytes = new SuperblockBuilder().U32(0x64, 0x6B).U32(0x3FC, 0xDEADBEEF).Bytes;

        var image = new Ext4SuperblockImage(bytes);

        Assert.False(image.HasMetadataCsum);
        Assert.True(image.ChecksumValid);
    }

    [Theory]
    [InlineData(0, Ext4ErrorsBehavior.RemountReadOnly)]
    [InlineData(1, Ext4ErrorsBehavior.Continue)]
    [InlineData(2, Ext4ErrorsBehavior.RemountReadOnly)]
    [InlineData(3, Ext4ErrorsBehavior.Panic)]
    [InlineData(4, Ext4ErrorsBehavior.RemountReadOnly)]
    [InlineData(0xFFFF, Ext4ErrorsBehavior.RemountReadOnly)]
    public void ErrorsBehavior_OtherValuesAreRemountReadOnly(int raw, Ext4ErrorsBehavior expected)
    {
        var image = new Ext4SuperblockImage(new SuperblockBuilder().U16(0x3C, (ushort)raw).Bytes);

        Assert.Equal((ushort)raw, image.RawErrorsBehavior);
        Assert.Equal(expected, image.ErrorsBehavior);
    }

    [Fact]
    public void ZeroTime_MeansNoErrorRecorded_EvenWithOtherFieldsSet()
    {
        var bytes = new SuperblockBuilder().U32(0x19C, 12).Text(0x1A8, 32, "ext4_lookup").U8(0x27A, 5).Bytes;

        var image = new Ext4SuperblockImage(bytes);

        Assert.Null(image.FirstError);
        Assert.Null(image.LastError);
    }

    [Fact]
    public void TimeHiAlone_IsARecordedError()
    {
        var image = new Ext4SuperblockImage(new SuperblockBuilder().U8(0x279, 1).Bytes);

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1L << 32), image.LastError!.Time);
    }

    [Fact]
    public void TimePastYear9999_IsClampedInsteadOfThrowing()
    {
        var image = new Ext4SuperblockImage(new SuperblockBuilder().U32(0x198, uint.MaxValue).U8(0x278, 0xFF).Bytes);

        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(253402300799), image.FirstError!.Time);
    }

    [Fact]
    public void VolumeName_OfSixteenBytes_HasNoNul()
    {
        var image = new Ext4SuperblockImage(new SuperblockBuilder().Text(0x78, 16, "0123456789abcdef").U8(0x88, (byte)'X').Bytes);

        Assert.Equal("0123456789abcdef", image.VolumeName);
    }

    [Fact]
    public void InvalidUtf8InStrings_DoesNotThrow()
    {
        var image = new Ext4SuperblockImage(new SuperblockBuilder().U32(0x1CC, 1).Raw(0x1E0, [0xFF, 0xFE, 0xC3]).Raw(0x78, [0x80]).Bytes);

        Assert.Contains('\uFFFD', image.LastError!.Function);
        Assert.Equal("\uFFFD", image.VolumeName);
    }

    [Fact]
    public void WrongMagic_IsNotExt4()
    {
        var image = new Ext4SuperblockImage(new SuperblockBuilder().U16(0x38, 0x5346).Bytes);

        Assert.False(image.IsExt4);
    }

    [Fact]
    public void ShortBuffer_IsRejected()
    {
        Assert.Throws<ArgumentException>(() => { _ = new Ext4SuperblockImage(new byte[1023]); });
    }

    [Fact]
    public void Crc32C_MatchesTheStandardCheckValue_AndTheBitwiseReference()
    {
        var check = Encoding.ASCII.GetBytes("123456789");
        Assert.Equal(0xE3069283u, ErrorWatch.Crc32C.Update(uint.MaxValue, check) ^ uint.MaxValue);

        var random = new Random(7);
        foreach (var length in new[] { 0, 1, 7, 8, 9, 15, 1020 })
        {
            var data = new byte[length];
            random.NextBytes(data);
            Assert.Equal(SuperblockBuilder.BitwiseCrc32C(uint.MaxValue, data), ErrorWatch.Crc32C.Update(uint.MaxValue, data));
        }
    }

    // ---- ReadDevice on regular files ----------------------------------------------------------

    [Fact]
    public void ReadDevice_MissingFile_NamesTheErrno()
    {
        var snapshot = Ext4SuperblockImage.ReadDevice("/nonexistent/errorwatch-device", out var problem);

        Assert.Null(snapshot);
        Assert.Contains("ENOENT", problem);
    }

    [Fact]
    public void ReadDevice_ShortFile_IsAShortRead()
    {
        using var dir = new TempDir();
        var path = dir.Write("short.img", new byte[1500]);

        Assert.Null(Ext4SuperblockImage.ReadDevice(path, out var problem));
        Assert.Contains("short read", problem);
        Assert.Contains("476 of 1024", problem);
    }

    [Fact]
    public void ReadDevice_NotExt4_NamesTheMagic()
    {
        using var dir = new TempDir();
        var path = dir.Write("zero.img", new byte[4096]);

        Assert.Null(Ext4SuperblockImage.ReadDevice(path, out var problem));
        Assert.Contains("magic 0x0000", problem);
    }

    [Fact]
    public void ReadDevice_ValidSuperblock_HasNoProblem()
    {
        using var dir = new TempDir();
        var path = dir.Write("good.img", Image(Everything().Bytes));

        var snapshot = Ext4SuperblockImage.ReadDevice(path, out var problem);

        Assert.Null(problem);
        Assert.NotNull(snapshot);
        Assert.True(snapshot.ChecksumValid);
        Assert.Equal(7u, snapshot.ErrorCount);
    }

    [Fact]
    public void ReadDevice_ChecksumMismatch_StillReturnsTheSnapshot()
    {
        using var dir = new TempDir();
        var path = dir.Write("torn.img", Image(Everything().U32(0x194, 8).Bytes));

        var snapshot = Ext4SuperblockImage.ReadDevice(path, out var problem);

        Assert.NotNull(snapshot);
        Assert.False(snapshot.ChecksumValid);
        Assert.Equal(8u, snapshot.ErrorCount);
        Assert.Contains("checksum mismatch", problem);
    }

    private static byte[] Image(byte[] superblock)
    {
        var image = new byte[4096];
        superblock.CopyTo(image, 1024);
        return image;
    }
}

/// <summary>A temporary directory removed with everything in it.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir() => Path = Directory.CreateTempSubdirectory("errorwatch-health-").FullName;

    public string Path { get; }

    public string Write(string name, byte[] bytes)
    {
        var path = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
