using System.Text;
using ErrorWatch.Health.KernelLog;

namespace ErrorWatch.Tests.Health;

/// <summary>The /dev/kmsg record format (Documentation/ABI/testing/dev-kmsg), including hostile input.</summary>
public class KmsgRecordTests
{
    [Fact]
    public void KernelRecord_FieldsAreParsed()
    {
        var bytes = "3,1468,2073397717,-;XFS (loop0): Ending clean mount\n"u8;

        Assert.True(KmsgRecord.TryParse(bytes, out var record, out var problem));

        Assert.Null(problem);
        Assert.Equal(3, record.Priority);
        Assert.Equal(0, record.Facility);
        Assert.Equal(3, record.Level);
        Assert.True(record.IsFromKernel);
        Assert.Equal(1468ul, record.Sequence);
        Assert.Equal(2073397717ul, record.TimestampMicroseconds);
        Assert.Equal("-", Encoding.ASCII.GetString(record.Flags));
        Assert.True(record.ExtraFields.IsEmpty);
        Assert.Equal("XFS (loop0): Ending clean mount", record.MessageText);
        Assert.True(record.Properties.IsEmpty);
    }

    [Theory]
    [InlineData(12, 1, 4)]    // "<4>..." written to /dev/kmsg
    [InlineData(8, 1, 0)]     // "<0>..." written to /dev/kmsg
    [InlineData(30, 3, 6)]    // daemon.info
    [InlineData(2047, 255, 7)]
    [InlineData(0, 0, 0)]
    public void Priority_SplitsIntoFacilityAndLevel(int priority, int facility, int level)
    {
        Assert.True(KmsgRecord.TryParse(Encoding.ASCII.GetBytes($"{priority},1,2,-;m\n"), out var record, out _));

        Assert.Equal(facility, record.Facility);
        Assert.Equal(level, record.Level);
        Assert.Equal(facility == 0, record.IsFromKernel);
    }

    [Fact]
    public void CallerField_IsKeptAsAnExtraField()
    {
        Assert.True(KmsgRecord.TryParse("4,5,6,c,caller=T123;msg\n"u8, out var record, out _));

        Assert.Equal("c", Encoding.ASCII.GetString(record.Flags));
        Assert.Equal("caller=T123", Encoding.ASCII.GetString(record.ExtraFields));
        Assert.Equal("msg", record.MessageText);
    }

    [Fact]
    public void ContinuationLines_AreProperties_NotMessage()
    {
        var bytes = "3,10,20,-;sd 0:0:0:0: [sda] tag#0 FAILED\n SUBSYSTEM=scsi\n DEVICE=+scsi:0:0:0:0\n"u8;

        Assert.True(KmsgRecord.TryParse(bytes, out var record, out _));

        Assert.Equal("sd 0:0:0:0: [sda] tag#0 FAILED", record.MessageText);
        Assert.True(record.TryGetProperty("SUBSYSTEM"u8, out var subsystem));
        Assert.Equal("scsi", Encoding.ASCII.GetString(subsystem));
        Assert.True(record.TryGetProperty("DEVICE"u8, out var device));
        Assert.Equal("+scsi:0:0:0:0", Encoding.ASCII.GetString(device));
        Assert.False(record.TryGetProperty("DEV"u8, out _));
        Assert.False(record.TryGetProperty("MISSING"u8, out _));
    }

    [Fact]
    public void Escapes_AreKeptEscaped()
    {
        // As read on this machine after writing "ewtest multi\nline" and "...é \ back<TAB>tab".
        Assert.True(KmsgRecord.TryParse("12,1474,2073399147,-;ewtest multi\\x0aline\n"u8, out var a, out _));
        Assert.True(KmsgRecord.TryParse("12,1475,2073399151,-;ewtest high \\xc3\\xa9 \\x5c back\\x09tab\n"u8, out var b, out _));

        Assert.Equal("ewtest multi\\x0aline", a.MessageText);
        Assert.Equal("ewtest high \\xc3\\xa9 \\x5c back\\x09tab", b.MessageText);
    }

