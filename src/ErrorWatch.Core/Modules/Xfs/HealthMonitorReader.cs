using System.Buffers.Binary;
using ErrorWatch.Interop;

namespace ErrorWatch.Modules.Xfs;

// Linux 7.0 XFS_IOC_HEALTH_MONITOR event stream (kernel-abi.md §7.5, fs/xfs/libxfs/xfs_fs.h).
// The domain and type numbers are those of the merged v7 series (Jan 2026): the types were
// renumbered between revisions, so they must be checked against the released 7.0 header.

/// <summary>XFS_HEALTH_MONITOR_DOMAIN_*: what an event is about. Unknown values are kept as the raw number.</summary>
public enum HealthDomain : uint
{
    Mount = 0,          // the monitor or the whole mount: running, lost, unmount, shutdown
    Filesystem = 1,     // mask = XFS_FSOP_GEOM_SICK_*
    Group = 2,          // allocation group: mask = XFS_AG_GEOM_SICK_*, group = agno
    Inode = 3,          // mask = XFS_BS_SICK_*, ino, gen
    RealtimeGroup = 4,  // mask = XFS_RTGROUP_GEOM_SICK_*, group = rgno
    DataDevice = 5,     // media error: daddr, bbcount
    RealtimeDevice = 6,
    LogDevice = 7,
    FileRange = 8,      // file I/O failure: pos, len, ino, gen, error
}

/// <summary>XFS_HEALTH_MONITOR_TYPE_* (v7 series numbering; verify against the 7.0 header). Unknown values are kept raw.</summary>
public enum HealthEventType : uint
{
    Running = 0,       // first event after the monitor opens
    Lost = 1,          // events dropped (queue over 32 KiB); count
    Unmount = 2,       // filesystem unmounted: nothing more will come
    Sick = 3,          // runtime code found the structures corrupt
    Corrupt = 4,       // online fsck found them corrupt
    Healthy = 5,       // online fsck found them good or repaired them
    Shutdown = 6,      // reasons = XFS_HEALTH_SHUTDOWN_*
    MediaError = 7,    // device domains
    BufferedRead = 8,  // file range domain from here on
    BufferedWrite = 9,
    DirectRead = 10,
    DirectWrite = 11,
    DataLost = 12,     // a media error under part of a file
}

public enum HealthMonitorProblem
{
    None,
    /// <summary>Fewer than 64 bytes left: the kernel only returns whole records, so the buffer was cut.</summary>
    TruncatedRecord,
    /// <summary>pad[2] is not zero: a newer layout may be using it. The record is still decoded.</summary>
    NonZeroPad,
}

/// <summary>What went wrong where; <see cref="Offset"/> is the byte offset of the record in the read buffer.</summary>
public readonly record struct HealthMonitorParseError(int Offset, HealthMonitorProblem Problem, long Value)
{
    public bool IsError => Problem != HealthMonitorProblem.None;

    public override string ToString() => Problem switch
    {
        HealthMonitorProblem.None => "no error",
        HealthMonitorProblem.TruncatedRecord => $"offset {Offset}: {Value} trailing bytes, fewer than a {HealthMonitorReader.RecordSize}-byte health event",
        HealthMonitorProblem.NonZeroPad => $"offset {Offset}: health event padding is not zero (0x{Value:x}); newer kernel layout?",
        _ => $"offset {Offset}: {Problem} ({Value})",
    };
}

/// <summary>
/// Walks whole 64-byte struct xfs_health_monitor_event records from one read(2) of the monitor fd,
/// without copying. A partial record stops the walk with <see cref="Error"/>; a non-zero pad is
/// noted in <see cref="Warning"/> (first one only) and the walk goes on. Never throws.
/// </summary>
public ref struct HealthMonitorReader
{
    public const int RecordSize = 64;
    public const int DomainOffset = 0;   // u32
    public const int TypeOffset = 4;     // u32
    public const int TimeOffset = 8;     // u64 ns since the Unix epoch
    public const int UnionOffset = 16;   // 32 bytes, meaning set by domain and type
    public const int PadOffset = 48;     // u64[2], zero

    private readonly ReadOnlySpan<byte> _buffer;
    private int _offset;

    public HealthMonitorReader(ReadOnlySpan<byte> buffer)
    {
        _buffer = buffer;
        _offset = 0;
        Error = default;
        Warning = default;
    }

    /// <summary>Offset of the next unread byte.</summary>
    public readonly int Offset => _offset;

    /// <summary>Set when <see cref="TryRead"/> returned false because the buffer ends inside a record.</summary>
    public HealthMonitorParseError Error { get; private set; }

    /// <summary>The first problem that did not stop the walk (a non-zero pad).</summary>
    public HealthMonitorParseError Warning { get; private set; }

    public readonly bool AtEnd => _offset == _buffer.Length;

    public bool TryRead(out HealthMonitorEvent ev)
    {
        ev = default;
        var remaining = _buffer.Length - _offset;
        if (remaining == 0 || Error.IsError)
            return false;
        if (remaining < RecordSize)
        {
            Error = new HealthMonitorParseError(_offset, HealthMonitorProblem.TruncatedRecord, remaining);
            return false;
        }
        var record = _buffer.Slice(_offset, RecordSize);
        ev = HealthMonitorEvent.Decode(record);
        if (ev.PadNonZero && !Warning.IsError)
        {
            var pad = BinaryPrimitives.ReadUInt64LittleEndian(record.Slice(PadOffset)) | BinaryPrimitives.ReadUInt64LittleEndian(record.Slice(PadOffset + 8));
            Warning = new HealthMonitorParseError(_offset, HealthMonitorProblem.NonZeroPad, (long)pad);
        }
        _offset += RecordSize;
        return true;
    }
}

