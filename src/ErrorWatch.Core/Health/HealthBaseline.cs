using System.Text.Json;
using System.Text.Json.Serialization;
using ErrorWatch.Interop;
using ErrorWatch.Reports;
using Serilog;

namespace ErrorWatch.Health;

/// <summary>What ErrorWatch has already reported about one ext4 filesystem (by UUID), across restarts.</summary>
public sealed class Ext4Baseline
{
    /// <summary>Errors of errors_count that reports have accounted for (fanotify + sysfs + history).</summary>
    [JsonPropertyName("reported")] public ulong Reported { get; set; }
    /// <summary>s_first_error_time when <see cref="Reported"/> was last set: a different one means e2fsck reset the counter.</summary>
    [JsonPropertyName("first_error_time")] public long FirstErrorTime { get; set; }
    /// <summary>EXT2_ERROR_FS without a count was reported (old kernels set the state but no counter).</summary>
    [JsonPropertyName("error_state_reported")] public bool ErrorStateReported { get; set; }
    /// <summary>The mount instance the state below belongs to (boot id, device, first mount id).</summary>
    [JsonPropertyName("instance")] public string? Instance { get; set; }
    /// <summary>"emergency_ro", "shutdown" or null: the last state reported for <see cref="Instance"/>.</summary>
    [JsonPropertyName("state")] public string? State { get; set; }
    [JsonPropertyName("updated")] public DateTimeOffset Updated { get; set; }
}

/// <summary>XFS sick bits already reported for one mount instance (XFS health lives in memory and ends at unmount).</summary>
public sealed class XfsBaseline
{
    [JsonPropertyName("instance")] public string? Instance { get; set; }
    [JsonPropertyName("fs_sick")] public uint FilesystemSick { get; set; }
    [JsonPropertyName("ag_sick")] public Dictionary<uint, uint> GroupSick { get; set; } = new();
    [JsonPropertyName("inode_sick")] public Dictionary<ulong, uint> InodeSick { get; set; } = new();
    [JsonPropertyName("shutdown")] public bool Shutdown { get; set; }
    [JsonPropertyName("updated")] public DateTimeOffset Updated { get; set; }
}

public sealed class BaselineFile
{
    [JsonPropertyName("version")] public int Version { get; set; } = 1;
    [JsonPropertyName("ext4")] public Dictionary<string, Ext4Baseline> Ext4 { get; set; } = new();
    [JsonPropertyName("xfs")] public Dictionary<string, XfsBaseline> Xfs { get; set; } = new();
    /// <summary>The last report the counts above include: the store's later records are counted in at start (a kill can come between a report and a save).</summary>
    [JsonPropertyName("last_report_id")] public string? LastReportId { get; set; }
}

[JsonSerializable(typeof(BaselineFile))]
[JsonSourceGenerationOptions(WriteIndented = true)]
internal sealed partial class BaselineJson : JsonSerializerContext;

/// <summary>
/// The state directory's record of what was already reported, so that a restart reports exactly
/// the errors that happened while ErrorWatch was not running, and nothing twice. Written
/// atomically (temporary file, fsync, rename, fsync of the directory): a crash leaves the old or
/// the new file, never half of one.
/// </summary>
public sealed class HealthBaseline
{
    public const string FileName = "health-baseline.json";

    private readonly string? _directory;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private BaselineFile _file = new();
    private bool _dirty;
    // UUID → the devices of the filesystems with that UUID being watched now (twins: clones, snapshots).
    private readonly Dictionary<string, HashSet<Filesystems.DeviceNumber>> _present = new(StringComparer.Ordinal);

    /// <summary>A baseline kept only in memory (no state directory): nothing survives a restart.</summary>
    public static HealthBaseline InMemory(ILogger? log = null) => new(null, log);

    public HealthBaseline(string? directory, ILogger? log = null)
    {
        _directory = directory;
        _log = log ?? Serilog.Core.Logger.None;
    }

    /// <summary>systemd's $STATE_DIRECTORY (first entry), else /var/lib/errorwatch.</summary>
    public static string DefaultDirectory() => DefaultDirectory(Environment.GetEnvironmentVariable("STATE_DIRECTORY"));

    /// <param name="fromSystemd">$STATE_DIRECTORY: colon-separated when the unit names several.</param>
    public static string DefaultDirectory(string? fromSystemd)
    {
        if (!string.IsNullOrEmpty(fromSystemd))
            return fromSystemd.Split(':')[0];
        return "/var/lib/errorwatch";
    }

    public string? FilePath => _directory is null ? null : Path.Combine(_directory, FileName);

    // No file (a first start, or deleted) or an unreadable one: what the store holds was reported all the same.
    private bool _lost;

