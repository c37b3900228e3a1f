using System.Text;
using System.Text.Json;
using ErrorWatch.Filesystems;
using ErrorWatch.Interop;
using ErrorWatch.Watching;

namespace ErrorWatch.Daemon;

/// <summary>What this kernel and this process can do, and what is and is not watched, for admins to read at startup.</summary>
public sealed record Capabilities
{
    public required string KernelRelease { get; init; }
    public required Version? KernelVersion { get; init; }
    public required string FsErrorMarks { get; init; }
    public required bool FsErrorMarksAccepted { get; init; }
    public required string MountSource { get; init; }
    public required string MountTracking { get; init; }
    public required bool PathResolution { get; init; }
    public required string MaxUserGroups { get; init; }
    public required string MaxQueuedEvents { get; init; }
    public required IReadOnlyList<string> Notes { get; init; }
    public required IReadOnlyList<Superblock> Watched { get; init; }
    public required IReadOnlyList<SkippedFilesystem> Skipped { get; init; }
    public required IReadOnlyDictionary<string, int> OtherTypes { get; init; }
    /// <summary>Per watched filesystem, where its native error state is read from.</summary>
    public IReadOnlyDictionary<Superblock, string> Health { get; init; } = new Dictionary<Superblock, string>();
    /// <summary>Where kernel log lines come from and why, for people.</summary>
    public string KernelLog { get; init; } = "";
    /// <summary>"/dev/kmsg", "journal", or null when none is read.</summary>
    public string? KernelLogSource { get; init; }
    public string StateFile { get; init; } = "";
    /// <summary>The process's effective capabilities (CapEff of /proc/self/status).</summary>
    public CapabilitySet Held { get; init; }

    public static Version? ParseKernelVersion(string release)
    {
        var end = 0;
        while (end < release.Length && (char.IsDigit(release[end]) || release[end] == '.'))
            end++;
        return Version.TryParse(release[..end].TrimEnd('.'), out var v) ? v : null;
    }

    public static string ReadKernelRelease()
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/osrelease").Trim();
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    /// <summary>CAP_DAC_READ_SEARCH (bit 2) in CapEff: needed by open_by_handle_at.</summary>
    public static bool HasDacReadSearch()
    {
        try
        {
            var line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapEff:", StringComparison.Ordinal));
            return line is not null && (Convert.ToUInt64(line[7..].Trim(), 16) & (1UL << 2)) != 0;
        }
        catch (IOException)
        {
            return false;
        }
    }

    internal static Capabilities Collect(FilesystemInventory inventory, MountTracker tracker, Health.HealthLoop health)
    {
        var release = ReadKernelRelease();
        var version = ParseKernelVersion(release);
        var notes = new List<string>();
        var markResult = inventory.FsErrorMarkResult;
        var marks = markResult switch
        {
            0 => "accepted",
            -1 => "not tried (no ext4/XFS filesystem to mark yet)",
            _ => $"refused: {FilesystemInventory.DescribeMarkFailure(markResult)}",
        };
        if (version is null)
            notes.Add($"unrecognised kernel release '{release}': features are probed, not assumed");
        else if (version < new Version(5, 16))
            notes.Add($"Linux {version} predates FAN_FS_ERROR (5.16); only backported stable kernels (5.10.220+, 5.15.154+) may report");
        if (version is not null && version < new Version(7, 0))
            notes.Add($"XFS reports errors through fanotify only from Linux 7.0; on {version} ErrorWatch reads XFS's own health bits and shutdown state instead (source xfs-health)");
        if (version is not null && version >= new Version(6, 6))
            notes.Add("ext4 mounted errors=remount-ro (or aborted) reports only its first error through fanotify (6.6+); the read-only transition is reported (ext4-state) and later errors come from errors_count (ext4-sysfs)");
        if (health.Baseline.Problem is { } baselineProblem)
            notes.Add(baselineProblem);
        if (tracker.FanotifyProblem is { } mountProblem)
            notes.Add(mountProblem + "; following /proc/self/mountinfo instead");
        if (!HasDacReadSearch())
            notes.Add("no CAP_DAC_READ_SEARCH: file paths cannot be resolved, inode numbers only");
        if (health.KernelLogNote is { } kernelLogNote)
            notes.Add(kernelLogNote);
        return new Capabilities
        {
            KernelRelease = release,
            KernelVersion = version,
            FsErrorMarks = marks,
            FsErrorMarksAccepted = markResult == 0,
            MountSource = inventory.Source == Filesystems.MountSource.Statmount ? "statmount/listmount" : "/proc/self/mountinfo",
            MountTracking = tracker.Mode == Watching.MountTracking.FanotifyMountNamespace ? "fanotify FAN_MNT_ATTACH/DETACH" : "/proc/self/mountinfo POLLPRI",
            PathResolution = HasDacReadSearch(),
            MaxUserGroups = FilesystemInventory.ReadSysctl("max_user_groups"),
            MaxQueuedEvents = FilesystemInventory.ReadSysctl("max_queued_events"),
            Notes = notes,
            Watched = inventory.Watches.Select(w => w.Superblock).ToList(),
            Skipped = inventory.Skipped,
            OtherTypes = inventory.OtherTypes,
            Health = health.Describe(),
            KernelLog = DescribeKernelLog(health.KernelLogSource, health.KernelLogProblem),
            KernelLogSource = health.KernelLogSource,
            StateFile = health.Baseline.FilePath ?? "none (in memory)",
            Held = CapabilitySet.OfStatus("/proc/self/status", "CapEff"),
        };
    }

