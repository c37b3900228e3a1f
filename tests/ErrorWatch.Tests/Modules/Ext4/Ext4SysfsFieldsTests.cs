using ErrorWatch.Decoding;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Tests.EndToEnd;

namespace ErrorWatch.Tests.Modules.Ext4;

/// <summary>
/// The ext4 error fields read through kept-open sysfs files: the same values as a fresh read after each
/// error, the first-error group kept, and a remount on the same loop device (a new superblock behind the
/// same /sys/fs/ext4 path, the kept files stale) read correctly rather than failing.
/// </summary>
[Collection(ScratchCollection.Name)]
public class Ext4SysfsFieldsTests
{
    [LoopFact]
    public void KeptOpenFields_FollowEveryError_AndSurviveARemountOnTheSameDevice()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("fields");
        var dir = $"/sys/fs/ext4/{fs.KernelName}";
        using var fields = new Ext4SysfsFields(dir);

        var before = fields.Read();
        Assert.Equal(0UL, before.ErrorsCount);
        Assert.Null(before.First);
        Assert.Null(before.Last);

        fs.TriggerFsError("first one");
        var first = WaitForCount(fields, 1);
        Assert.NotNull(first.First);
        Assert.NotNull(first.Last);
        Assert.Equal(Fresh(dir), first);

        fs.TriggerFsError("second one");
        var second = WaitForCount(fields, 2);
        Assert.Equal(Fresh(dir), second);
        Assert.Equal(first.First, second.First);

        // Same loop device, new superblock object: sysfs removed and recreated the directory, so every
        // kept file reads ENODEV once and is reopened.
        fs.Unmount();
        fs.Mount("errors=continue");
        var remounted = fields.Read();
        Assert.Equal(Fresh(dir), remounted);
        Assert.Equal(2UL, remounted.ErrorsCount); // ext4 keeps s_error_count on disk
    }

    [Fact]
    public void MissingDirectory_IsNamedInTheError()
    {
        using var fields = new Ext4SysfsFields("/sys/fs/ext4/no-such-device");
        var e = Assert.Throws<FileNotFoundException>(() => fields.Read());
        Assert.Contains("/sys/fs/ext4/no-such-device/errors_count", e.Message);
        Assert.Contains("ENOENT", e.Message);
    }

    [Fact]
    public void NonNumericText_IsAFormatErrorNamingTheFile()
    {
        var dir = Directory.CreateTempSubdirectory("errorwatch-fields-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "errors_count"), "lots\n");
            using var fields = new Ext4SysfsFields(dir);
            var e = Assert.Throws<FormatException>(() => fields.Read());
            Assert.Contains(Path.Combine(dir, "errors_count"), e.Message);
            Assert.Contains("'lots'", e.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>ext4 updates the counter from a work item after the error; wait for it to settle.</summary>
    private static Ext4ErrorRecord WaitForCount(Ext4SysfsFields fields, ulong count)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var record = fields.Read();
            if (record.ErrorsCount >= count || DateTime.UtcNow > deadline)
                return record;
            Thread.Sleep(20);
        }
    }

    private static Ext4ErrorRecord Fresh(string dir) => Ext4Decoder.ReadErrorRecord(dir);
}
