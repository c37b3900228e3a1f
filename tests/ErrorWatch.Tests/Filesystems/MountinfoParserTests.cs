using System.Text;
using ErrorWatch.Filesystems;

namespace ErrorWatch.Tests.Filesystems;

/// <summary>
/// /proc/self/mountinfo per Documentation/filesystems/proc.rst §3.5:
/// "id parent maj:min root mountpoint options [optional fields...] - fstype source superoptions".
/// The kernel octal-escapes space, tab, newline and backslash in paths; other bytes appear raw.
/// </summary>
public class MountinfoParserTests
{
    /// <summary>Latin-1 maps each char to one byte, so "\xff" in a test string is the raw byte 0xff.</summary>
    private static byte[] Bytes(string text) => Encoding.Latin1.GetBytes(text);

    private static MountEntry ParseOne(string line)
    {
        Assert.True(MountinfoParser.TryParseLine(Bytes(line), out var entry), $"rejected: {line}");
        return entry;
    }

    [Fact]
    public void ProcRstExampleLine_DecodesEveryField()
    {
        var entry = ParseOne("36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue");

        Assert.Equal(36ul, entry.Id);
        Assert.Equal(35ul, entry.ParentId);
        Assert.Equal(new DeviceNumber(98, 0), entry.Device);
        Assert.Equal("/mnt1", entry.Root.Text);
        Assert.Equal("/mnt/parent", entry.MountPoint.Text);
        Assert.Equal("rw,noatime", entry.Options);
        Assert.Equal("ext3", entry.FsType);
        Assert.Equal("/dev/root", entry.Source);
        Assert.Equal("rw,errors=continue", entry.SuperOptions);
        Assert.False(entry.ReadOnly);
        Assert.False(entry.SuperblockReadOnly);
        Assert.False(entry.UniqueId); // mountinfo ids are the reusable ones
        Assert.Equal(0ul, entry.Magic);
        Assert.False(entry.IsFilesystemRoot);
    }

    [Fact]
    public void NoOptionalFields()
    {
        var entry = ParseOne("22 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw,errors=remount-ro");

        Assert.Equal(22ul, entry.Id);
        Assert.Equal(1ul, entry.ParentId);
        Assert.Equal(new DeviceNumber(8, 1), entry.Device);
        Assert.True(entry.IsFilesystemRoot);
        Assert.Equal("/", entry.MountPoint.Text);
        Assert.Equal("ext4", entry.FsType);
        Assert.Equal("/dev/sda1", entry.Source);
        Assert.Equal("rw,errors=remount-ro", entry.SuperOptions);
        Assert.False(entry.SuperblockReadOnly); // "remount-ro" is not the "ro" option
    }

    [Fact]
    public void SeveralOptionalFields()
    {
        var entry = ParseOne("100 29 0:50 / /mnt/tmp rw,nosuid shared:5 master:3 propagate_from:2 unbindable - tmpfs tmpfs rw,size=1024k");

        Assert.Equal(100ul, entry.Id);
        Assert.Equal(29ul, entry.ParentId);
        Assert.Equal(new DeviceNumber(0, 50), entry.Device);
        Assert.Equal("/mnt/tmp", entry.MountPoint.Text);
        Assert.Equal("rw,nosuid", entry.Options);
        Assert.Equal("tmpfs", entry.FsType);
        Assert.Equal("tmpfs", entry.Source);
        Assert.Equal("rw,size=1024k", entry.SuperOptions);
    }

    [Fact]
    public void LargeDeviceNumbersAndFuseSubtype()
    {
        var entry = ParseOne("512 30 259:1048575 / /home/u/remote rw,nosuid,nodev shared:300 - fuse.sshfs user@host:/srv rw,user_id=1000");

        Assert.Equal(new DeviceNumber(259, 1048575), entry.Device);
        Assert.Equal("fuse.sshfs", entry.FsType);
        Assert.Equal("user@host:/srv", entry.Source);
    }

