using ErrorWatch.Filesystems;

namespace ErrorWatch.Tests.Filesystems;

public class DeviceNumberTests
{
    [Theory]
    [InlineData("8:1", 8u, 1u)]
    [InlineData("98:0", 98u, 0u)]
    [InlineData("0:50", 0u, 50u)]
    [InlineData("259:1048575", 259u, 1048575u)]
    public void TryParse_AcceptsMajorColonMinor(string text, uint major, uint minor)
    {
        Assert.True(DeviceNumber.TryParse(text, out var device));
        Assert.Equal(new DeviceNumber(major, minor), device);
        Assert.Equal(text, device.ToString());
    }

    [Theory]
    [InlineData("")]
    [InlineData("8")]
    [InlineData("8:")]
    [InlineData(":1")]
    [InlineData("8-1")]
    [InlineData("a:b")]
    [InlineData("-1:2")]
    [InlineData("8:1:2")]
    public void TryParse_RejectsEverythingElse(string text)
    {
        Assert.False(DeviceNumber.TryParse(text, out _));
    }

    [Fact]
    public void FromKernelEncoding_SplitsMajorAbove20Bits()
    {
        // Kernel-internal dev_t: MAJOR << 20 | MINOR (MINORBITS = 20).
        Assert.Equal(new DeviceNumber(8, 1), DeviceNumber.FromKernelEncoding((8ul << 20) | 1));
        Assert.Equal(new DeviceNumber(259, 0xfffff), DeviceNumber.FromKernelEncoding((259ul << 20) | 0xfffff));
    }
}
