using System.Collections.Immutable;
using System.Text;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Interop;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Reports;

namespace ErrorWatch.Tests.Journal;

/// <summary>Reports built field by field (no kernel, no decoder), so every journal field has a known value.</summary>
internal static class JournalTestReports
{
    public const int EIO = 5, EBADMSG = 74, ESHUTDOWN = 108, EUCLEAN = 117;

    public static readonly Guid Uuid = Guid.Parse("0b1d4e8f-2a3c-4d5e-8f90-a1b2c3d4e5f6");
    public static readonly DateTimeOffset Time = new(2026, 3, 14, 15, 9, 26, TimeSpan.Zero);

    /// <summary>A newline, a tab, an ESC and a byte that is never UTF-8: journald must keep them all.</summary>
    public static readonly byte[] HostilePath = [.. "/srv/data/a\nb\tc\x1b"u8, 0xff, .. "d"u8];

    public static FilesystemInfo Filesystem(DeviceNumber? device = null, params string[] mountpoints) => new()
    {
        Device = "/dev/sdb1",
        MajorMinor = device ?? new DeviceNumber(8, 17),
        Uuid = Uuid,
        Label = "data",
        Type = "ext4",
        Mountpoints = mountpoints.Length == 0 ? [FsPath.FromString("/srv")] : [.. mountpoints.Select(FsPath.FromString)],
        Fsid = "4a3b2c1d:5e6f7a8b",
    };

    public static ErrorInfo Error(int errno, ulong count, ImmutableDictionary<string, ulong>? folded = null)
    {
        ErrnoTable.TryGet(errno, out var name, out var text);
        return new ErrorInfo
        {
            Errno = errno,
            RawErrno = -errno,
            Name = name,
            Description = text,
            Meaning = errno == EUCLEAN ? "metadata corruption" : errno == EBADMSG ? "metadata checksum mismatch" : text,
            Alias = errno == EUCLEAN ? "EFSCORRUPTED" : errno == EBADMSG ? "EFSBADCRC" : null,
            Count = count,
            Folded = folded ?? ImmutableDictionary<string, ulong>.Empty,
        };
    }

    /// <summary>An ext4 corruption in inode 12 with every optional field set.</summary>
    public static CorruptionReport Full(string id, string host = "testhost", byte[]? path = null) => new()
    {
        Id = id,
        Time = Time,
        Host = host,
        Source = "fanotify",
        Category = ErrorCategory.Corruption,
        Severity = Severity.Critical,
        Filesystem = Filesystem(null, "/srv", "/mnt/bind\nsecond line"),
        Error = Error(EUCLEAN, 3),
        Object = new ObjectInfo
        {
            WholeFilesystem = false,
            Inode = 12,
            Generation = 0x1234,
            ParentInode = 2,
            HandleType = 0x81,
            Handle = "0c00000034120000",
            Path = new FsPath(path ?? HostilePath),
            PathError = "may be stale: resolved after the error",
        },
        Decoder = "ext4",
        Details = Ext4Details(),
        Pid = 4242,
        RaisedByErrorWatch = false,
        KernelEvents = 2,
        Finding = null,
    };

    public static ReportDetails Ext4Details()
    {
        var details = new ReportDetails();
        var ext4 = details.Section("ext4");
        ext4.Set("errors_behavior", "continue").Set("errors_count", 7L);
        ext4.Set("last_error", new ReportDetails()
            .Set("time", "2026-03-14T15:09:20Z").Set("function", "ext4_lookup").Set("line", 1812L)
            .Set("inode", 12UL).Set("block", 0UL).Set("code", "EXT4_ERR_EFSCORRUPTED"));
        details.Section("xfs-health").Set("sick", new[] { "bnobt", "cntbt" }).Set("sick_mask", 3UL);
        return details;
    }

    /// <summary>A small report for storm tests: <paramref name="errno"/> × <paramref name="count"/> on <paramref name="device"/>.</summary>
    public static CorruptionReport Small(string id, int errno, ulong count, DeviceNumber? device = null, string host = "testhost",
        Severity severity = Severity.Error, ImmutableDictionary<string, ulong>? folded = null) => new()
    {
        Id = id,
        Time = Time,
        Host = host,
        Source = "fanotify",
        Category = ErrorCategory.Io,
        Severity = severity,
        Filesystem = Filesystem(device),
        Error = Error(errno, count, folded),
        Object = new ObjectInfo { HandleType = 0xff },
        Decoder = "ext4",
    };

    public static string Text(JournalEntry entry, string name) =>
        entry.GetText(name) ?? throw new Xunit.Sdk.XunitException($"field {name} missing; fields: {string.Join(", ", entry.Fields.Select(f => f.Name))}");
}

/// <summary>A clock that moves only when told to.</summary>
internal sealed class ManualTimeProvider(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>An <see cref="IJournal"/> that keeps what it is sent.</summary>
internal sealed class RecordingJournal(TimeProvider? time = null) : IJournal
{
    public List<(DateTimeOffset Time, JournalEntry Entry)> Sent { get; } = new();
    public bool IsAvailable { get; set; } = true;
    public string UnavailableReason { get; set; } = "/run/systemd/journal/socket missing";
    public int Result { get; set; }
    public bool Throw { get; set; }

    public int Send(JournalEntry entry)
    {
        if (Throw)
            throw new InvalidOperationException("broken journal");
        if (Result >= 0)
            Sent.Add(((time ?? TimeProvider.System).GetUtcNow(), entry));
        return Result;
    }

    public IEnumerable<JournalEntry> WithMessageId(string id) => Sent.Select(s => s.Entry).Where(e => e.GetText("MESSAGE_ID") == id);
}

/// <summary>A TextWriter that collects lines (the fallback's stderr).</summary>
internal sealed class LineWriter : StringWriter
{
    public string[] Lines => ToString().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
}
