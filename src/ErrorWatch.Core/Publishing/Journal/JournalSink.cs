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
/// the fallback writer, after one notice; the sink never throws.
/// </summary>
public sealed class JournalSink : IReportSink, IDisposable
{
    private readonly IJournal _journal;
    private readonly JournalFallback _fallback;
    private readonly TimeProvider _time;
    private readonly Lock _lock = new();
    private readonly Dictionary<DeviceNumber, Window> _windows = new();

    public JournalSink(IJournal journal, JournalFallback? fallback = null, TimeProvider? time = null)
    {
        _journal = journal;
        _fallback = fallback ?? new JournalFallback();
        _time = time ?? TimeProvider.System;
    }

    public string Name => "journal";

    /// <summary>Report entries per filesystem (by major:minor) per interval; the summary comes on top.</summary>
    public int MaxEntriesPerInterval { get; init; } = 20;

    public TimeSpan Interval { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>DOCUMENTATION field of every entry.</summary>
    public string Documentation { get; init; } = ReportJournal.DefaultDocumentation;

    /// <summary>Report entries delivered (to journald or the fallback).</summary>
    public long ReportEntries { get; private set; }

    /// <summary>Summary entries delivered.</summary>
    public long SummaryEntries { get; private set; }

    /// <summary>Reports counted into summaries instead of logged one by one.</summary>
    public long SuppressedReports { get; private set; }

    public void Publish(CorruptionReport report)
    {
        lock (_lock)
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
                Deliver(() => ReportJournal.ToEntry(report, Documentation), () => ReportText.Format(report));
            }
            else
            {
                window.Suppress(report);
                SuppressedReports++;
            }
        }
    }

    /// <summary>Sends the summaries of intervals that have ended; the daemon calls this periodically.</summary>
    public void Tick()
    {
        lock (_lock)
            CloseEnded(_time.GetUtcNow());
    }

    /// <summary>Sends every pending summary now (shutdown). Intervals keep their entry counts.</summary>
    public void Flush()
    {
        lock (_lock)
        {
            var now = _time.GetUtcNow();
            foreach (var window in _windows.Values)
                SendSummary(window, now);
        }
    }

    public void Dispose() => Flush();

    private void CloseEnded(DateTimeOffset now)
    {
        List<DeviceNumber>? ended = null;
        foreach (var (device, window) in _windows)
        {
            if (now - window.Start < Interval)
                continue;
            SendSummary(window, now);
            (ended ??= new()).Add(device);
        }
        if (ended is not null)
            foreach (var device in ended)
                _windows.Remove(device);
    }

    private void SendSummary(Window window, DateTimeOffset now)
    {
        if (window.SuppressedReports == 0)
            return;
        var elapsed = now - window.Start;
        var seconds = (long)Math.Max(1, Math.Ceiling((elapsed < Interval ? elapsed : Interval).TotalSeconds));
        var message = window.Message(seconds);
        var entry = window.ToEntry(message, seconds, Documentation);
        var line = $"{now.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)} {window.Worst.ToString().ToUpperInvariant()} {message}";
        SummaryEntries++;
        Deliver(() => entry, () => line);
        window.ResetSuppressed();
    }

    private void Deliver(Func<JournalEntry> entry, Func<string> line)
    {
        string reason;
        if (!_journal.IsAvailable)
        {
            reason = _journal.UnavailableReason;
        }
        else
        {
            int result;
            try
            {
                result = _journal.Send(entry());
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                result = -Interop.Libc.EIO; // an IJournal must not throw; if one does, the report still goes out
            }
            if (result >= 0)
                return;
            reason = JournalFallback.SendFailure(result);
        }
        _fallback.Write(line(), reason);
    }

    /// <summary>One filesystem's current interval: entries sent, and what was held back.</summary>
    private sealed class Window(DateTimeOffset start, FilesystemInfo filesystem)
    {
        public DateTimeOffset Start { get; } = start;
        public FilesystemInfo Filesystem { get; set; } = filesystem;
        public int Entries { get; set; }
        public long SuppressedReports { get; private set; }
        public ulong SuppressedErrors { get; private set; }
        public Severity Worst { get; private set; } = Severity.Warning;
        private readonly SortedDictionary<string, ulong> _errorsByErrno = new(StringComparer.Ordinal);
        private string? _firstId, _lastId;
        private string? _host;

        public void Suppress(CorruptionReport report)
        {
            SuppressedReports++;
            SuppressedErrors += report.Error.Count;
            if (report.Severity < Worst) // Critical < Error < Warning
                Worst = report.Severity;
            // Folded reports carry the split by errno (their parts sum to Count); others are one errno.
            if (report.Error.Folded.IsEmpty)
                AddErrors(report.Error.Name, report.Error.Count);
            else
                foreach (var (name, count) in report.Error.Folded)
                    AddErrors(name, count);
            _firstId ??= report.Id;
            _lastId = report.Id;
            _host = report.Host;
        }

        private void AddErrors(string errnoName, ulong count)
        {
            _errorsByErrno.TryGetValue(errnoName, out var n);
            _errorsByErrno[errnoName] = n + count;
        }

        public void ResetSuppressed()
        {
            SuppressedReports = 0;
            SuppressedErrors = 0;
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
            return ReportJournal.OneLine(
                $"{fs.Type} {fs.Device}{where}: {reports} ({errors}) in the last {seconds} s not logged one by one; every report is in the store (errorwatch list)");
        }

        public JournalEntry ToEntry(string message, long seconds, string documentation)
        {
            var e = new JournalEntry();
            e.Add("MESSAGE", message);
            e.Add("MESSAGE_ID", ReportJournal.SuppressedMessageId);
            e.Add("PRIORITY", ReportJournal.PriorityOf(Worst));
            e.Add("SYSLOG_IDENTIFIER", ReportJournal.SyslogIdentifier);
            e.Add("DOCUMENTATION", documentation);
            e.Add("ERRORWATCH_SEVERITY", Worst.ToString().ToLowerInvariant());
            e.Add("ERRORWATCH_SUPPRESSED_REPORTS", SuppressedReports);
            e.Add("ERRORWATCH_SUPPRESSED_ERRORS", SuppressedErrors);
            foreach (var (name, count) in _errorsByErrno)
                e.Add("ERRORWATCH_SUPPRESSED_" + ReportJournal.FieldPart(name), count);
            e.Add("ERRORWATCH_FIRST_REPORT_ID", _firstId!);
            e.Add("ERRORWATCH_LAST_REPORT_ID", _lastId!);
            e.Add("ERRORWATCH_INTERVAL_SEC", seconds);
            if (_host is not null)
                e.Add("ERRORWATCH_HOST", _host);
            ReportJournal.AddFilesystem(e, Filesystem);
            return e;
        }
    }
}
