using System.Runtime.InteropServices;
using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Kernel;

/// <summary>
/// Walks the events of one fanotify read(2) buffer without copying or allocating, in the style of
/// Kestrel's and Tmds.DBus.Protocol's span readers. Framing follows FAN_EVENT_OK/FAN_EVENT_NEXT
/// (include/uapi/linux/fanotify.h); every field is read with an unaligned host-order load because
/// event_len is a multiple of 4, not 8 (kernel-abi.md §2.2).
/// </summary>
/// <remarks>
/// A framing error (bad event_len or version) stops the walk: the next event's start is unknown.
/// Problems inside one event's records are reported by <see cref="EventRecords"/> without stopping
/// the walk, since event_len still tells where the next event starts.
/// </remarks>
public ref struct FanotifyEventReader
{
    private readonly ReadOnlySpan<byte> _buffer;
    private int _offset;

    public FanotifyEventReader(ReadOnlySpan<byte> buffer)
    {
        _buffer = buffer;
        _offset = 0;
        Error = default;
    }

    /// <summary>Offset of the next unread byte.</summary>
    public readonly int Offset => _offset;

    /// <summary>Set when <see cref="TryRead"/> returned false because the buffer is malformed.</summary>
    public FanotifyParseError Error { get; private set; }

    /// <summary>True once every byte was consumed as whole events.</summary>
    public readonly bool AtEnd => _offset == _buffer.Length;

    public bool TryRead(out FanotifyEvent ev)
    {
        // _offset only ever grows by a checked event_len, so it stays within the buffer.
        var offset = _offset;
        var remaining = _buffer.Length - offset;
        if (remaining >= FAN_EVENT_METADATA_LEN && !Error.IsError)
        {
            // A fixed-length slice: one bounds check, and none for the constant offsets inside it.
            var metadata = _buffer.Slice(offset, FAN_EVENT_METADATA_LEN);
            var eventLength = SpanReads.Read<uint>(metadata, 0);
            var metadataLength = SpanReads.Read<ushort>(metadata, 6);
            // One test for the common case; the specific reason is worked out below.
            if (eventLength - FAN_EVENT_METADATA_LEN <= (uint)(remaining - FAN_EVENT_METADATA_LEN)
                && SpanReads.Read<byte>(metadata, 4) == FANOTIFY_METADATA_VERSION
                && metadataLength >= FAN_EVENT_METADATA_LEN && metadataLength <= eventLength)
            {
                ev = new FanotifyEvent(_buffer.Slice(offset, (int)eventLength), offset);
                _offset = offset + (int)eventLength;
                return true;
            }
        }
        ev = default;
        return TryReadSlow();
    }

    private bool TryReadSlow()
    {
        var remaining = _buffer.Length - _offset;
        if (remaining == 0 || Error.Problem != FanotifyProblem.None)
            return false;
        if (remaining < FAN_EVENT_METADATA_LEN)
            return Fail(FanotifyProblem.TruncatedMetadata, remaining);

        var rest = _buffer.Slice(_offset);
        var eventLength = MemoryMarshal.Read<uint>(rest);
        var version = rest[4];
        var metadataLength = MemoryMarshal.Read<ushort>(rest.Slice(6));

        if (eventLength < FAN_EVENT_METADATA_LEN)
            return Fail(FanotifyProblem.EventLengthTooSmall, eventLength);
        if (eventLength > (uint)remaining)
            return Fail(FanotifyProblem.EventLengthPastEnd, eventLength);
        if (version != FANOTIFY_METADATA_VERSION)
            return Fail(FanotifyProblem.UnsupportedVersion, version);
        // The fast path accepts every event that passes the checks above, so this is the one left.
        return Fail(FanotifyProblem.MetadataLengthInvalid, metadataLength);
    }

    private bool Fail(FanotifyProblem problem, long value)
    {
        Error = new FanotifyParseError(_offset, problem, value);
        return false;
    }
}

/// <summary>One event: struct fanotify_event_metadata followed by its info records.</summary>
public readonly ref struct FanotifyEvent
{
    internal FanotifyEvent(ReadOnlySpan<byte> bytes, int offset)
    {
        Bytes = bytes;
        Offset = offset;
    }

    /// <summary>The whole event, event_len bytes.</summary>
    public ReadOnlySpan<byte> Bytes { get; }

    /// <summary>Offset of the event in the read buffer (for error messages).</summary>
    public int Offset { get; }

    public uint Length => SpanReads.Read<uint>(Bytes, 0);
    public byte Version => SpanReads.Read<byte>(Bytes, 4);
    public ushort MetadataLength => SpanReads.Read<ushort>(Bytes, 6);
    public ulong Mask => SpanReads.Read<ulong>(Bytes, 8);
    public int Fd => SpanReads.Read<int>(Bytes, 16);
    public int Pid => SpanReads.Read<int>(Bytes, 20);

    public bool IsOverflow => (Mask & FAN_Q_OVERFLOW) != 0;
    public bool IsFsError => (Mask & FAN_FS_ERROR) != 0;
    public bool IsMountEvent => (Mask & (FAN_MNT_ATTACH | FAN_MNT_DETACH)) != 0;

    /// <summary>Iterates the raw info records (kernel order is not guaranteed: dispatch by type).</summary>
    public InfoRecordReader Records => new(Bytes.Slice(MetadataLength), Offset + MetadataLength);

    /// <summary>Collects the records a consumer needs in one pass; never throws.</summary>
    public EventRecords ReadRecords() => EventRecords.Read(this);
}