    /// <summary>Why the baseline could not be loaded or saved, or null.</summary>
    public string? Problem { get; private set; }

    public bool IsDirty
    {
        get
        {
            lock (_lock)
                return _dirty;
        }
    }

    /// <summary>Reads the file. A missing file is a first start; an unreadable one is set aside and named, never fatal.</summary>
    public void Load()
    {
        if (FilePath is not { } path)
            return;
        lock (_lock)
        {
            try
            {
                AtomicFile.CreateDirectory(_directory!);
                if (!File.Exists(path))
                {
                    _lost = true;
                    return;
                }
                var bytes = File.ReadAllBytes(path);
                _file = JsonSerializer.Deserialize(bytes, BaselineJson.Default.BaselineFile) ?? new BaselineFile();
                if (_file.Version != 1)
                    throw new JsonException($"unknown version {_file.Version}");
            }
            catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException or NotSupportedException)
            {
                var aside = path + ".unreadable-" + DateTime.UtcNow.ToString("yyyyMMddTHHmmssZ");
                Problem = $"{path} is unreadable ({e.Message}); rebuilt from the report store where it has the reports";
                _lost = true;
                _log.Error("Health baseline {Path} is unreadable: {Reason}; moved to {Aside} and starting afresh", path, e.Message, aside);
                try
                {
                    File.Move(path, aside, overwrite: true);
                }
                catch (IOException)
                {
                }
                _file = new BaselineFile();
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="change"/> on the ext4 entry for <paramref name="key"/> under the lock;
    /// with <paramref name="reportId"/>, also records it as the last report counted, in the same step,
    /// so a save never holds one without the other.
    /// </summary>
    public T Ext4<T>(string key, Func<Ext4Baseline, T> change, string? reportId = null)
    {
        lock (_lock)
        {
            if (!_file.Ext4.TryGetValue(key, out var entry))
                _file.Ext4[key] = entry = new Ext4Baseline();
            if (reportId is not null)
                _file.LastReportId = reportId;
            return change(entry);
        }
    }

    /// <summary>A report was published: the next save says the counts include it.</summary>
    public void Accounted(string reportId)
    {
        lock (_lock)
            _file.LastReportId = reportId;
    }

    /// <summary>
    /// Counts in the ext4 errors of reports the store holds after the last one this baseline
    /// included: a daemon killed between storing reports and saving its baseline would otherwise
    /// report them again, as errors nobody announced. Returns the reports counted in.
    /// </summary>
    public int CatchUp(IReportHistory history)
    {
        string? last;
        lock (_lock)
            last = _file.LastReportId;
        var after = new List<ReportFacts>();
        string? newest = null;
        var problems = new List<string>();
        // "": saved before any report was stored, so every stored report is after it. No baseline at all
        // (deleted, or set aside as unreadable): every stored report counts, or its errors would be
        // reported again as history (and fire history- hooks).
        var all = last == "" || last is null && _lost;
        if (last is null && !all)
        {
            // A baseline from before this field: its counts include every stored report already.
            newest = history.NewestId(problems);
        }
        else if (!history.FactsAfter(all ? null : last, facts =>
        {
            newest = facts.Id;
            if (MovesExt4Baseline(facts))
                after.Add(facts);
        }, problems))
        {
            after.Clear();
            newest = null;
            _log.Warning("The last report the health baseline counted ({Id}) is not in the report store; errors stored after it may be reported again", last);
        }
        foreach (var problem in problems)
            _log.Debug("Report store, read for the health baseline: {Problem}", problem);
        foreach (var facts in after)
        {
            var key = Ext4Key(facts.Uuid, facts.MajorMinor);
            lock (_lock)
            {
                if (!_file.Ext4.TryGetValue(key, out var entry))
                    _file.Ext4[key] = entry = new Ext4Baseline();
                entry.Reported += facts.Count;
            }
        }
        lock (_lock)
        {
            // From now on the baseline says which stored reports it holds.
            _file.LastReportId = newest ?? last ?? "";
            _dirty = true;
        }
        if (after.Count > 0 && last is null)
            _log.Warning("Health baseline: none was found (deleted, or unreadable); rebuilt from {Count} stored report(s), so their errors are not reported again", after.Count);
        else if (after.Count > 0)
            _log.Information("Health baseline: counted in {Count} stored report(s) it had not saved yet (the last run ended without saving it)", after.Count);
        return after.Count;
    }

    /// <summary>A stored report that moves an ext4 baseline, as <see cref="Ext4Health"/>.Published counts one.</summary>
    private static bool MovesExt4Baseline(ReportFacts facts) =>
        facts.FsType is "ext4" or "ext3" or "ext2" && facts.Source != ReportSource.Ext4State && facts.Count != 0;

    /// <summary>A filesystem is being watched now: no other filesystem with its UUID takes its entry.</summary>
    public void Present(Guid? uuid, Filesystems.DeviceNumber device)
    {
        if (uuid is not { } u)
            return;
        lock (_lock)
        {
            if (!_present.TryGetValue(u.ToString(), out var devices))
                _present[u.ToString()] = devices = new HashSet<Filesystems.DeviceNumber>();
            devices.Add(device);
        }
    }

    /// <summary>The filesystem is no longer watched (unmounted, excluded).</summary>
    public void Absent(Guid? uuid, Filesystems.DeviceNumber device)
    {
        if (uuid is not { } u)
            return;
        lock (_lock)
        {
            if (_present.TryGetValue(u.ToString(), out var devices))
                devices.Remove(device);
        }
    }

    /// <summary>
    /// The ext4 entry of the filesystem with <paramref name="uuid"/> on <paramref name="device"/>:
    /// "UUID@major:minor", so that two filesystems with one UUID (cloned images, LVM snapshots) each
    /// keep their own counts. Where that entry does not exist yet, the filesystem's entry under another
    /// device number (renumbered at boot, a loop device attached again) or from before devices were in
    /// the key ("UUID") is taken over when exactly one is found that is not the entry of a twin watched
    /// now and, given <paramref name="firstErrorTime"/>, does not name another first error. No UUID:
    /// "dev-major:minor".
    /// </summary>
    public string Ext4Key(Guid? uuid, Filesystems.DeviceNumber device, long? firstErrorTime = null) =>
        KeyOf(f => f.Ext4, uuid, device, e => firstErrorTime is not { } t || e.FirstErrorTime == 0 || e.FirstErrorTime == t);

    /// <summary>The XFS entry, resolved as <see cref="Ext4Key"/> (XFS entries hold one mount's health bits).</summary>
    public string XfsKey(Guid? uuid, Filesystems.DeviceNumber device) => KeyOf(f => f.Xfs, uuid, device, _ => true);

    private string KeyOf<T>(Func<BaselineFile, Dictionary<string, T>> kind, Guid? uuid, Filesystems.DeviceNumber device, Func<T, bool> same)
    {
        if (uuid is not { } u)
            return $"dev-{device}";
        var name = u.ToString();
        var key = $"{name}@{device}";
        lock (_lock)
        {
            var entries = kind(_file);
            if (entries.ContainsKey(key))
                return key;
            var twins = _present.TryGetValue(name, out var devices) ? devices : [];
            string? found = null;
            var count = 0;
            foreach (var (other, entry) in entries)
            {
                var at = other.IndexOf('@');
                var otherUuid = at < 0 ? other : other[..at];
                if (otherUuid != name || !same(entry))
                    continue;
                if (at >= 0 && Filesystems.DeviceNumber.TryParse(other.AsSpan(at + 1), out var otherDevice) && twins.Contains(otherDevice))
                    continue;
                found = other;
                count++;
            }
            if (count == 1)
            {
                entries[key] = entries[found!];
                entries.Remove(found!);
                _dirty = true;
                _log.Debug("Health baseline: {Old} is now {New} (the filesystem's device number changed)", found, key);
            }
            return key;
        }
    }

    /// <summary>Whether an ext4 entry exists (a filesystem seen before).</summary>
    public bool HasExt4(string key)
    {
        lock (_lock)
            return _file.Ext4.ContainsKey(key);
    }

    public T Xfs<T>(string key, Func<XfsBaseline, T> change)
    {
        lock (_lock)
        {
            if (!_file.Xfs.TryGetValue(key, out var entry))
                _file.Xfs[key] = entry = new XfsBaseline();
            return change(entry);
        }
    }

    public void MarkDirty()
    {
        lock (_lock)
            _dirty = true;
    }

    /// <summary>Writes the file if anything changed. Returns false (and logs) when it could not.</summary>
    public bool Save()
    {
        byte[] bytes;
        lock (_lock)
        {
            if (!_dirty)
                return true;
            bytes = JsonSerializer.SerializeToUtf8Bytes(_file, BaselineJson.Default.BaselineFile);
            _dirty = false;
        }
        if (FilePath is not { } path)
            return true;
        try
        {
            AtomicFile.Write(path, bytes);
            if (Problem is not null)
                _log.Information("Saved the health baseline to {Path} again", path);
            Problem = null;
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            lock (_lock)
                _dirty = true;
            var problem = $"cannot write {path}: {e.Message}";
            // Once per failure, not at each retry: on a full disk that was a line every second.
            if (problem != Problem)
                _log.Error("Cannot save the health baseline to {Path}: {Reason}; will retry until it can", path, e.Message);
            Problem = problem;
            return false;
        }
    }
}
