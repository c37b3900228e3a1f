using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Kernel;

/// <summary>
/// The records of one event gathered in a single pass: the first FID, ERROR, PIDFD and MNT record,
/// and where the unknown ones are. Parses by type, as filesystem-monitoring.rst asks (order is not
/// guaranteed and new record types may appear).
/// </summary>
/// <remarks>
/// The walk only remembers where each record starts (validated once, while walking); the fields are
/// read from the event's bytes when asked for. That keeps this struct small (the record span, four
/// positions, a count and the first problem) so returning it costs a few stores instead of a copy
/// of every field, which was most of the parser's cost per event (docs/performance.md). Every read
/// is a span read inside a record whose length was checked against its fixed layout during the walk.
/// </remarks>
public readonly ref struct EventRecords
{
    private readonly ReadOnlySpan<byte> _records;
    private readonly int _recordOffset;
    // Position + 1 of the first well-formed record of each type inside _records; 0 = none, so that
    // default(EventRecords) has no records.
    private readonly int _fid;
    private readonly int _error;
    private readonly int _pidfd;
    private readonly int _mount;
    private readonly int _unknown;
    private readonly FanotifyParseError _problem;

    private EventRecords(ReadOnlySpan<byte> records, int recordOffset, int fid, int error, int pidfd, int mount, int unknown, FanotifyParseError problem)
    {
        _records = records;
        _recordOffset = recordOffset;
        _fid = fid;
        _error = error;
        _pidfd = pidfd;
        _mount = mount;
        _unknown = unknown;
        _problem = problem;
    }

    public bool HasFid => _fid != 0;

    /// <summary>fsid of the first FID record (default without one).</summary>
    public FilesystemId Fsid
    {
        get
        {
            if (_fid == 0)
                return default;
            var fid = FidFixedPart;
            return new FilesystemId(SpanReads.Read<int>(fid, 4), SpanReads.Read<int>(fid, 8));
        }
    }

    /// <summary>file_handle.handle_type of the first FID record, FILEID_INVALID without one.</summary>
    public int HandleType => _fid != 0 ? SpanReads.Read<int>(FidFixedPart, 16) : FILEID_INVALID;

    /// <summary>file_handle.f_handle: handle_bytes bytes (checked ≤ 128 and inside the record).</summary>
    public ReadOnlySpan<byte> Handle => _fid != 0
        ? _records.Slice(_fid - 1 + FidRecordFixedLength, (int)SpanReads.Read<uint>(FidFixedPart, 12))
        : default;

    public bool HasError => _error != 0;

    public ErrorRecord Error
    {
        get
        {
            if (_error == 0)
                return default;
            // A fixed-length slice: one bounds check, and the JIT folds the ones for the constant offsets.
            var error = _records.Slice(_error - 1, ErrorRecordLength);
            return new ErrorRecord(SpanReads.Read<int>(error, 4), SpanReads.Read<uint>(error, 8));
        }
    }

    public bool HasPidfd => _pidfd != 0;
    public int Pidfd => _pidfd != 0 ? SpanReads.Read<int>(_records.Slice(_pidfd - 1, PidfdRecordLength), 4) : 0;

    public bool HasMountId => _mount != 0;
    public ulong MountId => _mount != 0 ? SpanReads.Read<ulong>(_records.Slice(_mount - 1, MntRecordLength), 8) : 0;

    /// <summary>Number of records whose type this parser does not interpret (kept, see <see cref="RecordBytes"/>).</summary>
    public int UnknownCount => _unknown;

    /// <summary>All record bytes of the event, to re-walk for unknown records.</summary>
    public ReadOnlySpan<byte> RecordBytes => _records;
    public int RecordOffset => _recordOffset;

    /// <summary>The first problem met while walking records; the fields found before it stay valid.</summary>
    public FanotifyParseError Problem => _problem;

    public bool IsWholeFilesystem
    {
        get
        {
            if (_fid == 0)
                return true;
            var fid = FidFixedPart;
            return SpanReads.Read<uint>(fid, 12) == 0 || SpanReads.Read<int>(fid, 16) == FILEID_INVALID;
        }
    }

    /// <summary>Count of errors this event stands for: error_count, or 1 if the kernel sent no ERROR record.</summary>
    public uint ErrorCount => _error != 0 ? Math.Max(SpanReads.Read<uint>(_records.Slice(_error - 1, ErrorRecordLength), 8), 1u) : 1u;

    /// <summary>hdr, fsid, handle_bytes, handle_type of the first FID record (only when <see cref="HasFid"/>).</summary>
    private ReadOnlySpan<byte> FidFixedPart => _records.Slice(_fid - 1, FidRecordFixedLength);

    /// <summary>
    /// One pass over the records of an event whose framing <see cref="FanotifyEventReader"/> checked
    /// (metadata_len ≤ event_len). Same rules as <see cref="InfoRecordReader"/> for walking, and as
    /// <see cref="InfoRecord"/>'s TryGet methods for each type's fixed layout.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static EventRecords Read(FanotifyEvent ev)
    {
        var eventBytes = ev.Bytes;
        var eventOffset = ev.Offset;
        var metadataLength = SpanReads.Read<ushort>(eventBytes, 6);
        var records = eventBytes.Slice(metadataLength);
        var recordOffset = eventOffset + metadataLength;

        // What every kernel so far sends with FAN_FS_ERROR (kernel-abi.md §2.5): one FID record, then one
        // 12-byte ERROR record, filling the event. Recognised with a few loads and compares; anything
        // else (other order, more records, any problem) takes the general walk, which gives exactly the
        // same result for this layout (MalformedBufferTests compares both on a million mutated buffers).
        if (BitConverter.IsLittleEndian && records.Length >= FidRecordFixedLength + ErrorRecordLength)
        {
            var fidHeader = SpanReads.Read<uint>(records, 0);
            var fidLength = (int)(fidHeader >> 16);
            if ((byte)fidHeader == FAN_EVENT_INFO_TYPE_FID
                && fidLength >= FidRecordFixedLength
                && fidLength == records.Length - ErrorRecordLength
                && SpanReads.Read<uint>(records, fidLength) == CanonicalErrorHeader
                && SpanReads.Read<uint>(records, 12) <= (uint)Math.Min(InfoRecord.MaxHandleBytes, fidLength - FidRecordFixedLength))
            {
                return new EventRecords(records, recordOffset, fid: 1, error: fidLength + 1, pidfd: 0, mount: 0, unknown: 0, problem: default);
            }
        }
        return Walk(records, recordOffset, eventOffset, (SpanReads.Read<ulong>(eventBytes, 8) & FAN_FS_ERROR) != 0);
    }

    /// <summary>
    /// The general walk: any order, any record types, every length checked. The first problem is kept,
    /// whether it is a record too short for its type or a length that stops the walk after it.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static EventRecords Walk(ReadOnlySpan<byte> records, int recordOffset, int eventOffset, bool isFsError)
    {
        int fid = 0, error = 0, pidfd = 0, mount = 0, unknown = 0;
        FanotifyParseError problem = default;
        var position = 0;
        while (position < records.Length)
        {
            var rest = records.Length - position;
            if (rest < InfoHeaderLength)
            {
                problem = FirstProblem(problem, recordOffset + position, FanotifyProblem.RecordHeaderTruncated, rest);
                break;
            }
            // struct fanotify_event_info_header { u8 info_type; u8 pad; u16 len; }
            var type = SpanReads.Read<byte>(records, position);
            int length = SpanReads.Read<ushort>(records, position + 2);
            if (length < InfoHeaderLength)
            {
                problem = FirstProblem(problem, recordOffset + position, FanotifyProblem.RecordLengthTooSmall, length);
                break;
            }
            if (length > rest)
            {
                problem = FirstProblem(problem, recordOffset + position, FanotifyProblem.RecordLengthPastEvent, length);
                break;
            }

            if (type == FAN_EVENT_INFO_TYPE_FID && fid == 0)
            {
                if (length < FidRecordFixedLength)
                    problem = FirstProblem(problem, recordOffset + position, FanotifyProblem.RecordTooShortForType, type);
                else if (SpanReads.Read<uint>(records, position + 12) is var handleBytes
                         && (handleBytes > InfoRecord.MaxHandleBytes || handleBytes > (uint)(length - FidRecordFixedLength)))
                    problem = FirstProblem(problem, recordOffset + position, FanotifyProblem.HandleLengthInvalid, handleBytes);
                else
                    fid = position + 1;
            }
            else if (type == FAN_EVENT_INFO_TYPE_ERROR && error == 0)
            {
                if (length >= ErrorRecordLength)
                    error = position + 1;
                else
                    problem = FirstProblem(problem, recordOffset + position, FanotifyProblem.RecordTooShortForType, type);
            }
            else if (type == FAN_EVENT_INFO_TYPE_PIDFD && pidfd == 0)
            {
                if (length >= PidfdRecordLength)
                    pidfd = position + 1;
                else
                    problem = FirstProblem(problem, recordOffset + position, FanotifyProblem.RecordTooShortForType, type);
            }
            else if (type == FAN_EVENT_INFO_TYPE_MNT && mount == 0)
            {
                if (length >= MntRecordLength)
                    mount = position + 1;
                else
                    problem = FirstProblem(problem, recordOffset + position, FanotifyProblem.RecordTooShortForType, type);
            }
            else
            {
                // Unknown types, and repeats of a known type (only the first one is interpreted).
                unknown++;
            }
            position += length;
        }

        if (isFsError && !problem.IsError)
        {
            if (error == 0)
                problem = new FanotifyParseError(eventOffset, FanotifyProblem.MissingErrorRecord, 0);
            else if (fid == 0)
                problem = new FanotifyParseError(eventOffset, FanotifyProblem.MissingFidRecord, 0);
        }
        return new EventRecords(records, recordOffset, fid, error, pidfd, mount, unknown, problem);
    }

    /// <summary>info_type 5 (ERROR), pad 0, len 12, as one little-endian u32.</summary>
    private const uint CanonicalErrorHeader = FAN_EVENT_INFO_TYPE_ERROR | (ErrorRecordLength << 16);

    private static FanotifyParseError FirstProblem(FanotifyParseError problem, int offset, FanotifyProblem kind, long value) =>
        problem.IsError ? problem : new FanotifyParseError(offset, kind, value);
}
