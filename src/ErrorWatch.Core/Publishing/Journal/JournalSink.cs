using System.Globalization;
using ErrorWatch.Filesystems;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing.Journal;

/// <summary>
/// Reports into the journal, one entry each (fields: <see cref="ReportJournal"/>), with storm control:
/// a failing disk can raise thousands of errors a second, and journald would then drop entries of
/// every service (its rate limit is per service, not per filesystem). So at most
/// <see cref="MaxEntriesPerInterval"/> report entries per filesystem per <see cref="Interval"/>; the
/// rest are counted, and when the interval ends one summary entry (MESSAGE_ID
/// <see cref="ReportJournal.SuppressedMessageId"/>) says how many reports and errors, by errno, were
/// not logged one by one. The counts add up exactly: the report entries' ERRORWATCH_ERROR_COUNT plus
/// the summaries' ERRORWATCH_SUPPRESSED_ERRORS is every error reported.
/// Without journald (no socket, no libsystemd, or a failed send) each entry becomes one text line on
/// the fallback writer, after one notice; the sink never throws. Reports journald did not take are
/// counted like a storm's, and their summary goes out as soon as journald takes entries again
/// (retried every <see cref="RetryInterval"/>), so the journal still adds up once it is back.
/// Nothing here wakes the process unless a summary is due.
/// Its <see cref="DeliveryCursor"/> moves to a stored report once journald has it, as an entry or in a
/// summary sent; after a crash the next start replays what was stored after it (<see cref="Replay"/>):
/// entries within the same limits, marked ERRORWATCH_REPLAYED=1, and one summary per filesystem
/// (reason "replay") for the rest.
/// </summary>
public sealed class JournalSink : IDurableSink, Microsoft.Extensions.Hosting.IHostedService, IDisposable
{
    private readonly IJournal _journal;
    private readonly JournalFallback _fallback;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<DeviceNumber, Window> _windows = new();
    private readonly ITimer _timer;
    private DateTimeOffset? _timerDue;
    // The end of the latest stored report handed over: where the cursor goes once nothing is pending.
    private Store.StorePosition? _latest;

    public JournalSink(IJournal journal, JournalFallback? fallback = null, TimeProvider? time = null)
    {
        _journal = journal;
        _fallback = fallback ?? new JournalFallback();
        _time = time ?? TimeProvider.System;
        // One-shot, armed only while a summary is pending: an idle daemon is never woken for the journal.
        _timer = _time.CreateTimer(_ => Tick(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    public string Name => "journal";

    /// <summary>Report entries per filesystem (by major:minor) per interval; the summary comes on top.</summary>
    public int MaxEntriesPerInterval { get; init; } = 20;

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How soon, after journald refused an entry, the summary of what it missed is tried again.</summary>
    public TimeSpan RetryInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Reports journald did not take (they went to the fallback), counted into summaries.</summary>
    public long UnreachableReports { get; private set; }

    /// <summary>DOCUMENTATION field of every entry.</summary>
    public string Documentation { get; init; } = ReportJournal.DefaultDocumentation;

    /// <summary>Report entries delivered (to journald or the fallback).</summary>
    public long ReportEntries { get; private set; }

    /// <summary>Summary entries delivered.</summary>
    public long SummaryEntries { get; private set; }

    /// <summary>Reports counted into summaries instead of logged one by one.</summary>
    public long SuppressedReports { get; private set; }

    /// <summary>Reports stored after the cursor and replayed at this start.</summary>
    public long ReplayedReports { get; private set; }

    public Store.DeliveryCursor? Cursor { get; set; }

    public void Publish(CorruptionReport report) => Publish(report, null);

    public void Publish(CorruptionReport report, Store.StorePosition? stored)
    {
        lock (_lock)
        {
            Handle(report, replayed: false);
            _latest = stored ?? _latest;
            MoveCursor();
        }
    }

    /// <summary>
    /// What the last run stored but may not have logged: an entry while the window has room (marked
    /// ERRORWATCH_REPLAYED=1), else counted for the filesystem's summary, which <see cref="Replayed"/> sends.
    /// </summary>
    public void Replay(CorruptionReport missed)
    {
        lock (_lock)
        {
            Handle(missed, replayed: true);
            ReplayedReports++;
        }
    }

    /// <summary>Sends the replay's summaries at once and moves the cursor to <paramref name="end"/>.</summary>
    public void Replayed(Store.StorePosition end)
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            foreach (var window in _windows.Values)
                if (window.ReplayedReports > 0)
                    SendSummary(window, now);
            _latest = end;
            MoveCursor();
        }
    }

    /// <summary>The cursor follows the latest stored report while no summary is pending (those reports are not in the journal yet).</summary>
    private void MoveCursor()
    {
        if (_latest is not { } latest || Cursor is null)
            return;
        foreach (var window in _windows.Values)
            if (window.SuppressedReports > 0)
                return;
        Cursor.Advance(latest);
    }

    /// <summary>One report: an entry while the filesystem's window has room, else counted for its summary. Under the lock.</summary>
    private void Handle(CorruptionReport report, bool replayed)
    {
        var now = _time.GetUtcNow();
        CloseEnded(now);
        var fs = report.Filesystem;
        if (!_windows.TryGetValue(fs.MajorMinor, out var window))
            _windows.Add(fs.MajorMinor, window = new Window(now, fs));
        window.Filesystem = fs; // the latest view (mountpoints change)

        if (window.Entries < MaxEntriesPerInterval)
        {
            window.Entries++;
            ReportEntries++;
            if (!Deliver(() => Entry(report, replayed), () => ReportText.Format(report), out var reason))
            {
                window.Suppress(report, unreachable: reason, replayed: false);
                UnreachableReports++;
                Arm(now + RetryInterval);
            }
            else if (window.UnreachableReports > 0)
            {
                SendSummary(window, now); // journald is back: say at once what it missed
            }
        }
        else
        {
            window.Suppress(report, unreachable: null, replayed);
            SuppressedReports++;
            Arm(window.Start + Interval);
        }
    }

    private JournalEntry Entry(CorruptionReport report, bool replayed)
    {
        var entry = ReportJournal.ToEntry(report, Documentation);
        if (replayed)
            entry.Add("ERRORWATCH_REPLAYED", 1);
        return entry;
    }

    /// <summary>Sends the summaries that are due: intervals that ended, and what journald missed once it answers again.</summary>
    public void Tick()
    {
        lock (_lock)
        {
            _timerDue = null;
            var now = _time.GetUtcNow();
            CloseEnded(now);
            foreach (var window in _windows.Values)
                if (window.UnreachableReports > 0)
                    SendSummary(window, now);
            // Whatever is still pending sets the next wake-up.
            foreach (var window in _windows.Values)
                if (window.SuppressedReports > 0)
                    Arm(window.UnreachableReports > 0 ? now + RetryInterval : window.Start + Interval);
            MoveCursor();
        }
    }

    private void Arm(DateTimeOffset due)
    {
        if (_timerDue is { } armed && armed <= due)
            return;
        _timerDue = due;
        var wait = due - _time.GetUtcNow();
        _timer.Change(wait > TimeSpan.Zero ? wait : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Sends every pending summary now (shutdown). Intervals keep their entry counts.</summary>
    // On the Generic Host: stopped last, after every report the drain published reached it.
    Task Microsoft.Extensions.Hosting.IHostedService.StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    Task Microsoft.Extensions.Hosting.IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        Flush();
        return Task.CompletedTask;
    }

    public void Flush()
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            foreach (var window in _windows.Values)
                SendSummary(window, now);
            MoveCursor();
        }
    }

