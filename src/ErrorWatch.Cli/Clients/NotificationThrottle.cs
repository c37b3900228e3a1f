namespace ErrorWatch.Cli.Clients;

/// <summary>
/// What to show now for one filesystem: the first report after a quiet interval
/// (<see cref="FollowUp"/> false, <see cref="Errors"/> its own), or at the end of an interval the
/// reports that arrived during it (<see cref="FollowUp"/> true: "N more errors").
/// </summary>
/// <param name="Latest">The newest report this notification stands for.</param>
/// <param name="Reports">How many reports it stands for.</param>
/// <param name="Errors">The errors they add up to (as the caller weighed them).</param>
/// <param name="Urgent">Whether any of them was urgent.</param>
/// <param name="ReplacesId">The id of this filesystem's previous notification (0: none), so the desktop updates it rather than stacking another.</param>
public sealed record ThrottledNotification<T>(string Key, T Latest, int Reports, ulong Errors, bool Urgent, bool FollowUp, uint ReplacesId)
{
    /// <summary>
    /// This notification standing also for an earlier one of the same filesystem that could not be
    /// shown: counts added, urgent if either was, and a follow-up only if both were (else nothing
    /// about this filesystem was shown yet).
    /// </summary>
    public ThrottledNotification<T> Including(ThrottledNotification<T> earlier) => this with
    {
        Reports = Reports + earlier.Reports,
        Errors = Errors + earlier.Errors,
        Urgent = Urgent || earlier.Urgent,
        FollowUp = FollowUp && earlier.FollowUp,
        ReplacesId = ReplacesId != 0 ? ReplacesId : earlier.ReplacesId,
    };
}

/// <summary>
/// At most one notification per filesystem per interval. The first report after a quiet interval
/// is shown at once and opens an interval; reports inside it are counted, and when it ends they
/// become one follow-up (which opens the next interval). Each filesystem is throttled on its own,
/// and each notification replaces that filesystem's previous one. Pure: time comes from the given
/// clock, and nothing happens between calls (the caller asks for <see cref="TakeDue"/> at
/// <see cref="NextDue"/>). Not thread-safe.
/// </summary>
public sealed class NotificationThrottle<T>
{
    private sealed class Interval
    {
        public DateTimeOffset Ends;
        public int Reports;
        public ulong Errors;
        public bool Urgent;
        public T? Latest;
        public uint NotificationId;
    }

    private readonly TimeProvider _clock;
    private readonly Dictionary<string, Interval> _filesystems = new(StringComparer.Ordinal);

    public NotificationThrottle(TimeSpan interval, TimeProvider clock)
    {
        if (interval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(interval), interval, "the interval must be positive");
        Length = interval;
        _clock = clock;
    }

    public TimeSpan Length { get; }

    /// <summary>
    /// A report about the filesystem <paramref name="key"/>: the notification to show now, or null
    /// when it is counted towards the follow-up at the end of the current interval.
    /// </summary>
    public ThrottledNotification<T>? Offer(string key, T report, ulong errors, bool urgent)
    {
        var now = _clock.GetUtcNow();
        if (!_filesystems.TryGetValue(key, out var interval))
            _filesystems[key] = interval = new Interval();
        else if (now < interval.Ends)
        {
            Count(interval, report, errors, urgent);
            return null;
        }
        else if (interval.Reports > 0)
        {
            // The follow-up is overdue (not yet taken): this report goes out with it.
            Count(interval, report, errors, urgent);
            return FollowUp(key, interval, now);
        }
        interval.Ends = now + Length;
        return new ThrottledNotification<T>(key, report, 1, errors, urgent, FollowUp: false, interval.NotificationId);
    }

    /// <summary>The follow-ups whose interval has ended, each opening the next interval of its filesystem.</summary>
    public IReadOnlyList<ThrottledNotification<T>> TakeDue()
    {
        var now = _clock.GetUtcNow();
        var due = new List<ThrottledNotification<T>>();
        foreach (var (key, interval) in _filesystems)
        {
            if (interval.Reports > 0 && now >= interval.Ends)
                due.Add(FollowUp(key, interval, now));
        }
        return due;
    }

    /// <summary>When the next follow-up is due, or null when no report is waiting.</summary>
    public DateTimeOffset? NextDue
    {
        get
        {
            DateTimeOffset? next = null;
            foreach (var interval in _filesystems.Values)
            {
                if (interval.Reports > 0 && (next is null || interval.Ends < next))
                    next = interval.Ends;
            }
            return next;
        }
    }

    /// <summary>The notification server's id for the notification just shown for <paramref name="key"/>.</summary>
    public void Delivered(string key, uint notificationId)
    {
        if (_filesystems.TryGetValue(key, out var interval))
            interval.NotificationId = notificationId;
    }

    private static void Count(Interval interval, T report, ulong errors, bool urgent)
    {
        interval.Reports++;
        interval.Errors += errors;
        interval.Urgent |= urgent;
        interval.Latest = report;
    }

    private ThrottledNotification<T> FollowUp(string key, Interval interval, DateTimeOffset now)
    {
        var notification = new ThrottledNotification<T>(key, interval.Latest!, interval.Reports, interval.Errors, interval.Urgent, FollowUp: true, interval.NotificationId);
        interval.Reports = 0;
        interval.Errors = 0;
        interval.Urgent = false;
        interval.Latest = default;
        interval.Ends = now + Length;
        return notification;
    }
}