/// <summary>Walks info records by hdr.len; refuses lengths that would loop or leave the event.</summary>
public ref struct InfoRecordReader
{
    private readonly ReadOnlySpan<byte> _records;
    private readonly int _baseOffset;
    private int _position;

    internal InfoRecordReader(ReadOnlySpan<byte> records, int baseOffset)
    {
        _records = records;
        _baseOffset = baseOffset;
        _position = 0;
        Error = default;
    }

    public FanotifyParseError Error { get; private set; }

    public bool TryRead(out InfoRecord record)
    {
        record = default;
        var remaining = _records.Length - _position;
        if (remaining == 0 || Error.Problem != FanotifyProblem.None)
            return false;
        if (remaining < InfoHeaderLength)
            return Fail(FanotifyProblem.RecordHeaderTruncated, remaining);

        var rest = _records.Slice(_position);
        var length = MemoryMarshal.Read<ushort>(rest.Slice(2));
        if (length < InfoHeaderLength)
            return Fail(FanotifyProblem.RecordLengthTooSmall, length);
        if (length > remaining)
            return Fail(FanotifyProblem.RecordLengthPastEvent, length);

        record = new InfoRecord(rest.Slice(0, length), _baseOffset + _position);
        _position += length;
        return true;
    }

    public readonly GetEnumeratorShim GetEnumerator() => new(this);

    /// <summary>Lets <c>foreach</c> walk records; stops silently on error (check <see cref="Error"/> separately).</summary>
    public ref struct GetEnumeratorShim(InfoRecordReader reader)
    {
        private InfoRecordReader _reader = reader;
        public InfoRecord Current { get; private set; }

        public bool MoveNext()
        {
            var ok = _reader.TryRead(out var rec);
            Current = rec;
            return ok;
        }
    }

    private bool Fail(FanotifyProblem problem, long value)
    {
        Error = new FanotifyParseError(_baseOffset + _position, problem, value);
        return false;
    }
}

/// <summary>One info record, header included.</summary>
public readonly ref struct InfoRecord
{
    internal InfoRecord(ReadOnlySpan<byte> bytes, int offset)
    {
        Bytes = bytes;
        Offset = offset;
    }

    public ReadOnlySpan<byte> Bytes { get; }
    public int Offset { get; }
    public byte Type => Bytes[0];
    public ushort Length => (ushort)Bytes.Length;

    /// <summary>struct fanotify_event_info_fid + struct file_handle (FID, DFID, DFID_NAME...).</summary>
    public bool TryGetFid(out FidRecord fid, out FanotifyProblem problem)
    {
        fid = default;
        if (Bytes.Length < FidRecordFixedLength)
        {
            problem = FanotifyProblem.RecordTooShortForType;
            return false;
        }
        var handleBytes = MemoryMarshal.Read<uint>(Bytes.Slice(12));
        if (handleBytes > MaxHandleBytes || handleBytes > (uint)(Bytes.Length - FidRecordFixedLength))
        {
            problem = FanotifyProblem.HandleLengthInvalid;
            return false;
        }
        fid = new FidRecord(
            new FilesystemId(MemoryMarshal.Read<int>(Bytes.Slice(4)), MemoryMarshal.Read<int>(Bytes.Slice(8))),
            MemoryMarshal.Read<int>(Bytes.Slice(16)),
            Bytes.Slice(FidRecordFixedLength, (int)handleBytes));
        problem = FanotifyProblem.None;
        return true;
    }

    /// <summary>struct fanotify_event_info_error { hdr; __s32 error; __u32 error_count; }.</summary>
    public bool TryGetError(out ErrorRecord error)
    {
        if (Bytes.Length < ErrorRecordLength)
        {
            error = default;
            return false;
        }
        error = new ErrorRecord(MemoryMarshal.Read<int>(Bytes.Slice(4)), MemoryMarshal.Read<uint>(Bytes.Slice(8)));
        return true;
    }

    /// <summary>struct fanotify_event_info_pidfd { hdr; __s32 pidfd; }.</summary>
    public bool TryGetPidfd(out int pidfd)
    {
        pidfd = Bytes.Length >= PidfdRecordLength ? MemoryMarshal.Read<int>(Bytes.Slice(4)) : 0;
        return Bytes.Length >= PidfdRecordLength;
    }

    /// <summary>struct fanotify_event_info_mnt { hdr; (pad 4 on 64-bit) __u64 mnt_id; }.</summary>
    public bool TryGetMountId(out ulong mountId)
    {
        mountId = Bytes.Length >= MntRecordLength ? MemoryMarshal.Read<ulong>(Bytes.Slice(8)) : 0;
        return Bytes.Length >= MntRecordLength;
    }

    /// <summary>MAX_HANDLE_SZ from include/linux/exportfs.h.</summary>
    public const int MaxHandleBytes = 128;
}

