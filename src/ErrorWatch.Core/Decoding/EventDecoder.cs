using System.Collections.Immutable;
using System.Diagnostics;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Interop;
using ErrorWatch.Kernel;
using ErrorWatch.Modules;
using ErrorWatch.Reports;
using Serilog;
using ErrorWatch.Watching;

namespace ErrorWatch.Decoding;

/// <summary>
/// The decoding stage: picks the filesystem's decoder from its module, decodes the handle,
/// resolves the path, dispatches unknown info records, and builds the <see cref="CorruptionReport"/>.
/// </summary>
public sealed class EventDecoder
{
    private readonly FilesystemModules _modules;
    private readonly PathResolver _paths;
    private readonly ILogger _log;
    private readonly string _host = Environment.MachineName;
    private readonly int? _readerPid;

    /// <param name="readerPid">
    /// The PID of the process whose fanotify group read the events (the live daemon's own), so an error
    /// it raised itself is marked <see cref="CorruptionReport.RaisedByErrorWatch"/>. Null when decoding
    /// a capture offline: the PID recorded there belongs to another process's lifetime, and matching
    /// the decoding process's own PID would be a coincidence.
    /// </param>
    public EventDecoder(FilesystemModules modules, PathResolver paths, ILogger? log = null, int? readerPid = null)
    {
        _modules = modules;
        _paths = paths;
        _log = log ?? Serilog.Core.Logger.None;
        _readerPid = readerPid;
    }

    public CorruptionReport Decode(FsErrorEvent ev)
    {
        var sb = ev.Superblock;
        var decoder = _modules.For(sb.Magic).Decoder;
        var filesystem = FilesystemInfo.From(sb);

        if (ev.IsOverflow)
            return OverflowReport(ev, decoder, filesystem);

        // A decoder bug must cost its details, never the report: fall back to the generic decoder.
        var failures = new List<string>();
        var obj = Guard(() => decoder.DecodeHandle(ev.HandleType, ev.Handle), () => _modules.Fallback.Decoder.DecodeHandle(ev.HandleType, ev.Handle), "DecodeHandle", decoder, failures);
        var meaning = Guard(() => decoder.DescribeError(ev.Errno), () => ErrorMeaning.Generic(ev.Errno), "DescribeError", decoder, failures);
        var context = new DecodeContext { Superblock = sb, Event = ev, Object = obj };
        foreach (var failure in failures)
            context.Details.Section(decoder.Name).Set("decoder_error", failure);

        var resolution = obj.IsWholeFilesystem || obj.Problem is not null
            ? null
            : _paths.Resolve(sb, obj, ev.Handle);

        AddDetails(decoder, context);
        if (ev.UnknownRecords is { } raw)
            DispatchUnknownRecords(context, raw);
        if (ev.HasFid && ev.Fsid != sb.Fsid && sb.Fsid != default)
            context.Details.Set("fsid_mismatch", $"event fsid {ev.Fsid} differs from the superblock's {sb.Fsid}");

        return new CorruptionReport
        {
            Id = Guid.CreateVersion7(ev.Time).ToString(),
            Time = ev.Time,
            Host = _host,
            Source = "fanotify",
            Category = meaning.Category,
            Severity = SeverityOf(meaning.Category),
            Filesystem = filesystem,
            Error = ErrorOf(meaning, ev.Errno, ev.RawError, ev.Count) with { Folded = FoldedByName(ev) },
            Object = new ObjectInfo
            {
                Inode = obj.Inode,
                Generation = obj.Generation,
                ParentInode = obj.ParentInode,
                HandleType = obj.HandleType,
                Handle = obj.HandleHex,
                Path = resolution?.Path,
                PathError = resolution?.Failure,
                Deleted = resolution?.Deleted ?? false,
                HandleProblem = obj.Problem,
                WholeFilesystem = obj.IsWholeFilesystem,
            },
            Decoder = decoder.Name,
            Details = context.Details,
            Pid = ev.Pid,
            RaisedByErrorWatch = ev.Pid == _readerPid,
            KernelEvents = ev.KernelEvents,
            ParseProblem = ev.Problem.IsError ? ev.Problem.ToString() : null,
            DecodeSeconds = Stopwatch.GetElapsedTime(ev.ReadTimestamp).TotalSeconds,
        };
    }

