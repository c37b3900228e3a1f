using ErrorWatch.Configuration;

namespace ErrorWatch.Recovery;

public enum RepeatKind
{
    /// <summary>Every time it is due; reports arriving meanwhile are folded into the next run.</summary>
    Always,
    /// <summary>One run per filesystem, ever (as long as the state directory remembers it).</summary>
    Once,
    /// <summary>At most one run per interval per filesystem; what comes in between is folded into a run at the interval's end.</summary>
    Interval,
    /// <summary>Like smartd's -M diminishing: after the first run wait one interval, then two, four, eight ...</summary>
    Diminishing,
}

/// <summary>
/// When a hook may run again for the same filesystem (per rule: Repeat=). Reports that arrive while
/// a run is held back are never dropped (except after a <see cref="RepeatKind.Once"/> run): they
/// fold into the one run that becomes due when the policy allows it.
/// </summary>
public sealed record RepeatPolicy
{
    public static readonly TimeSpan DefaultDiminishingBase = TimeSpan.FromHours(1);
    public static readonly TimeSpan MinInterval = TimeSpan.FromSeconds(1);

    /// <summary>The doubling stops here, so that a long-lived filesystem cannot overflow the arithmetic.</summary>
    private const int MaxDoublings = 20;

    public static readonly RepeatPolicy Always = new(RepeatKind.Always, TimeSpan.Zero);
    public static readonly RepeatPolicy Once = new(RepeatKind.Once, TimeSpan.Zero);

    /// <summary>ZED_NOTIFY_INTERVAL_SECS=3600 is what ZED admins know: one run per filesystem per hour.</summary>
    public static readonly RepeatPolicy Default = Every(TimeSpan.FromHours(1));

    private RepeatPolicy(RepeatKind kind, TimeSpan interval)
    {
        Kind = kind;
        Interval = interval;
    }

    public RepeatKind Kind { get; }

    /// <summary>The interval, or the first interval of <see cref="RepeatKind.Diminishing"/>.</summary>
    public TimeSpan Interval { get; }

    public static RepeatPolicy Every(TimeSpan interval) => new(RepeatKind.Interval, interval);

    public static RepeatPolicy DiminishingFrom(TimeSpan first) => new(RepeatKind.Diminishing, first);

    /// <summary>
    /// The earliest time the next run may start, after <paramref name="runs"/> runs of which the last
    /// started at <paramref name="lastStart"/>; null when no run may ever start again.
    /// </summary>
    public DateTimeOffset? NextAllowed(long runs, DateTimeOffset? lastStart)
    {
        if (runs <= 0 || lastStart is not { } last)
            return DateTimeOffset.MinValue;
        return Kind switch
        {
            RepeatKind.Always => DateTimeOffset.MinValue,
            RepeatKind.Once => null,
            RepeatKind.Interval => Add(last, Interval),
            _ => Add(last, TimeSpan.FromTicks(Interval.Ticks * (1L << (int)Math.Min(runs - 1, MaxDoublings)))),
        };
    }

    private static DateTimeOffset Add(DateTimeOffset time, TimeSpan span) =>
        DateTimeOffset.MaxValue - time < span ? DateTimeOffset.MaxValue : time + span;

    /// <summary>always, once, interval=DURATION, diminishing, diminishing=DURATION (durations as in systemd.time(7)).</summary>
    public static bool TryParse(string text, out RepeatPolicy policy, out string error)
    {
        policy = Default;
        error = "";
        var value = text.Trim();
        var equals = value.IndexOf('=');
        var word = equals < 0 ? value : value[..equals];
        var argument = equals < 0 ? null : value[(equals + 1)..];
        switch (word)
        {
            case "always" when argument is null:
                policy = Always;
                return true;
            case "once" when argument is null:
                policy = Once;
                return true;
            case "diminishing" when argument is null:
                policy = DiminishingFrom(DefaultDiminishingBase);
                return true;
            case "interval" or "diminishing" when argument is not null:
                if (!SystemdValues.TryParseTimeSpan(argument, out var span, out error))
                    return false;
                if (span < MinInterval)
                {
                    error = $"{SystemdValues.FormatTimeSpan(span)} is shorter than {SystemdValues.FormatTimeSpan(MinInterval)}";
                    return false;
                }
                policy = word == "interval" ? Every(span) : DiminishingFrom(span);
                return true;
            case "interval":
                error = "interval needs a duration: interval=1h";
                return false;
            default:
                error = $"'{(value.Length <= 60 ? value : value[..57] + "...")}' is not one of always, once, interval=DURATION, diminishing[=DURATION]";
                return false;
        }
    }

    public override string ToString() => Kind switch
    {
        RepeatKind.Always => "always",
        RepeatKind.Once => "once",
        RepeatKind.Interval => "interval=" + SystemdValues.FormatTimeSpan(Interval),
        _ => Interval == DefaultDiminishingBase ? "diminishing" : "diminishing=" + SystemdValues.FormatTimeSpan(Interval),
    };
}
