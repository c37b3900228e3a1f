using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Kernel;

/// <summary>
/// The records of one event gathered in a single pass: the first FID, ERROR, PIDFD and MNT record,
/// and where the unknown ones are. Parses by type, as filesystem-monitoring.rst asks (order is not
/// guaranteed and new record types may appear).
/// </summary>
public readonly ref struct EventRecords
{
    public bool HasFid { get; private init; }
    public FilesystemId Fsid { get; private init; }
    public int HandleType { get; private init; }
    public ReadOnlySpan<byte> Handle { get; private init; }

    public bool HasError { get; private init; }
    public ErrorRecord Error { get; private init; }

    public bool HasPidfd { get; private init; }
    public int Pidfd { get; private init; }

    public bool HasMountId { get; private init; }
    public ulong MountId { get; private init; }

    /// <summary>Number of records whose type this parser does not interpret (kept, see <see cref="RecordBytes"/>).</summary>
    public int UnknownCount { get; private init; }

    /// <summary>All record bytes of the event, to re-walk for unknown records.</summary>
    public ReadOnlySpan<byte> RecordBytes { get; private init; }
    public int RecordOffset { get; private init; }

    /// <summary>The first problem met while walking records; the fields found before it stay valid.</summary>
    public FanotifyParseError Problem { get; private init; }

    public bool IsWholeFilesystem => !HasFid || Handle.Length == 0 || HandleType == FILEID_INVALID;

    /// <summary>Count of errors this event stands for: error_count, or 1 if the kernel sent no ERROR record.</summary>
    public uint ErrorCount => HasError ? Math.Max(Error.Count, 1u) : 1u;

    internal static EventRecords Read(FanotifyEvent ev)
    {
        bool hasFid = false, hasError = false, hasPidfd = false, hasMount = false;
        FilesystemId fsid = default;
        int handleType = FILEID_INVALID, pidfd = 0, unknown = 0;
        ReadOnlySpan<byte> handle = default;
        ErrorRecord error = default;
        ulong mountId = 0;
        FanotifyParseError problem = default;

        var reader = ev.Records;
        while (reader.TryRead(out var rec))
        {
            switch (rec.Type)
            {
                case FAN_EVENT_INFO_TYPE_FID when !hasFid:
                    if (rec.TryGetFid(out var fid, out var fidProblem))
                    {
                        hasFid = true;
                        fsid = fid.Fsid;
                        handleType = fid.HandleType;
                        handle = fid.Handle;
                    }
                    else if (!problem.IsError)
                    {
                        problem = new FanotifyParseError(rec.Offset, fidProblem, fidProblem == FanotifyProblem.HandleLengthInvalid
                            ? System.Runtime.InteropServices.MemoryMarshal.Read<uint>(rec.Bytes.Slice(12)) : rec.Type);
                    }
                    break;
                case FAN_EVENT_INFO_TYPE_ERROR when !hasError:
                    if (rec.TryGetError(out error))
                        hasError = true;
                    else if (!problem.IsError)
                        problem = new FanotifyParseError(rec.Offset, FanotifyProblem.RecordTooShortForType, rec.Type);
                    break;
                case FAN_EVENT_INFO_TYPE_PIDFD when !hasPidfd:
                    hasPidfd = rec.TryGetPidfd(out pidfd);
                    if (!hasPidfd && !problem.IsError)
                        problem = new FanotifyParseError(rec.Offset, FanotifyProblem.RecordTooShortForType, rec.Type);
                    break;
                case FAN_EVENT_INFO_TYPE_MNT when !hasMount:
                    hasMount = rec.TryGetMountId(out mountId);
                    if (!hasMount && !problem.IsError)
                        problem = new FanotifyParseError(rec.Offset, FanotifyProblem.RecordTooShortForType, rec.Type);
                    break;
                default:
                    unknown++;
                    break;
            }
        }
        if (reader.Error.IsError && !problem.IsError)
            problem = reader.Error;
        if (ev.IsFsError && !problem.IsError)
        {
            if (!hasError)
                problem = new FanotifyParseError(ev.Offset, FanotifyProblem.MissingErrorRecord, 0);
            else if (!hasFid)
                problem = new FanotifyParseError(ev.Offset, FanotifyProblem.MissingFidRecord, 0);
        }

        return new EventRecords
        {
            HasFid = hasFid,
            Fsid = fsid,
            HandleType = handleType,
            Handle = handle,
            HasError = hasError,
            Error = error,
            HasPidfd = hasPidfd,
            Pidfd = pidfd,
            HasMountId = hasMount,
            MountId = mountId,
            UnknownCount = unknown,
            RecordBytes = ev.Bytes.Slice(ev.MetadataLength),
            RecordOffset = ev.Offset + ev.MetadataLength,
            Problem = problem,
        };
    }
}
