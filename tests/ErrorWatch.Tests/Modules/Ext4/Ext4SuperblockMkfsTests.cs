using System.Diagnostics;
using System.Text;
using ErrorWatch.Modules.Ext4;

namespace ErrorWatch.Tests.Modules.Ext4;

/// <summary>
/// Superblocks written by e2fsprogs (mkfs.ext4 + debugfs set_super_value) into an image file: no mount,
/// no loop device, no root. Missing tools fail the test rather than skip it.
/// </summary>
public class Ext4SuperblockMkfsTests
{
    private const string LastFunc = "ext4_ext_check_inode_0123456789a"; // 32 bytes: more than debugfs's ssv accepts

    [Fact]
    public void FieldsSetByDebugfs_AreReadBack_WithAValidChecksum()
    {
        using var dir = new TempDir();
        var image = Path.Combine(dir.Path, "ext4.img");
        using (var file = File.Create(image))
            file.SetLength(8 << 20);
        Run("mkfs.ext4", "-q", "-F", "-O", "metadata_csum", "-L", "ewvol", "-U", "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9", image);

        // debugfs 1.47 cannot set these through ssv (no errcode fields; a time's high byte is dropped;
        // a function must be shorter than 32), so write them in place; debugfs rewrites the checksum after.
        using (var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
        {
            Poke(file, 1024 + 0x278, [1]);                                      // s_first_error_time_hi
            Poke(file, 1024 + 0x27A, [Ext4ErrorCodes.EFSBADCRC, Ext4ErrorCodes.EIO]); // first/last errcode
            Poke(file, 1024 + 0x1E0, Encoding.ASCII.GetBytes(LastFunc));          // s_last_error_func, no NUL
        }
        var commands = Path.Combine(dir.Path, "commands");
        File.WriteAllLines(commands,
        [
            "ssv error_count 7",
            "ssv first_error_func ext4_lookup",
            "ssv first_error_time @1704164645",
            "ssv first_error_ino 11",
            "ssv first_error_block 123456789012",
            "ssv first_error_line 42",
            "ssv last_error_time @1700000000",
            "ssv last_error_ino 12",
            "ssv last_error_block 77",
            "ssv last_error_line 999",
            "ssv state 3",
            "ssv errors 2",
        ]);
        Run("debugfs", "-w", "-f", commands, image);

        var snapshot = Ext4SuperblockImage.ReadDevice(image, out var problem);

        Assert.Null(problem);
        Assert.NotNull(snapshot);
        Assert.True(snapshot.IsExt4);
        Assert.True(snapshot.HasMetadataCsum);
        Assert.True(snapshot.ChecksumValid, $"stored 0x{snapshot.StoredChecksum:x8}, computed 0x{snapshot.ComputedChecksum:x8}");
        Assert.Equal(Ext4State.Valid | Ext4State.Errors, snapshot.State);
        Assert.True(snapshot.HasErrors);
        Assert.Equal(Ext4ErrorsBehavior.RemountReadOnly, snapshot.ErrorsBehavior);
        Assert.Equal(Guid.Parse("0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"), snapshot.Uuid);
        Assert.Equal("ewvol", snapshot.VolumeName);
        Assert.Equal(7u, snapshot.ErrorCount);

        var first = snapshot.FirstError!;
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1L << 32 | 1704164645), first.Time);
        Assert.Equal("ext4_lookup", first.Function);
        Assert.Equal(11ul, first.Inode);
        Assert.Equal(123456789012ul, first.Block);
        Assert.Equal(42u, first.Line);
        Assert.Equal(Ext4ErrorCodes.EFSBADCRC, first.Code);

        var last = snapshot.LastError!;
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1700000000), last.Time);
        Assert.Equal(LastFunc, last.Function);
        Assert.Equal(12ul, last.Inode);
        Assert.Equal(77ul, last.Block);
        Assert.Equal(999u, last.Line);
        Assert.Equal(Ext4ErrorCodes.EIO, last.Code);

        // dumpe2fs reads the same image independently of this code.
        var dump = Run("dumpe2fs", "-h", image);
        Assert.Contains("FS Error count:           7", dump);
        Assert.Contains("clean with errors", dump);
        Assert.Contains($"Checksum:                 0x{snapshot.StoredChecksum:x8}", dump);
    }

    [Fact]
    public void FreshFilesystem_HasNoErrors_AndContinueByDefault()
    {
        using var dir = new TempDir();
        var image = Path.Combine(dir.Path, "fresh.img");
        using (var file = File.Create(image))
            file.SetLength(8 << 20);
        Run("mkfs.ext4", "-q", "-F", "-O", "metadata_csum", image);

        var snapshot = Ext4SuperblockImage.ReadDevice(image, out var problem);

        Assert.Null(problem);
        Assert.NotNull(snapshot);
        Assert.True(snapshot.ChecksumValid);
        Assert.Equal(Ext4State.Valid, snapshot.State);
        Assert.Equal(0u, snapshot.ErrorCount);
        Assert.Null(snapshot.FirstError);
        Assert.Null(snapshot.LastError);
        Assert.Equal((ushort)1, snapshot.RawErrorsBehavior);
        Assert.Equal(Ext4ErrorsBehavior.Continue, snapshot.ErrorsBehavior);
    }

    [Fact]
    public void TornWrite_IsReportedAsAChecksumMismatch()
    {
        using var dir = new TempDir();
        var image = Path.Combine(dir.Path, "torn.img");
        using (var file = File.Create(image))
            file.SetLength(8 << 20);
        Run("mkfs.ext4", "-q", "-F", "-O", "metadata_csum", image);
        using (var file = new FileStream(image, FileMode.Open, FileAccess.ReadWrite))
            Poke(file, 1024 + 0x194, [3]); // s_error_count changed behind the checksum

        var snapshot = Ext4SuperblockImage.ReadDevice(image, out var problem);

        Assert.NotNull(snapshot);
        Assert.False(snapshot.ChecksumValid);
        Assert.Equal(3u, snapshot.ErrorCount);
        Assert.Contains("checksum mismatch", problem);
    }

    private static void Poke(FileStream file, long offset, byte[] bytes)
    {
        file.Position = offset;
        file.Write(bytes);
    }

    private static string Run(string tool, params string[] args)
    {
        // e2fsprogs live in sbin, which a test runner's PATH may lack.
        var resolved = new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists) ?? tool;
        var start = new ProcessStartInfo(resolved) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
            start.ArgumentList.Add(arg);
        start.Environment["TZ"] = "UTC";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{tool} {string.Join(' ', args)} exited {process.ExitCode}: {stderr}");
        return stdout.Result;
    }
}
