using System.Collections.Immutable;
using ErrorWatch.Reports;

namespace ErrorWatch.Store;

/// <summary>
/// One filesystem's reports that no longer fitted in memory while the store could not write: their
/// counts, by errno, become one stored report when it writes again, so the store still adds up to
/// every error reported (each of these reports was published to the other outputs).
/// </summary>
internal sealed class StoreOverflow
{
    private readonly Dictionary<string, ulong> _errorsByErrno = new(StringComparer.Ordinal);
    private CorruptionReport? _first, _last;
    private Severity _worst = Severity.Warning;
    private int _kernelEvents;

    public long Reports { get; private set; }
    public ulong Errors { get; private set; }

    public void Add(CorruptionReport report)
    {
        _first ??= report;
        _last = report;
        Reports++;
        Errors += report.Error.Count;
        _kernelEvents += report.KernelEvents;
        if (report.Severity < _worst) // Critical < Error < Warning
            _worst = report.Severity;
        foreach (var (name, count) in report.Error.ByErrno)
            _errorsByErrno[name] = _errorsByErrno.GetValueOrDefault(name) + count;
    }

    /// <summary>The stored stand-in: the latest report's filesystem and kind, every folded report's counts, no single file.</summary>
    public CorruptionReport ToReport(string reason)
    {
        var last = _last ?? throw new InvalidOperationException("nothing folded");
        return last with
        {
            Id = Guid.CreateVersion7(last.Time).ToString(),
            Severity = _worst,
            Error = last.Error with { Count = Errors, Folded = _errorsByErrno.ToImmutableDictionary(StringComparer.Ordinal) },
            Object = new ObjectInfo { WholeFilesystem = true },
            KernelEvents = _kernelEvents,
            Finding = $"{Reports} report(s), {Errors} error(s), from {_first!.Time:O} to {last.Time:O}, folded into this one: the report store could not write ({reason}) and its memory backlog was full; each was published to the other outputs",
        };
    }
}