    /// <summary>
    /// A native health finding becomes a report the same way an event does: the filesystem's decoder
    /// gives the errno's meaning and its own detail, and an inode the source named gets its path.
    /// </summary>
    public CorruptionReport Decode(HealthFinding finding)
    {
        var sb = finding.Superblock;
        var decoder = _modules.For(sb.Magic).Decoder;
        var failures = new List<string>();
        var meaning = Guard(() => decoder.DescribeError(finding.Errno), () => ErrorMeaning.Generic(finding.Errno), "DescribeError", decoder, failures);
        var category = finding.Category ?? meaning.Category;

        var obj = FileObject.WholeFilesystem;
        byte[] handle = [];
        if (finding.Inode is { } ino)
        {
            var encoded = Guard(() => decoder.EncodeHandle(ino, finding.Generation), () => null, "EncodeHandle", decoder, failures);
            if (encoded is { } h)
            {
                handle = h.Handle;
                obj = decoder.DecodeHandle(h.Type, h.Handle);
            }
            else
            {
                obj = new FileObject { Inode = ino, Generation = finding.Generation, HandleType = Fanotify.FILEID_INVALID };
            }
        }
        var context = new DecodeContext { Superblock = sb, Finding = finding, Object = obj };
        if (!finding.Details.IsEmpty)
            context.Details.Set(finding.Source, finding.Details);
        foreach (var failure in failures)
            context.Details.Section(decoder.Name).Set("decoder_error", failure);
        var resolution = handle.Length > 0 ? _paths.Resolve(sb, obj, handle) : null;
        AddDetails(decoder, context);

        return new CorruptionReport
        {
            Id = Guid.CreateVersion7(finding.Time).ToString(),
            Time = finding.Time,
            Host = _host,
            Source = finding.Source,
            Category = category,
            Severity = finding.Category == ErrorCategory.ReadOnly ? Severity.Critical : SeverityOf(category),
            Filesystem = FilesystemInfo.From(sb),
            Error = ErrorOf(meaning, finding.Errno, finding.Errno, finding.Count),
            Object = new ObjectInfo
            {
                Inode = obj.Inode,
                Generation = obj.Generation,
                HandleType = obj.HandleType,
                Handle = obj.HandleHex,
                Path = resolution?.Path,
                PathError = resolution?.Failure ?? (obj.Inode is not null && handle.Length == 0 ? "no file handle encoding for this filesystem" : null),
                Deleted = resolution?.Deleted ?? false,
                WholeFilesystem = obj.IsWholeFilesystem,
            },
            Decoder = decoder.Name,
            Details = context.Details,
            Finding = finding.What,
            DecodeSeconds = Stopwatch.GetElapsedTime(finding.Timestamp).TotalSeconds,
        };
    }

    private static ErrorInfo ErrorOf(ErrorMeaning meaning, int errno, int raw, ulong count) => new()
    {
        Errno = errno,
        RawErrno = raw,
        Name = meaning.Name,
        Description = meaning.Description,
        Meaning = meaning.Meaning,
        Alias = meaning.Alias,
        Count = count,
    };

    /// <summary>The filesystem's own record; a decoder bug costs the details, never the report.</summary>
    private void AddDetails(IFilesystemDecoder decoder, DecodeContext context)
    {
        try
        {
            decoder.AddDetails(context);
        }
        catch (Exception e)
        {
            context.Details.Section(decoder.Name).Set("decoder_error", e.Message);
            _log.Error(e, "Decoder {Decoder} failed on a {Source} report from {Superblock}", decoder.Name,
                context.Finding?.Source ?? "fanotify", context.Superblock);
        }
    }

    private T Guard<T>(Func<T> call, Func<T> fallback, string what, IFilesystemDecoder decoder, List<string> failures)
    {
        try
        {
            return call();
        }
        catch (Exception e)
        {
            failures.Add($"{what}: {e.Message}");
            _log.Error(e, "Decoder {Decoder} failed in {What}; using the generic decoder", decoder.Name, what);
            return fallback();
        }
    }

    /// <summary>
    /// The report when decoding itself failed (a bug): the kernel's facts with generic meaning, no
    /// details or path, and the failure named, so a report is never lost to a decoding bug.
    /// </summary>
    public CorruptionReport Minimal(FsErrorEvent ev, Exception failure)
    {
        var meaning = ErrorMeaning.Generic(ev.Errno);
        var details = new ReportDetails().Set("decoding_failed", failure.Message);
        return new CorruptionReport
        {
            Id = Guid.CreateVersion7(ev.Time).ToString(),
            Time = ev.Time,
            Host = _host,
            Source = "fanotify",
            Category = ev.IsOverflow ? ErrorCategory.EventsLost : meaning.Category,
            Severity = ev.IsOverflow ? Severity.Warning : SeverityOf(meaning.Category),
            Filesystem = FilesystemInfo.From(ev.Superblock),
            Error = new ErrorInfo { Errno = ev.Errno, RawErrno = ev.RawError, Name = meaning.Name, Description = meaning.Description, Meaning = meaning.Meaning, Count = ev.Count },
            Object = new ObjectInfo { HandleType = ev.HandleType, Handle = Convert.ToHexStringLower(ev.Handle), WholeFilesystem = ev.IsWholeFilesystem },
            Decoder = "none",
            Details = details,
            Pid = ev.Pid,
            KernelEvents = ev.KernelEvents,
        };
    }

