using System.Text;
using ErrorWatch.Reports;

namespace ErrorWatch.Recovery;

public enum HookKind
{
    /// <summary>An executable run with execve: a hooks.d file, or a rule's Exec=.</summary>
    Exec,
    /// <summary>A systemd unit started through org.freedesktop.systemd1 (a rule's Unit=).</summary>
    Unit,
}

/// <summary>
/// What a rule matches on beyond a hooks.d prefix. Each list that is not empty must match
/// (any of its items); empty lists match everything.
/// </summary>
public sealed record HookFilter
{
    public static readonly HookFilter Any = new();

    /// <summary>UUID, device, mount point, major:minor or label, as [Watch] Filesystems= takes them.</summary>
    public IReadOnlyList<string> Filesystems { get; init; } = [];
    public IReadOnlyList<string> Types { get; init; } = [];
    /// <summary>ERRORWATCH_EVENT words: corruption, io, shutdown, readonly, history, ...</summary>
    public IReadOnlyList<string> Events { get; init; } = [];
    public IReadOnlyList<int> Errnos { get; init; } = [];
    public IReadOnlyList<string> Sources { get; init; } = [];
    public IReadOnlyList<string> Severities { get; init; } = [];

    public bool Matches(CorruptionReport report, string eventWord)
    {
        var fs = report.Filesystem;
        if (Filesystems.Count > 0 && !Filesystems.Any(f => NamesFilesystem(fs, f)))
            return false;
        if (Types.Count > 0 && !Types.Contains(fs.Type))
            return false;
        if (Events.Count > 0 && !Events.Contains(eventWord))
            return false;
        // A report folded under pressure stands for its other errnos too.
        if (Errnos.Count > 0 && !Errnos.Contains(report.Error.Errno)
            && !report.Error.Folded.Keys.Any(name => Interop.ErrnoTable.TryParse(name, out var n) && Errnos.Contains(n)))
            return false;
        if (Sources.Count > 0 && !Sources.Contains(report.Source))
            return false;
        if (Severities.Count > 0 && !Severities.Contains(report.Severity.Word()))
            return false;
        return true;
    }

    /// <summary>The same forms as [Watch] Filesystems=: device, major:minor, label, UUID or any mount point.</summary>
    public static bool NamesFilesystem(FilesystemInfo fs, string pattern) =>
        pattern == fs.Device || pattern == fs.MajorMinor.ToString() || (fs.Label is not null && pattern == fs.Label)
        || (fs.Uuid is { } uuid && Guid.TryParse(pattern, out var p) && p == uuid)
        || fs.Mountpoints.Any(m => m.Bytes.SequenceEqual(Encoding.UTF8.GetBytes(pattern)));

    /// <summary>"type ext4, event corruption, errno EUCLEAN|EBADMSG" (errorwatch hooks list).</summary>
    public string Describe()
    {
        var parts = new List<string>();
        void Add(string what, IEnumerable<string> items)
        {
            var list = items.ToList();
            if (list.Count > 0)
                parts.Add(what + " " + string.Join('|', list));
        }
        Add("filesystem", Filesystems);
        Add("type", Types);
        Add("event", Events);
        Add("errno", Errnos.Select(e => Interop.ErrnoTable.Name(e)));
        Add("source", Sources);
        Add("severity", Severities);
        return string.Join(", ", parts);
    }
}

/// <summary>
/// One recovery hook: a hooks.d executable selected by its name's prefix, or a configuration rule
/// ([Hook "name"]) that runs an executable with arguments or starts a systemd unit.
/// </summary>
public sealed record Hook
{
    /// <summary>The file name (hooks.d) or the rule's name: ERRORWATCH_HOOK, journal field, metric label.</summary>
    public required string Name { get; init; }
    public required HookKind Kind { get; init; }
    /// <summary>Absolute path of the executable (Exec).</summary>
    public string Executable { get; init; } = "";
    /// <summary>Arguments after argv[0], with specifiers (%d %m %u %t %i %e %%) expanded per run.</summary>
    public IReadOnlyList<string> Arguments { get; init; } = [];
    /// <summary>The unit name with specifiers (Unit).</summary>
    public string Unit { get; init; } = "";
    /// <summary>The hooks.d prefix that selects reports (all-, ext4-, corruption-, ...); null for rules.</summary>
    public string? Prefix { get; init; }
    public HookFilter Filter { get; init; } = HookFilter.Any;
    public required RepeatPolicy Repeat { get; init; }
    public required TimeSpan Timeout { get; init; }
    public required TimeSpan KillGrace { get; init; }
    /// <summary>Where it was defined: the file, or FILE:LINE of the rule.</summary>
    public required string Origin { get; init; }

    public bool Matches(CorruptionReport report, string eventWord) =>
        (Prefix is null || HookEvent.PrefixSelects(Prefix, report.Filesystem.Type, eventWord)) && Filter.Matches(report, eventWord);

    /// <summary>What it runs: the path and arguments, or the unit.</summary>
    public string Command => Kind == HookKind.Unit ? "unit " + Unit
        : Arguments.Count == 0 ? Executable : Executable + " " + string.Join(' ', Arguments);

    /// <summary>What it is run for, in words.</summary>
    public string Selects
    {
        get
        {
            var what = Prefix is null ? "" : HookEvent.Describe(Prefix);
            var filter = Filter.Describe();
            return what.Length == 0 ? (filter.Length == 0 ? "every report" : filter) : filter.Length == 0 ? what : what + ", " + filter;
        }
    }
}