/// <summary>
/// One decoded struct xfs_health_monitor_event. Union members that the domain and type do not
/// carry are null; for an unknown domain or type nothing is decoded but the raw numbers are kept.
/// </summary>
public readonly record struct HealthMonitorEvent
{
    // XFS_HEALTH_SHUTDOWN_* (shutdown.reasons).
    public const uint ShutdownMetaIoError = 1u << 0;
    public const uint ShutdownLogIoError = 1u << 1;
    public const uint ShutdownForceUnmount = 1u << 2;
    public const uint ShutdownCorruptInCore = 1u << 3;
    public const uint ShutdownCorruptOnDisk = 1u << 4;
    public const uint ShutdownDeviceRemoved = 1u << 5;

    private static readonly string[] ShutdownReasonText =
    [
        "metadata I/O error", "log I/O error", "forced unmount",
        "corrupt in-memory metadata", "corrupt on-disk metadata", "device removed",
    ];

    public HealthDomain Domain { get; init; }
    public HealthEventType Type { get; init; }
    /// <summary>time_ns as sent (<see cref="Time"/> truncates it to 100 ns ticks).</summary>
    public ulong TimeNs { get; init; }
    public DateTimeOffset Time { get; init; }

    public ulong? LostCount { get; init; }
    /// <summary>Sick mask whose meaning depends on <see cref="Domain"/> (fs, AG, rtgroup or inode bits).</summary>
    public uint? Mask { get; init; }
    /// <summary>AG or realtime group number.</summary>
    public uint? Group { get; init; }
    public ulong? Inode { get; init; }
    public uint? Generation { get; init; }
    public uint? ShutdownReasons { get; init; }
    /// <summary>First 512-byte sector of a media error on the device named by <see cref="Domain"/>.</summary>
    public ulong? MediaDaddr { get; init; }
    public ulong? MediaSectors { get; init; }
    public ulong? FilePosition { get; init; }
    public ulong? FileLength { get; init; }
    /// <summary>Positive errno of a failed file I/O.</summary>
    public int? FileError { get; init; }

    /// <summary>pad[2] was not zero (a layout this code does not know may be in use).</summary>
    public bool PadNonZero { get; init; }

    public bool IsKnownDomain => Domain <= HealthDomain.FileRange;
    public bool IsKnownType => Type <= HealthEventType.DataLost;

    /// <summary>Names of <see cref="ShutdownReasons"/> bits, unknown ones as "bit N".</summary>
    public IReadOnlyList<string> ShutdownReasonNames
    {
        get
        {
            if (ShutdownReasons is not { } reasons || reasons == 0)
                return [];
            var names = new List<string>();
            for (var bit = 0; bit < 32; bit++)
            {
                if ((reasons & (1u << bit)) != 0)
                    names.Add(bit < ShutdownReasonText.Length ? ShutdownReasonText[bit] : $"bit {bit}");
            }
            return names;
        }
    }

    /// <summary>The sick mask as structure names for this event's domain.</summary>
    public IReadOnlyList<XfsStructure> Structures => (Domain, Mask) switch
    {
        (_, null) => [],
        (HealthDomain.Filesystem, { } m) => XfsHealthNames.Filesystem(m),
        (HealthDomain.Group, { } m) => XfsHealthNames.Group(m),
        (HealthDomain.RealtimeGroup, { } m) => XfsHealthNames.RealtimeGroup(m),
        (HealthDomain.Inode, { } m) => XfsHealthNames.Inode(m),
        _ => [],
    };

    /// <summary>Decodes one 64-byte record; never throws for any content.</summary>
    public static HealthMonitorEvent Decode(ReadOnlySpan<byte> record)
    {
        if (record.Length < HealthMonitorReader.RecordSize)
            throw new ArgumentException($"a health event is {HealthMonitorReader.RecordSize} bytes", nameof(record));
        var domain = (HealthDomain)U32(record, HealthMonitorReader.DomainOffset);
        var type = (HealthEventType)U32(record, HealthMonitorReader.TypeOffset);
        var timeNs = U64(record, HealthMonitorReader.TimeOffset);
        var e = record.Slice(HealthMonitorReader.UnionOffset, 32);
        var ev = new HealthMonitorEvent
        {
            Domain = domain,
            Type = type,
            TimeNs = timeNs,
            Time = ToTime(timeNs),
            PadNonZero = U64(record, HealthMonitorReader.PadOffset) != 0 || U64(record, HealthMonitorReader.PadOffset + 8) != 0,
        };
        return domain switch
        {
            HealthDomain.Mount => type switch
            {
                HealthEventType.Lost => ev with { LostCount = U64(e, 0) },           // lost { u64 count }
                HealthEventType.Shutdown => ev with { ShutdownReasons = U32(e, 0) }, // shutdown { u32 reasons }
                _ => ev,
            },
            HealthDomain.Filesystem => ev with { Mask = U32(e, 0) },                 // fs { u32 mask }
            HealthDomain.Group or HealthDomain.RealtimeGroup =>
                ev with { Mask = U32(e, 0), Group = U32(e, 4) },                     // group { u32 mask, u32 gno }
            HealthDomain.Inode =>
                ev with { Mask = U32(e, 0), Generation = U32(e, 4), Inode = U64(e, 8) }, // inode { u32 mask, u32 gen, u64 ino }
            HealthDomain.DataDevice or HealthDomain.RealtimeDevice or HealthDomain.LogDevice =>
                ev with { MediaDaddr = U64(e, 0), MediaSectors = U64(e, 8) },        // media { u64 daddr, u64 bbcount }
            HealthDomain.FileRange => ev with                                       // filerange { u64 pos, len, ino; u32 gen, error }
            {
                FilePosition = U64(e, 0),
                FileLength = U64(e, 8),
                Inode = U64(e, 16),
                Generation = U32(e, 24),
                FileError = (int)Math.Min(U32(e, 28), int.MaxValue),
            },
            _ => ev,
        };
    }

    /// <summary>One line for an admin, e.g. "inode 131 gen 7: directory corrupt".</summary>
    public string Describe()
    {
        if (!IsKnownDomain)
            return $"unknown health event: domain {(uint)Domain}, type {TypeName}";
        switch (Domain)
        {
            case HealthDomain.Mount:
                return Type switch
                {
                    HealthEventType.Running => "health monitor running",
                    HealthEventType.Lost => $"{LostCount} health events lost",
                    HealthEventType.Unmount => "filesystem unmounted",
                    HealthEventType.Shutdown => ShutdownReasonNames.Count == 0
                        ? "shutdown: no reason given"
                        : "shutdown: " + string.Join(", ", ShutdownReasonNames),
                    _ => $"filesystem: {TypeName}",
                };
            case HealthDomain.Filesystem:
                return $"filesystem: {StructureText} {TypeName}";
            case HealthDomain.Group:
                return $"AG {Group}: {StructureText} {TypeName}";
            case HealthDomain.RealtimeGroup:
                return $"realtime group {Group}: {StructureText} {TypeName}";
            case HealthDomain.Inode:
                return $"inode {Inode} gen {Generation}: {StructureText} {TypeName}";
            case HealthDomain.DataDevice:
            case HealthDomain.RealtimeDevice:
            case HealthDomain.LogDevice:
                var device = Domain switch
                {
                    HealthDomain.RealtimeDevice => "realtime device ",
                    HealthDomain.LogDevice => "log device ",
                    _ => "",
                };
                var what = Type == HealthEventType.MediaError ? "media error" : TypeName;
                return $"{device}{what} at sector {MediaDaddr}, {MediaSectors} {(MediaSectors == 1 ? "sector" : "sectors")}";
            default: // FileRange
                var range = $"inode {Inode} gen {Generation}: ";
                var span = $"bytes {FilePosition}+{FileLength}";
                if (Type == HealthEventType.DataLost)
                    return range + $"data lost to a media error, {span}";
                var error = FileError is int errno && errno > 0 ? $": {ErrnoTable.Name(errno)}" : "";
                return range + $"{TypeName} failed, {span}{error}";
        }
    }

    private string StructureText
    {
        get
        {
            var structures = Structures;
            return structures.Count == 0 ? "no structures" : string.Join(", ", structures.Select(s => s.Name));
        }
    }

    private string TypeName => Type switch
    {
        HealthEventType.Running => "running",
        HealthEventType.Lost => "lost",
        HealthEventType.Unmount => "unmount",
        HealthEventType.Sick => "sick",
        HealthEventType.Corrupt => "corrupt",
        HealthEventType.Healthy => "healthy",
        HealthEventType.Shutdown => "shutdown",
        HealthEventType.MediaError => "media error",
        HealthEventType.BufferedRead => "buffered read",
        HealthEventType.BufferedWrite => "buffered write",
        HealthEventType.DirectRead => "direct read",
        HealthEventType.DirectWrite => "direct write",
        HealthEventType.DataLost => "data lost",
        _ => $"unknown type {(uint)Type}",
    };

    // Any u64 of nanoseconds fits: ulong.MaxValue ns is in the year 2554, so even garbage cannot throw.
    private static DateTimeOffset ToTime(ulong ns) => DateTimeOffset.UnixEpoch.AddTicks((long)(ns / 100));

    private static uint U32(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b.Slice(offset));
    private static ulong U64(ReadOnlySpan<byte> b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b.Slice(offset));
}