    [Fact]
    public void SemicolonInMessage_BelongsToTheMessage()
    {
        Assert.True(KmsgRecord.TryParse("6,1,2,-;a;b;c\n"u8, out var record, out _));

        Assert.Equal("a;b;c", record.MessageText);
    }

    [Fact]
    public void MissingFinalNewline_IsAccepted()
    {
        Assert.True(KmsgRecord.TryParse("6,1,2,-;no newline"u8, out var record, out _));

        Assert.Equal("no newline", record.MessageText);
    }

    [Theory]
    [InlineData("", "no ';'")]
    [InlineData("no header at all\n", "no ';'")]
    [InlineData(";", "fewer than four")]
    [InlineData("6,1,2;msg\n", "fewer than four")]
    [InlineData("6;msg\n", "fewer than four")]
    [InlineData("x,1,2,-;msg\n", "PRI")]
    [InlineData("+6,1,2,-;msg\n", "PRI")]
    [InlineData(" 6,1,2,-;msg\n", "PRI")]
    [InlineData(",1,2,-;msg\n", "PRI")]
    [InlineData("2048,1,2,-;msg\n", "PRI")]
    [InlineData("99999999999999999999999,1,2,-;msg\n", "PRI")]
    [InlineData("6,-1,2,-;msg\n", "SEQ")]
    [InlineData("6,18446744073709551616,2,-;msg\n", "SEQ")]
    [InlineData("6,1,0x10,-;msg\n", "TS_USEC")]
    [InlineData("6,1,2,;msg\n", "FLAGS")]
    [InlineData("6,1\n,2,-;msg\n", "newline")]
    public void MalformedHeaders_AreRejectedWithAReason(string text, string reason)
    {
        Assert.False(KmsgRecord.TryParse(Encoding.ASCII.GetBytes(text), out _, out var problem));

        Assert.Contains(reason, problem);
    }

    [Fact]
    public void InvalidUtf8_IsReplaced_NotThrown()
    {
        byte[] bytes = [.. "6,1,2,-;XFS (loop0): "u8, 0xFF, 0xFE, 0xC3, (byte)'\n'];

        Assert.True(KmsgRecord.TryParse(bytes, out var record, out _));

        Assert.Equal("XFS (loop0): \uFFFD\uFFFD\uFFFD", record.MessageText);
        Assert.False(KernelLogLines.Default.TryMatch(record, out _));
    }

    [Fact]
    public void HugeRecords_ParseOrFail_WithoutThrowing()
    {
        var huge = new byte[1 << 20];
        huge.AsSpan().Fill((byte)'A');
        Assert.False(KmsgRecord.TryParse(huge, out _, out var problem));
        Assert.Contains("no ';'", problem);

        var header = "0,1,2,-;XFS (loop0): Metadata corruption detected at f+0x1/0x2, xfs_agf block 0x1 "u8;
        header.CopyTo(huge);
        Assert.True(KmsgRecord.TryParse(huge, out var record, out _));
        Assert.Equal(huge.Length - 8, record.Message.Length);
        Assert.False(KernelLogLines.Default.TryMatch(record, out _)); // longer than any kernel record
    }

    [Fact]
    public void RandomBytes_NeverThrow()
    {
        var random = new Random(20251121);
        var buffer = new byte[300];
        byte[] alphabet = [.. "0123456789,;-\n =XFS()EXT4-fs error device:#x"u8, 0x00, 0xFF, 0xC3];
        for (var i = 0; i < 20000; i++)
        {
            var length = random.Next(buffer.Length);
            for (var j = 0; j < length; j++)
                buffer[j] = i % 2 == 0 ? (byte)random.Next(256) : alphabet[random.Next(alphabet.Length)];
            if (KmsgRecord.TryParse(buffer.AsSpan(0, length), out var record, out _))
            {
                _ = record.MessageText;
                _ = record.TryGetProperty("DEVICE"u8, out _);
                _ = KernelLogLines.Default.TryMatch(record, out _);
            }
        }
    }
}