    /// <summary>Which kernel log is read, and why not /dev/kmsg when it is not.</summary>
    internal static string DescribeKernelLog(string? source, string? problem) => source switch
    {
        null => $"not read: {problem}",
        "journal" => $"the journal's kernel lines (_TRANSPORT=kernel), as /dev/kmsg is not read ({problem}); lines trigger checks, facts come from the kernel's own records",
        _ => $"{source} (lines trigger checks; facts come from the kernel's own records)",
    };

    public void WriteJson(Utf8JsonWriter w)
    {
        w.WriteStartObject();
        w.WriteString("type", "capabilities");
        w.WriteString("kernel", KernelRelease);
        w.WriteString("fs_error_marks", FsErrorMarks);
        w.WriteString("mount_source", MountSource);
        w.WriteString("mount_tracking", MountTracking);
        w.WriteBoolean("path_resolution", PathResolution);
        w.WriteString("max_user_groups", MaxUserGroups);
        w.WriteString("max_queued_events", MaxQueuedEvents);
        w.WriteString("kernel_log", KernelLog);
        if (KernelLogSource is { } kernelLogSource) w.WriteString("kernel_log_source", kernelLogSource); else w.WriteNull("kernel_log_source");
        w.WriteString("state_file", StateFile);
        w.WriteString("held_capabilities", Held.ToString());
        w.WriteStartArray("watched");
        foreach (var sb in Watched)
        {
            w.WriteStartObject();
            w.WriteString("device", sb.DevicePath);
            w.WriteString("major_minor", sb.Device.ToString());
            w.WriteString("type", sb.FsType);
            if (sb.Uuid is { } uuid) w.WriteString("uuid", uuid.ToString()); else w.WriteNull("uuid");
            if (Health.TryGetValue(sb, out var health)) w.WriteString("health", health); else w.WriteNull("health");
            w.WriteStartArray("mountpoints");
            foreach (var m in sb.Mounts)
                w.WriteStringValue(m.MountPoint.TextOrEscaped);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("skipped");
        foreach (var s in Skipped)
        {
            w.WriteStartObject();
            w.WriteString("major_minor", s.Device.ToString());
            w.WriteString("type", s.FsType);
            w.WriteString("mountpoint", s.MountPoint);
            w.WriteString("reason", s.Reason);
            if (s.Errno != 0)
                w.WriteString("errno", ErrnoTable.Name(s.Errno));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("unsupported_types");
        foreach (var (type, count) in OtherTypes.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            w.WriteNumber(type, count);
        w.WriteEndObject();
        w.WriteStartArray("notes");
        foreach (var note in Notes)
            w.WriteStringValue(note);
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public string ToText()
    {
        var sb = new StringBuilder();
        sb.AppendLine($"ErrorWatch on Linux {KernelRelease}");
        sb.AppendLine($"  FAN_FS_ERROR marks: {FsErrorMarks}");
        sb.AppendLine($"  mounts: {MountSource}, tracked by {MountTracking}");
        sb.AppendLine($"  path resolution: {(PathResolution ? "yes (CAP_DAC_READ_SEARCH)" : "no")}");
        sb.AppendLine($"  fanotify limits: max_user_groups={MaxUserGroups} max_queued_events={MaxQueuedEvents}");
        sb.AppendLine($"  kernel log: {KernelLog}");
        sb.AppendLine($"  state: {StateFile}");
        sb.AppendLine($"  capabilities: {Held}");
        sb.AppendLine($"  watching {Watched.Count} filesystem(s):");
        foreach (var s in Watched)
        {
            sb.AppendLine($"    {s.FsType,-5} {s.DevicePath} ({s.Device}) {string.Join(' ', s.Mounts.Select(m => m.MountPoint.Escaped))} uuid={s.Uuid?.ToString() ?? "?"}");
            if (Health.TryGetValue(s, out var health))
                sb.AppendLine($"          health: {health}");
        }
        foreach (var s in Skipped)
            sb.AppendLine($"    not watched: {s.FsType} {s.Device} at {s.MountPoint}: {s.Reason}");
        if (OtherTypes.Count > 0)
            sb.AppendLine($"  not ext4/XFS, not watched: {string.Join(", ", OtherTypes.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key}×{kv.Value}"))}");
        foreach (var note in Notes)
            sb.AppendLine($"  note: {note}");
        return sb.ToString();
    }
}