/// <summary>The FID record: the fsid cached in the mark at mark time, and the object's file handle.</summary>
public readonly ref struct FidRecord(FilesystemId fsid, int handleType, ReadOnlySpan<byte> handle)
{
    public FilesystemId Fsid { get; } = fsid;
    public int HandleType { get; } = handleType;
    public ReadOnlySpan<byte> Handle { get; } = handle;

    /// <summary>FILEID_INVALID with no bytes: the error concerns the whole filesystem (kernel-abi.md §2.7).</summary>
    public bool IsWholeFilesystem => Handle.Length == 0 || HandleType == FILEID_INVALID;
}

/// <summary>The ERROR record. Kernels before 7.0 pass some ext4 errnos negated: use <see cref="Errno"/>.</summary>
public readonly record struct ErrorRecord(int RawError, uint Count)
{
    /// <summary>abs(error), saturating for int.MinValue so hostile input cannot overflow.</summary>
    public int Errno => RawError >= 0 ? RawError : RawError == int.MinValue ? int.MaxValue : -RawError;
}

/// <summary>__kernel_fsid_t: two ints in host order, as statfs(2) f_fsid.</summary>
public readonly record struct FilesystemId(int Val0, int Val1)
{
    public override string ToString() => $"{(uint)Val0:x8}:{(uint)Val1:x8}";

    public static FilesystemId FromBytes(ReadOnlySpan<byte> eight) =>
        new(MemoryMarshal.Read<int>(eight), MemoryMarshal.Read<int>(eight.Slice(4)));
}

public enum FanotifyProblem : byte
{
    None,
    TruncatedMetadata,
    EventLengthTooSmall,
    EventLengthPastEnd,
    UnsupportedVersion,
    MetadataLengthInvalid,
    RecordHeaderTruncated,
    RecordLengthTooSmall,
    RecordLengthPastEvent,
    RecordTooShortForType,
    HandleLengthInvalid,
    MissingErrorRecord,
    MissingFidRecord,
}

/// <summary>Where and why a buffer could not be parsed; <see cref="Value"/> is the offending field.</summary>
public readonly record struct FanotifyParseError(int Offset, FanotifyProblem Problem, long Value)
{
    public bool IsError => Problem != FanotifyProblem.None;

    public override string ToString() => Problem switch
    {
        FanotifyProblem.None => "no error",
        FanotifyProblem.TruncatedMetadata => $"offset {Offset}: {Value} trailing bytes, fewer than the 24-byte event metadata",
        FanotifyProblem.EventLengthTooSmall => $"offset {Offset}: event_len {Value} is below the 24-byte metadata length",
        FanotifyProblem.EventLengthPastEnd => $"offset {Offset}: event_len {Value} runs past the end of the buffer",
        FanotifyProblem.UnsupportedVersion => $"offset {Offset}: metadata version {Value}, expected {FANOTIFY_METADATA_VERSION}",
        FanotifyProblem.MetadataLengthInvalid => $"offset {Offset}: metadata_len {Value} is below 24 or beyond event_len",
        FanotifyProblem.RecordHeaderTruncated => $"offset {Offset}: {Value} trailing bytes, fewer than a 4-byte info record header",
        FanotifyProblem.RecordLengthTooSmall => $"offset {Offset}: info record len {Value} is below its 4-byte header",
        FanotifyProblem.RecordLengthPastEvent => $"offset {Offset}: info record len {Value} runs past the end of its event",
        FanotifyProblem.RecordTooShortForType => $"offset {Offset}: info record type {Value} is shorter than its fixed layout",
        FanotifyProblem.HandleLengthInvalid => $"offset {Offset}: file handle length {Value} exceeds its record or MAX_HANDLE_SZ (128)",
        FanotifyProblem.MissingErrorRecord => $"offset {Offset}: FAN_FS_ERROR event without an error record (count taken as 1)",
        FanotifyProblem.MissingFidRecord => $"offset {Offset}: FAN_FS_ERROR event without a FID record (object unknown)",
        _ => $"offset {Offset}: {Problem} ({Value})",
    };
}