    [Fact]
    public void OctalEscapesInMountPointAndRoot_AreDecoded()
    {
        var entry = ParseOne(@"61 22 7:3 /dir\040one\011two /mnt/a\040b\011c\012d\134e rw - ext4 /dev/loop3 rw");

        Assert.Equal("/dir one\ttwo", entry.Root.Text);
        Assert.Equal("/mnt/a b\tc\nd\\e", entry.MountPoint.Text);
        Assert.Equal(Bytes("/mnt/a b\tc\nd\\e"), entry.MountPoint.Bytes.ToArray());
        Assert.Equal(@"/mnt/a b\tc\nd\\e", entry.MountPoint.Escaped); // printable again, one line
    }

    [Fact]
    public void EscapedSeparatorInsideAPath_IsNotTheSeparator()
    {
        var entry = ParseOne(@"62 22 7:4 / /mnt/\040-\040x rw shared:1 - ext4 /dev/loop4 ro");

        Assert.Equal("/mnt/ - x", entry.MountPoint.Text);
        Assert.Equal("ext4", entry.FsType);
        Assert.True(entry.SuperblockReadOnly);
    }

    [Fact]
    public void LiteralBackslashDigitsName_RoundTrips()
    {
        // A directory really named "\040": the kernel escapes its backslash as \134.
        var entry = ParseOne(@"63 22 7:5 / /mnt/\134040 rw - ext4 /dev/loop5 rw");

        Assert.Equal(@"/mnt/\040", entry.MountPoint.Text);
    }

    [Theory]
    [InlineData("/mnt/bad\xffname")]    // raw byte: the kernel does not escape it
    [InlineData(@"/mnt/bad\377name")]   // octal escape of the same byte
    public void InvalidUtf8InMountPoint_IsKeptAsBytes(string mountPointField)
    {
        var entry = ParseOne($"64 22 7:6 / {mountPointField} rw - ext4 /dev/loop6 rw");

        Assert.Equal(Bytes("/mnt/bad\xffname"), entry.MountPoint.Bytes.ToArray());
        Assert.False(entry.MountPoint.IsValidUtf8);
        Assert.Null(entry.MountPoint.Text);
        Assert.Equal(@"/mnt/bad\xffname", entry.MountPoint.Escaped);
    }

    [Fact]
    public void BindMountOfSubdirectory_HasItsRoot()
    {
        var entry = ParseOne("70 22 8:1 /sub/dir /srv/bind rw,relatime shared:1 - ext4 /dev/sda1 rw");

        Assert.Equal("/sub/dir", entry.Root.Text);
        Assert.False(entry.IsFilesystemRoot);
        Assert.Equal("/srv/bind", entry.MountPoint.Text);
    }

    [Theory]
    [InlineData("rw,relatime", "rw,errors=continue", false, false)]
    [InlineData("ro,relatime", "rw,errors=continue", true, false)]
    [InlineData("rw,relatime", "ro,errors=continue", false, true)]
    [InlineData("ro", "ro", true, true)]
    [InlineData("rw,noatime", "rw,errors=remount-ro", false, false)]
    [InlineData("rw,ro_compat", "rw,rootcontext=x", false, false)] // "ro" only as a whole option
    public void ReadOnlyFlags_ComeFromMountAndSuperblockOptions(string options, string superOptions, bool readOnly, bool superblockReadOnly)
    {
        var entry = ParseOne($"80 22 8:1 / /data {options} - ext4 /dev/sda1 {superOptions}");

        Assert.Equal(readOnly, entry.ReadOnly);
        Assert.Equal(superblockReadOnly, entry.SuperblockReadOnly);
    }

    [Theory]
    [InlineData("37 36 8:2 / /boot rw,relatime shared:2 ext4 /dev/sda2 rw")]   // no "-"
    [InlineData("x37 36 8:2 / /boot rw,relatime - ext4 /dev/sda2 rw")]         // non-numeric id
    [InlineData("37 y 8:2 / /boot rw,relatime - ext4 /dev/sda2 rw")]           // non-numeric parent
    [InlineData("37 36 8-2 / /boot rw,relatime - ext4 /dev/sda2 rw")]          // bad maj:min
    [InlineData("37 36 8: / /boot rw,relatime - ext4 /dev/sda2 rw")]
    [InlineData("37 36 :2 / /boot rw,relatime - ext4 /dev/sda2 rw")]
    [InlineData("37 36 8:2 / /boot rw,relatime - ext4")]                       // fields after "-" missing
    [InlineData("37 36 8:2 / /boot")]
    [InlineData("")]
    public void MalformedLine_IsRejected(string line)
    {
        Assert.False(MountinfoParser.TryParseLine(Bytes(line), out _));
    }