    public void Dispose()
    {
        _timer.Dispose();
        Flush();
    }

    private void CloseEnded(DateTimeOffset now)
    {
        List<DeviceNumber>? ended = null;
        foreach (var (device, window) in _windows)
        {
            if (now - window.Start < Interval)
                continue;
            // A summary journald did not take keeps its window, to be tried again.
            if (!SendSummary(window, now))
                continue;
            (ended ??= new()).Add(device);
        }
        if (ended is not null)
            foreach (var device in ended)
                _windows.Remove(device);
    }

    /// <summary>False when journald did not take it (the counts stay for the next try).</summary>
    private bool SendSummary(Window window, DateTimeOffset now)
    {
        if (window.SuppressedReports == 0)
            return true;
        var elapsed = now - window.Start;
        var seconds = (long)Math.Max(1, Math.Ceiling((elapsed < Interval ? elapsed : Interval).TotalSeconds));
        var message = window.Message(seconds);
        var entry = window.ToEntry(message, seconds, Documentation);
        var line = $"{now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} {window.Worst.ToString().ToUpperInvariant()} {message}";
        // A summary journald keeps refusing goes to the fallback once, not at every retry.
        if (!Deliver(() => entry, () => line, out _, fallback: !window.SummaryInFallback))
        {
            window.SummaryInFallback = true;
            return false;
        }
        SummaryEntries++;
        window.ResetSuppressed();
        return true;
    }

    /// <summary>True when journald took the entry; otherwise the line went to the fallback and <paramref name="reason"/> says why.</summary>
    private bool Deliver(Func<JournalEntry> entry, Func<string> line, out string reason, bool fallback = true)
    {
        if (_journal.TrySend(entry, out reason))
            return true;
        if (fallback)
            _fallback.Write(line(), reason);
        return false;
    }