    /// <summary>The report when decoding a finding failed (a bug): the source's facts, generic meaning.</summary>
    public CorruptionReport Minimal(HealthFinding finding, Exception failure)
    {
        var meaning = ErrorMeaning.Generic(finding.Errno);
        var category = finding.Category ?? meaning.Category;
        return new CorruptionReport
        {
            Id = Guid.CreateVersion7(finding.Time).ToString(),
            Time = finding.Time,
            Host = _host,
            Source = finding.Source,
            Category = category,
            Severity = SeverityOf(category),
            Filesystem = FilesystemInfo.From(finding.Superblock),
            Error = new ErrorInfo { Errno = finding.Errno, RawErrno = finding.Errno, Name = meaning.Name, Description = meaning.Description, Meaning = meaning.Meaning, Count = finding.Count },
            Object = new ObjectInfo { Inode = finding.Inode, Generation = finding.Generation, WholeFilesystem = finding.Inode is null, HandleType = Fanotify.FILEID_INVALID },
            Decoder = "none",
            Details = new ReportDetails().Set("decoding_failed", failure.Message),
            Finding = finding.What,
        };
    }

    public static Severity SeverityOf(ErrorCategory category) => category switch
    {
        ErrorCategory.Corruption or ErrorCategory.Shutdown => Severity.Critical,
        ErrorCategory.EventsLost => Severity.Warning,
        _ => Severity.Error,
    };

    private void DispatchUnknownRecords(DecodeContext context, byte[] raw)
    {
        var records = new InfoRecordReader(raw, 0);
        while (records.TryRead(out var info))
        {
            var type = info.Type;
            if (type is Fanotify.FAN_EVENT_INFO_TYPE_FID or Fanotify.FAN_EVENT_INFO_TYPE_ERROR or Fanotify.FAN_EVENT_INFO_TYPE_PIDFD or Fanotify.FAN_EVENT_INFO_TYPE_MNT)
                continue;
            var record = info.Bytes;
            var decoder = _modules.ForRecord(context.Superblock.Magic, type);
            if (decoder is null)
            {
                var unknown = context.Details.Section("unknown_records");
                unknown.Set($"type_{type}", Convert.ToHexStringLower(record));
                continue;
            }
            try
            {
                decoder.Decode(context, type, record);
            }
            catch (Exception e)
            {
                context.Details.Section("unknown_records").Set($"type_{type}_decoder_error", e.Message);
                _log.Error(e, "Record decoder for type {Type} failed", type);
            }
        }
    }

    private static ImmutableDictionary<string, ulong> FoldedByName(FsErrorEvent ev)
    {
        if (ev.FoldedErrnos is null)
            return ImmutableDictionary<string, ulong>.Empty;
        return ev.FoldedErrnos.ToImmutableDictionary(kv => ErrnoTable.Name(kv.Key), kv => kv.Value);
    }

    private CorruptionReport OverflowReport(FsErrorEvent ev, IFilesystemDecoder decoder, FilesystemInfo filesystem) => new()
    {
        Id = Guid.CreateVersion7(ev.Time).ToString(),
        Time = ev.Time,
        Host = _host,
        Source = "fanotify",
        Category = ErrorCategory.EventsLost,
        Severity = Severity.Warning,
        Filesystem = filesystem,
        Error = new ErrorInfo
        {
            Errno = 0,
            RawErrno = 0,
            Name = ev.Problem.IsError ? "MALFORMED_EVENTS" : "FAN_Q_OVERFLOW",
            Description = ev.Problem.IsError ? "unparseable fanotify events" : "fanotify event queue overflow",
            Meaning = ev.Problem.IsError
                ? $"events after a malformed one could not be read ({ev.Problem}); counts are incomplete"
                : "error events were dropped by the kernel queue; counts are incomplete",
            Count = 0,
        },
        Object = new ObjectInfo { HandleType = Fanotify.FILEID_INVALID },
        Decoder = decoder.Name,
        KernelEvents = ev.KernelEvents,
        ParseProblem = ev.Problem.IsError ? ev.Problem.ToString() : null,
        DecodeSeconds = Stopwatch.GetElapsedTime(ev.ReadTimestamp).TotalSeconds,
    };
}