    [Fact]
    public void Parse_ReportsBadLinesByNumberAndKeepsTheGoodOnes()
    {
        var text = string.Join("\n",
            "21 1 8:1 / / rw - ext4 /dev/sda1 rw",                                    // 1
            "37 36 8:2 / /boot rw,relatime shared:2 ext4 /dev/sda2 rw",                // 2: no separator
            "",                                                                        // 3: empty, skipped
            "x38 21 8:3 / /home rw - ext4 /dev/sda3 rw",                               // 4: bad id
            "39 21 8-4 / /srv rw - ext4 /dev/sda4 rw",                                 // 5: bad maj:min
            "40 21 8:5 / /var rw - xfs /dev/sda5 rw",                                  // 6
            "41 21 8:6 / /opt rw - ext4",                                              // 7: truncated
            "42 21 8:7 /sub /opt rw - ext4 /dev/sda7 ro");                             // 8, no final newline
        var bad = new List<string>();

        var entries = MountinfoParser.Parse(Bytes(text), bad.Add);

        Assert.Equal(new ulong[] { 21, 40, 42 }, entries.Select(e => e.Id));
        Assert.Equal("xfs", entries[1].FsType);
        Assert.True(entries[2].SuperblockReadOnly);
        Assert.Equal(4, bad.Count);
        Assert.Contains("line 2 ", bad[0]);
        Assert.Contains("line 4 ", bad[1]);
        Assert.Contains("line 5 ", bad[2]);
        Assert.Contains("line 7 ", bad[3]);
        Assert.Contains("8-4", bad[2]); // the offending text is quoted
    }

    [Fact]
    public void Parse_EscapesHostileBytesInBadLineMessages()
    {
        var bad = new List<string>();

        var entries = MountinfoParser.Parse(Bytes("21 1 8:1 / / rw - ext4 /dev/sda1 rw\nevil\x1b[2J\xff line\n"), bad.Add);

        Assert.Single(entries);
        var message = Assert.Single(bad);
        Assert.Contains("line 2 ", message);
        Assert.DoesNotContain('\x1b', message);
        Assert.Contains(@"evil\x1b[2J\xff line", message);
    }

    [Fact]
    public void Parse_EmptyInputAndBlankLines_ReturnNothingAndReportNothing()
    {
        var bad = new List<string>();

        Assert.Empty(MountinfoParser.Parse([], bad.Add));
        Assert.Empty(MountinfoParser.Parse(Bytes("\n\n\n"), bad.Add));
        Assert.Empty(bad);
    }

    [Fact]
    public void Parse_WithoutCallback_SkipsBadLines()
    {
        var entries = MountinfoParser.Parse(Bytes("garbage\n21 1 8:1 / / rw - ext4 /dev/sda1 rw\n"));

        Assert.Equal(21ul, Assert.Single(entries).Id);
    }

    [Theory]
    [InlineData(@"\040", " ")]
    [InlineData(@"\011", "\t")]
    [InlineData(@"\012", "\n")]
    [InlineData(@"\134", @"\")]
    [InlineData(@"\377", "\xff")]
    [InlineData(@"\134\134", @"\\")]
    [InlineData(@"a\0401", "a 1")]       // only three digits are consumed
    [InlineData(@"end\13", @"end\13")]   // incomplete escape kept literally
    [InlineData(@"end\", @"end\")]
    [InlineData(@"\089", @"\089")]       // 8 is not octal
    [InlineData(@"\a40", @"\a40")]
    [InlineData("plain", "plain")]
    [InlineData("", "")]
    public void Unescape_DecodesOnlyBackslashAndThreeOctalDigits(string field, string expected)
    {
        Assert.Equal(Bytes(expected), MountinfoParser.Unescape(Bytes(field)));
    }
}
