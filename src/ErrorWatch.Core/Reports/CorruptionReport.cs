using System.Collections.Immutable;
using System.Runtime.CompilerServices;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;

namespace ErrorWatch.Reports;

public enum Severity
{
    /// <summary>Corruption or shutdown: data is at risk now (journald priority 2).</summary>
    Critical,
    /// <summary>I/O and other errors (priority 3).</summary>
    Error,
    /// <summary>History and lost-event notices (priority 4).</summary>
    Warning,
}

public static class SeverityNames
{
    /// <summary>The word every output uses: critical, error, warning (no string built per report).</summary>
    public static string Word(this Severity severity) => severity switch
    {
        Severity.Critical => "critical",
        Severity.Error => "error",
        Severity.Warning => "warning",
        _ => severity.ToString().ToLowerInvariant(),
    };
}

/// <summary>One filesystem error as ErrorWatch reports it: what, where, which file, how many.</summary>
public sealed record CorruptionReport
{
    /// <summary>Unique, time-ordered (UUIDv7).</summary>
    public required string Id { get; init; }
    public required DateTimeOffset Time { get; init; }
    public required string Host { get; init; }
    /// <summary>Where the error was learnt: fanotify, ext4-sysfs, ext4-superblock, ext4-state, xfs-health, xfs-health-monitor.</summary>
    public required string Source { get; init; }
    public required ErrorCategory Category { get; init; }
    public required Severity Severity { get; init; }
    public required FilesystemInfo Filesystem { get; init; }
    public required ErrorInfo Error { get; init; }
    public required ObjectInfo Object { get; init; }
    public required string Decoder { get; init; }
    public ReportDetails Details { get; init; } = new();
    /// <summary>Process the kernel named (meaningless on 7.0+, where errors come from a kworker).</summary>
    public int Pid { get; init; }
    /// <summary>True when the error was raised by ErrorWatch itself (decoding a corrupt inode).</summary>
    public bool RaisedByErrorWatch { get; init; }
    /// <summary>Kernel events folded into this report (more than 1 only under pressure).</summary>
    public int KernelEvents { get; init; } = 1;
    /// <summary>Problems met while parsing the event (the report is still made).</summary>
    public string? ParseProblem { get; init; }
    /// <summary>What a native health source found, in words ("AG 0 inode btree is sick"); null for fanotify reports.</summary>
    public string? Finding { get; init; }
    /// <summary>Seconds from read(2) to this report being built.</summary>
    public double DecodeSeconds { get; init; }

    public string EventName => EventNameOf(Category);

    /// <summary>The word for a category in reports, journal fields and metrics.</summary>
    public static string EventNameOf(ErrorCategory category) => category switch
    {
        ErrorCategory.Corruption => "corruption",
        ErrorCategory.Io => "io",
        ErrorCategory.Shutdown => "shutdown",
        ErrorCategory.ReadOnly => "readonly",
        ErrorCategory.Resource => "resource",
        ErrorCategory.EventsLost => "events-lost",
        _ => "other",
    };

    /// <summary>One line an admin understands, e.g. "ext4 /dev/sdb1 (/srv) reports metadata corruption (EUCLEAN) in inode 12 (/srv/dir), 3 errors".</summary>
    public string Summary
    {
        get
        {
            var where = Filesystem.Mountpoints.Length > 0 ? $" ({Filesystem.Mountpoints[0].Escaped})" : "";
            if (Category == ErrorCategory.EventsLost)
                return $"{Filesystem.Type} {Filesystem.Device}{where}: {Finding ?? Error.Meaning}";
            if (Finding is { } finding)
            {
                var file = Object.Path is { } fp ? $" ({fp.Escaped})" : "";
                return $"{Filesystem.Type} {Filesystem.Device}{where}: {finding}{file} [{Source}]";
            }
            var what = Object.Inode is { } ino
                ? $" in inode {ino}" + (Object.Path is { } p ? $" ({p.Escaped})" : "")
                : Object.WholeFilesystem ? " (whole filesystem)" : $" in a file with an undecodable handle (type 0x{Object.HandleType:x})";
            var count = Error.Count == 1 ? "1 error" : $"{Error.Count} errors";
            return $"{Filesystem.Type} {Filesystem.Device}{where} reports {Error.Meaning} ({Error.Name}{(Error.Alias is { } a ? "/" + a : "")}){what}, {count}";
        }
    }
}

