using System.Collections.ObjectModel;

namespace ErrorWatch.Recovery;

/// <summary>[Hooks]: recovery hooks (docs/hooks.md): the hooks.d directory, limits and defaults, and the [Hook "NAME"] rules.</summary>
public sealed record HooksSettings
{
    // The defaults the configuration table (Configuration/SettingKeys) gives these keys.
    public const string DefaultDirectory = "/etc/errorwatch/hooks.d";
    public const int DefaultMaxConcurrent = 4;
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan DefaultKillGrace = TimeSpan.FromSeconds(10);

    /// <summary>Executables here run when their name's prefix (all-, ext4-, corruption-, ...) selects a report.</summary>
    public string Directory { get; init; } = DefaultDirectory;
    /// <summary>Hook runs at the same time, all hooks and filesystems together.</summary>
    public int MaxConcurrent { get; init; } = DefaultMaxConcurrent;
    /// <summary>How long a run may take (for a unit: until its job is done) before its process group gets SIGTERM.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;
    /// <summary>From SIGTERM to SIGKILL.</summary>
    public TimeSpan KillGrace { get; init; } = DefaultKillGrace;
    /// <summary>The repeat policy of hooks and rules that do not set their own.</summary>
    public RepeatPolicy Repeat { get; init; } = RepeatPolicy.Default;
    /// <summary>[Hook "NAME"] sections, in the order their names first appeared.</summary>
    public IReadOnlyList<HookRuleSettings> Rules { get; init; } = ReadOnlyCollection<HookRuleSettings>.Empty;
    /// <summary>
    /// Capabilities (CAP_KILL, ...) kept in the daemon's bounding set beyond its own three, because
    /// hooks run as root get the bounding set (docs/security.md). Names as in capabilities(7).
    /// </summary>
    public IReadOnlyList<string> Capabilities { get; init; } = [];

    public bool Equals(HooksSettings? other) =>
        other is not null && Directory == other.Directory && MaxConcurrent == other.MaxConcurrent && Timeout == other.Timeout
        && KillGrace == other.KillGrace && Repeat == other.Repeat && Rules.SequenceEqual(other.Rules) && Capabilities.SequenceEqual(other.Capabilities);

    public override int GetHashCode() => HashCode.Combine(Directory, MaxConcurrent, Timeout, KillGrace, Repeat, Rules.Count);
}

/// <summary>
/// A [Hook "NAME"] section: what to run (Exec= or Unit=), for which reports, how often. A section
/// with neither Exec= nor Unit= adjusts the hooks.d executable of the same name instead.
/// </summary>
public sealed record HookRuleSettings
{
    public required string Name { get; init; }
    /// <summary>FILE:LINE of its first section header (messages; not part of equality).</summary>
    public string Origin { get; init; } = "";
    /// <summary>Absolute path, then arguments (no shell: each item is one argv entry).</summary>
    public IReadOnlyList<string> Exec { get; init; } = ReadOnlyCollection<string>.Empty;
    public string? Unit { get; init; }
    public IReadOnlyList<string> Filesystems { get; init; } = ReadOnlyCollection<string>.Empty;
    public IReadOnlyList<string> Types { get; init; } = ReadOnlyCollection<string>.Empty;
    public IReadOnlyList<string> Events { get; init; } = ReadOnlyCollection<string>.Empty;
    /// <summary>Names (EUCLEAN), aliases (EFSCORRUPTED) or numbers, as written.</summary>
    public IReadOnlyList<string> Errnos { get; init; } = ReadOnlyCollection<string>.Empty;
    public IReadOnlyList<string> Sources { get; init; } = ReadOnlyCollection<string>.Empty;
    public IReadOnlyList<string> Severities { get; init; } = ReadOnlyCollection<string>.Empty;
    /// <summary>null: [Hooks] Repeat=.</summary>
    public RepeatPolicy? Repeat { get; init; }
    /// <summary>null: [Hooks] Timeout=.</summary>
    public TimeSpan? Timeout { get; init; }

    public bool Equals(HookRuleSettings? other) =>
        other is not null && Name == other.Name && Exec.SequenceEqual(other.Exec) && Unit == other.Unit
        && Filesystems.SequenceEqual(other.Filesystems) && Types.SequenceEqual(other.Types) && Events.SequenceEqual(other.Events)
        && Errnos.SequenceEqual(other.Errnos) && Sources.SequenceEqual(other.Sources) && Severities.SequenceEqual(other.Severities)
        && Repeat == other.Repeat && Timeout == other.Timeout;

    public override int GetHashCode() => Name.GetHashCode(StringComparison.Ordinal);
}