    /// <summary>One filesystem's current interval: entries sent, and what was held back.</summary>
    private sealed class Window(DateTimeOffset start, FilesystemInfo filesystem)
    {
        public DateTimeOffset Start { get; } = start;
        public FilesystemInfo Filesystem { get; set; } = filesystem;
        public int Entries { get; set; }
        public long SuppressedReports { get; private set; }
        public ulong SuppressedErrors { get; private set; }
        /// <summary>Of the suppressed reports, those journald did not take, and why.</summary>
        public long UnreachableReports { get; private set; }
        /// <summary>Of the suppressed reports, those replayed from the store at this start.</summary>
        public long ReplayedReports { get; private set; }
        private string? _unreachableReason;
        public bool SummaryInFallback { get; set; }
        public Severity Worst { get; private set; } = Severity.Warning;
        private readonly SortedDictionary<string, ulong> _errorsByErrno = new(StringComparer.Ordinal);
        private string? _firstId, _lastId;
        private string? _host;

        public void Suppress(CorruptionReport report, string? unreachable, bool replayed)
        {
            if (unreachable is not null)
            {
                UnreachableReports++;
                _unreachableReason = unreachable;
            }
            else if (replayed)
            {
                ReplayedReports++;
            }
            SuppressedReports++;
            SuppressedErrors += report.Error.Count;
            if (report.Severity < Worst) // Critical < Error < Warning
                Worst = report.Severity;
            foreach (var (name, count) in report.Error.ByErrno)
                _errorsByErrno[name] = _errorsByErrno.GetValueOrDefault(name) + count;
            _firstId ??= report.Id;
            _lastId = report.Id;
            _host = report.Host;
        }

        public void ResetSuppressed()
        {
            SuppressedReports = 0;
            SuppressedErrors = 0;
            UnreachableReports = 0;
            ReplayedReports = 0;
            _unreachableReason = null;
            SummaryInFallback = false;
            Worst = Severity.Warning;
            _errorsByErrno.Clear();
            _firstId = _lastId = null;
        }

        public string Message(long seconds)
        {
            var fs = Filesystem;
            var where = fs.Mountpoints.Length > 0 ? $" ({fs.Mountpoints[0].Escaped})" : "";
            var reports = SuppressedReports == 1 ? "1 more report" : $"{SuppressedReports} more reports";
            var errors = SuppressedErrors == 1 ? "1 error" : $"{SuppressedErrors} errors";
            var why = UnreachableReports == 0 ? ""
                : UnreachableReports == SuppressedReports ? $", journald was unreachable ({_unreachableReason})"
                : $", {UnreachableReports} of them while journald was unreachable ({_unreachableReason})";
            if (ReplayedReports > 0)
                why += ReplayedReports == SuppressedReports
                    ? ", replayed from the store: the last run ended before logging them"
                    : $", {ReplayedReports} of them replayed from the store (the last run ended before logging them)";
            return ReportJournal.OneLine(
                $"{fs.Type} {fs.Device}{where}: {reports} ({errors}) in the last {seconds} s not logged one by one{why}; every report is in the store (errorwatch list)");
        }

        /// <summary>Why the reports were summarized: storm, journald-unreachable, replay, or several, comma-separated.</summary>
        private string Reason()
        {
            var reasons = new List<string>(3);
            if (SuppressedReports - UnreachableReports - ReplayedReports > 0)
                reasons.Add("storm");
            if (UnreachableReports > 0)
                reasons.Add("journald-unreachable");
            if (ReplayedReports > 0)
                reasons.Add("replay");
            return string.Join(',', reasons);
        }

        public JournalEntry ToEntry(string message, long seconds, string documentation)
        {
            var e = new JournalEntry();
            e.Add("MESSAGE", message);
            e.Add("MESSAGE_ID", ReportJournal.SuppressedMessageId);
            e.Add("PRIORITY", ReportJournal.PriorityOf(Worst));
            e.Add("SYSLOG_IDENTIFIER", ReportJournal.SyslogIdentifier);
            e.Add("DOCUMENTATION", documentation);
            e.Add("ERRORWATCH_SEVERITY", Worst.Word());
            e.Add("ERRORWATCH_SUPPRESSED_REPORTS", SuppressedReports);
            e.Add("ERRORWATCH_SUPPRESSED_ERRORS", SuppressedErrors);
            foreach (var (name, count) in _errorsByErrno)
                e.Add("ERRORWATCH_SUPPRESSED_" + ReportJournal.FieldPart(name), count);
            e.Add("ERRORWATCH_FIRST_REPORT_ID", _firstId!);
            e.Add("ERRORWATCH_LAST_REPORT_ID", _lastId!);
            e.Add("ERRORWATCH_INTERVAL_SEC", seconds);
            e.Add("ERRORWATCH_SUMMARY_REASON", Reason());
            // Always there (0 for a storm alone): the catalog text names them.
            e.Add("ERRORWATCH_UNREACHABLE_REPORTS", UnreachableReports);
            e.Add("ERRORWATCH_REPLAYED_REPORTS", ReplayedReports);
            if (_host is not null)
                e.Add("ERRORWATCH_HOST", _host);
            ReportJournal.AddFilesystem(e, Filesystem);
            return e;
        }
    }
}
