using ErrorWatch.Bus;

namespace ErrorWatch.Tests.DBus;

/// <summary>What a D-Bus string may hold: sd-bus refuses noncharacters, so they are replaced rather than failing the message.</summary>
public sealed class BusStringTests
{
    [Theory]
    [InlineData("lbl\u001b[5m\n\t", "lbl\u001b[5m\n\t")]                 // controls are valid in a D-Bus string
    [InlineData("a\uFFFEb\uFFFF", "a\uFFFDb\uFFFD")]
    [InlineData("\uFDD0\uFDEF\uFDCF", "\uFFFD\uFFFD\uFDCF")]
    [InlineData("x\U0001FFFE\U0010FFFF\U0001F600", "x\uFFFD\uFFFD\U0001F600")]
    [InlineData("café", "café")]
    public void Noncharacters_become_the_replacement_character(string text, string onTheBus)
    {
        Assert.Equal(onTheBus, BusMessage.StringText(text));
    }

    [Fact]
    public void Text_without_noncharacters_is_the_same_string()
    {
        var text = "/srv/naïve name";
        Assert.Same(text, BusMessage.StringText(text));
    }

    [Fact]
    public void A_failed_call_is_described_with_its_arguments()
    {
        // sd-bus refuses a null message with EINVAL; the description is only formatted on failure.
        var e = Assert.Throws<BusException>(() => new BusMessage(0).Open('a', "{sv}"));
        Assert.Equal("open a{sv}: EINVAL", e.Message);
        Assert.Equal(22, e.Errno);
    }
}
