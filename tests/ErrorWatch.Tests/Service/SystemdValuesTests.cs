using ErrorWatch.Configuration;

namespace ErrorWatch.Tests.Service;

public sealed class SystemdValuesTests
{
    [Theory]
    [InlineData("30s", 30_000_000L)]
    [InlineData("30", 30_000_000L)]
    [InlineData("5min", 300_000_000L)]
    [InlineData("5 min", 300_000_000L)]
    [InlineData("5m", 300_000_000L)]
    [InlineData("1h", 3_600_000_000L)]
    [InlineData("1h 30min", 5_400_000_000L)]
    [InlineData("1h30min", 5_400_000_000L)]
    [InlineData("1.5h", 5_400_000_000L)]
    [InlineData("90d", 7_776_000_000_000L)]
    [InlineData("2w", 1_209_600_000_000L)]
    [InlineData("1M", 2_629_800_000_000L)]
    [InlineData("1y", 31_557_600_000_000L)]
    [InlineData("500ms", 500_000L)]
    [InlineData("0.1", 100_000L)]
    [InlineData("250us", 250L)]
    [InlineData("250µs", 250L)]
    [InlineData("1 hour 2 minutes 3 seconds", 3_723_000_000L)]
    [InlineData("  45s  ", 45_000_000L)]
    [InlineData("0", 0L)]
    public void Time_spans_are_read_as_systemd_reads_them(string text, long microseconds)
    {
        Assert.True(SystemdValues.TryParseTimeSpan(text, out var value, out var error), error);
        Assert.Equal(microseconds, value.Ticks / TimeSpan.TicksPerMicrosecond);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("-5s", "negative")]
    [InlineData("5 fortnights", "unknown time unit 'fortnights'")]
    [InlineData("5S", "unknown time unit 'S'")]
    [InlineData("soon", "is not a time span")]
    [InlineData("1.2.3s", "is not a time span")]
    [InlineData(".", "is not a time span")]
    [InlineData("infinity", "infinity is not allowed")]
    [InlineData("101y", "longer than 100 years")]
    [InlineData("99999999999999999999y", "longer than 100 years")]
    [InlineData("999999999999999999999999s", "is not a time span")]
    public void Bad_time_spans_say_what_is_wrong(string text, string message)
    {
        Assert.False(SystemdValues.TryParseTimeSpan(text, out _, out var error));
        Assert.Contains(message, error);
    }

    [Theory]
    [InlineData(30_000_000L, "30s")]
    [InlineData(90_000_000L, "1min 30s")]
    [InlineData(60_000_000L, "1min")]
    [InlineData(7_776_000_000_000L, "90d")]
    [InlineData(500_000L, "500ms")]
    [InlineData(1_500_000L, "1s 500ms")]
    [InlineData(7L, "7us")]
    [InlineData(0L, "0")]
    public void Time_spans_are_written_in_systemd_style_and_read_back_exactly(long microseconds, string text)
    {
        var value = TimeSpan.FromMicroseconds(microseconds);
        Assert.Equal(text, SystemdValues.FormatTimeSpan(value));
        Assert.True(SystemdValues.TryParseTimeSpan(text, out var back, out _));
        Assert.Equal(value, back);
    }

    [Theory]
    [InlineData("yes", true)]
    [InlineData("YES", true)]
    [InlineData("true", true)]
    [InlineData("on", true)]
    [InlineData("1", true)]
    [InlineData("y", true)]
    [InlineData("no", false)]
    [InlineData("False", false)]
    [InlineData("off", false)]
    [InlineData("0", false)]
    [InlineData("n", false)]
    public void Booleans_are_read_as_systemd_reads_them(string text, bool expected)
    {
        Assert.True(SystemdValues.TryParseBoolean(text, out var value));
        Assert.Equal(expected, value);
    }

    [Theory]
    [InlineData("")]
    [InlineData("2")]
    [InlineData("yess")]
    [InlineData("enabled")]
    public void Non_booleans_are_refused(string text) => Assert.False(SystemdValues.TryParseBoolean(text, out _));
}