public sealed record FilesystemInfo
{
    public required string Device { get; init; }
    public required DeviceNumber MajorMinor { get; init; }
    public Guid? Uuid { get; init; }
    public string? Label { get; init; }
    public required string Type { get; init; }
    public required ImmutableArray<FsPath> Mountpoints { get; init; }
    public required string Fsid { get; init; }

    // One per superblock until its mounts change, rather than sorted and formatted anew for each of a
    // storm's reports on the decode thread (docs/performance.md, latency).
    private static readonly ConditionalWeakTable<Superblock, Made> ForSuperblock = new();
    private sealed record Made(ImmutableArray<MountEntry> Mounts, FilesystemInfo Info);

    public static FilesystemInfo From(Superblock sb)
    {
        var mounts = sb.Mounts;
        if (ForSuperblock.TryGetValue(sb, out var made) && made.Mounts == mounts)
            return made.Info;
        var info = new FilesystemInfo
        {
            Device = sb.DevicePath,
            MajorMinor = sb.Device,
            Uuid = sb.Uuid,
            Label = sb.Label,
            Type = sb.FsType,
            Mountpoints = [.. sb.MountsByPreference.Select(m => m.MountPoint)],
            Fsid = sb.Fsid.ToString(),
        };
        ForSuperblock.AddOrUpdate(sb, new Made(mounts, info));
        return info;
    }
}

public sealed record ErrorInfo
{
    /// <summary>abs(error) as sent by the kernel.</summary>
    public required int Errno { get; init; }
    /// <summary>The value in the event, sign included (negative from ext4 std_error before 7.0).</summary>
    public required int RawErrno { get; init; }
    public required string Name { get; init; }
    public required string Description { get; init; }
    /// <summary>What the filesystem means by it ("metadata checksum mismatch (EFSBADCRC)").</summary>
    public required string Meaning { get; init; }
    /// <summary>The filesystem's name for the errno, e.g. EFSCORRUPTED, or null.</summary>
    public string? Alias { get; init; }
    public required ulong Count { get; init; }
    /// <summary>Under pressure, errors of other errnos folded into this report, by errno name.</summary>
    public ImmutableDictionary<string, ulong> Folded { get; init; } = ImmutableDictionary<string, ulong>.Empty;

    /// <summary>Errors by errno name: the folded split when there is one (its parts sum to Count), else Name × Count.</summary>
    public IEnumerable<KeyValuePair<string, ulong>> ByErrno => Folded.IsEmpty ? [new(Name, Count)] : Folded;
}

public sealed record ObjectInfo
{
    /// <summary>"filesystem" for whole-fs errors, "inode" for a decoded handle, "unknown" for a file whose handle could not be decoded.</summary>
    public string Scope => Inode is not null ? "inode" : WholeFilesystem ? "filesystem" : "unknown";
    public bool WholeFilesystem { get; init; } = true;
    public ulong? Inode { get; init; }
    public uint? Generation { get; init; }
    public ulong? ParentInode { get; init; }
    public int HandleType { get; init; }
    public string Handle { get; init; } = "";
    public FsPath? Path { get; init; }
    /// <summary>The path was taken out for an audience that may not see it (D-Bus signals: docs/security.md).</summary>
    public bool PathWithheld { get; init; }
    /// <summary>Why there is no path (or why it may be stale).</summary>
    public string? PathError { get; init; }
    public bool Deleted { get; init; }
    public string? HandleProblem { get; init; }
}
