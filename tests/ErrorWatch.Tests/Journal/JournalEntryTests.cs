using ErrorWatch.Publishing.Journal;

namespace ErrorWatch.Tests.Journal;

/// <summary>
/// Field names: journald drops an invalid field silently (platform-interfaces.md §2), so the entry
/// makes every name valid instead of losing the value.
/// </summary>
public class JournalEntryTests
{
    [Theory]
    [InlineData("MESSAGE")]
    [InlineData("ERRORWATCH_EXT4_LAST_ERROR_FUNCTION")]
    [InlineData("A")]
    [InlineData("X1_2")]
    public void ValidNames_AreKept(string name)
    {
        Assert.True(JournalEntry.IsValidName(name));
        Assert.Equal(name, JournalEntry.SanitizeName(name));
    }

    [Theory]
    [InlineData("errorwatch_path", "ERRORWATCH_PATH")]
    [InlineData("ext4-sysfs.last error", "EXT4_SYSFS_LAST_ERROR")]
    [InlineData("_PID", "X_PID")]              // would pose as a trusted field
    [InlineData("__CURSOR", "X__CURSOR")]
    [InlineData("1ST", "X1ST")]                // may not start with a digit
    [InlineData("", "X")]
    [InlineData("CAFÉ", "CAF_")]               // non-ASCII letters are not [A-Z]
    [InlineData("a=b\nc", "A_B_C")]            // '=' and '\n' would break the protocol
    public void InvalidNames_AreSanitisedNotDropped(string name, string expected)
    {
        Assert.False(JournalEntry.IsValidName(name));
        Assert.Equal(expected, JournalEntry.SanitizeName(name));
        var entry = new JournalEntry().Add(name, "v");
        Assert.Equal(expected, Assert.Single(entry.Fields).Name);
    }

    [Fact]
    public void LongNames_AreCutTo64()
    {
        var name = new string('A', 70);
        Assert.False(JournalEntry.IsValidName(name));
        Assert.Equal(new string('A', 64), JournalEntry.SanitizeName(name));
        Assert.Equal(64, JournalEntry.SanitizeName("_" + name).Length);
        Assert.True(JournalEntry.IsValidName(JournalEntry.SanitizeName("9" + name)));
    }

    [Fact]
    public void Values_AreRawBytes_AndOrderAndRepeatsAreKept()
    {
        byte[] binary = [0, (byte)'\n', 0xff, 0xfe, (byte)'=', 0x1b];
        var entry = new JournalEntry()
            .Add("B", binary)
            .Add("A", "1")
            .Add("A", 2L)
            .Add("EMPTY", "")
            .Add("FLAG", true)
            .Add("BIG", ulong.MaxValue);

        Assert.Equal(["B", "A", "A", "EMPTY", "FLAG", "BIG"], entry.Fields.Select(f => f.Name));
        Assert.Equal(binary, entry.Get("B"));
        Assert.Equal(["1", "2"], entry.Fields.Where(f => f.Name == "A").Select(f => f.Text));
        Assert.Equal("", entry.GetText("EMPTY"));
        Assert.Equal("true", entry.GetText("FLAG"));
        Assert.Equal("18446744073709551615", entry.GetText("BIG"));
        Assert.Null(entry.Get("MISSING"));
        Assert.Equal(entry.Fields.Sum(f => f.Name.Length + 1 + f.Value.Length), entry.PayloadLength);
    }

    [Fact]
    public void AddIfPresent_LeavesNullOut()
    {
        var entry = new JournalEntry().AddIfPresent("A", null).AddIfPresent("B", "x");
        Assert.Equal("B", Assert.Single(entry.Fields).Name);
    }
}
