using System.Text;
using ErrorWatch.Publishing.DBus;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// The gate every id from a bus caller passes before the store, polkit or the log see it
/// (GetReport, Acknowledge): exactly 8-4-4-4-12 hex digits, nothing that merely parses as a UUID.
/// </summary>
public sealed class ReportIdsTests
{
    [Theory]
    [InlineData("01936a3e-7b2c-7000-8000-000000000001", "01936a3e-7b2c-7000-8000-000000000001")]
    [InlineData("01936A3E-7B2C-7000-8000-00000000ABCD", "01936a3e-7b2c-7000-8000-00000000abcd")]
    [InlineData("00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000")]
    public void The_reports_own_form_is_accepted_in_the_stores_spelling(string text, string expected)
    {
        Assert.True(ReportIds.TryParse(Encoding.UTF8.GetBytes(text), out var id));
        Assert.Equal(expected, id);
        // What the daemon writes into reports round-trips unchanged.
        var fresh = Guid.CreateVersion7().ToString();
        Assert.True(ReportIds.TryParse(Encoding.UTF8.GetBytes(fresh), out var same));
        Assert.Equal(fresh, same);
    }

    [Theory]
    [InlineData("../../etc/shadow")]
    [InlineData("/etc/shadow")]
    [InlineData("01936a3e-7b2c-7000-8000-000000000001/../../etc/shadow")]
    [InlineData("../../../../var/lib/errorwatch/reports/0000000001.log")]
    [InlineData("{01936a3e-7b2c-7000-8000-000000000001}")]
    [InlineData("(01936a3e-7b2c-7000-8000-000000000001)")]
    [InlineData("{0x01936a3e,0x7b2c,0x7000,{0x80,0x00,0x00,0x00,0x00,0x00,0x00,0x01}}")]
    [InlineData("01936a3e7b2c70008000000000000001")]
    [InlineData(" 01936a3e-7b2c-7000-8000-000000000001")]
    [InlineData("01936a3e-7b2c-7000-8000-000000000001\n")]
    [InlineData("01936a3e-7b2c-7000-8000-00000000000g")]
    [InlineData("01936a3e+7b2c-7000-8000-000000000001")]
    [InlineData("01936a3e-7b2c-7000-8000000000000001-")]
    [InlineData("01936a3e-7b2c-7000-8000-00000000001")]
    [InlineData("01936a3e-7b2c-7000-8000-0000000000011")]
    [InlineData("０1936a3e-7b2c-7000-8000-000000000001")]
    [InlineData("")]
    public void Anything_else_is_refused(string text)
    {
        // Guid.TryParse takes several of these; the gate must not.
        Assert.False(ReportIds.TryParse(Encoding.UTF8.GetBytes(text), out var id));
        Assert.Null(id);
    }

    [Fact]
    public void Refusals_are_judged_by_length_first_and_never_echo_a_long_or_unprintable_argument()
    {
        var huge = new byte[16 << 20];
        huge.AsSpan().Fill((byte)'a');
        Assert.False(ReportIds.TryParse(huge, out _));
        Assert.Equal($"a string of {huge.Length} bytes", ReportIds.Describe(huge));
        Assert.Equal("a string of 8 bytes", ReportIds.Describe("\u001b]0;x\u0007ab"u8));
        Assert.Equal("a string of 5 bytes", ReportIds.Describe("caf\u00e9"u8));
        Assert.Equal("'../../etc/shadow'", ReportIds.Describe("../../etc/shadow"u8));
        Assert.Equal("a string of 65 bytes", ReportIds.Describe(Encoding.ASCII.GetBytes(new string('x', 65))));
    }
}
