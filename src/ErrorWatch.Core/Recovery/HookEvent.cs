using ErrorWatch.Reports;

namespace ErrorWatch.Recovery;

/// <summary>
/// The event word a hook sees in ERRORWATCH_EVENT, and the hooks.d file name prefixes that select
/// reports by it, ZED-style (zedlets are chosen by the event class in their name).
/// </summary>
public static class HookEvent
{
    public const string History = "history";
    public const string Test = "test";

    /// <summary>The words rules may name in Events= (the report's event, or history).</summary>
    public static readonly string[] Words = ["corruption", "io", "shutdown", "readonly", History, "resource", "other", "events-lost"];

    /// <summary>hooks.d prefixes: every report, a filesystem type, or an event word.</summary>
    public static readonly string[] Prefixes = ["all-", "ext4-", "xfs-", "corruption-", "io-", "shutdown-", "readonly-", "history-"];

    /// <summary>The ext4 driver handles ext2 and ext3 mounts too, and reports them the same way.</summary>
    private static readonly string[] Ext4Types = ["ext4", "ext3", "ext2"];

    /// <summary>
    /// history for errors the ext4 superblock recorded while ErrorWatch was not watching (source
    /// ext4-superblock); otherwise the report's event (corruption, io, shutdown, readonly, ...).
    /// </summary>
    public static string Of(CorruptionReport report) =>
        report.Source == "ext4-superblock" ? History : report.EventName;

    /// <summary>The prefix of a hooks.d file name, or null when it has none of <see cref="Prefixes"/>.</summary>
    public static string? PrefixOf(string fileName) =>
        Array.Find(Prefixes, p => fileName.StartsWith(p, StringComparison.Ordinal) && fileName.Length > p.Length);

    /// <summary>Whether a hooks.d prefix selects a report of filesystem <paramref name="fsType"/> and event <paramref name="eventWord"/>.</summary>
    public static bool PrefixSelects(string prefix, string fsType, string eventWord) => prefix switch
    {
        "all-" => true,
        "ext4-" => Ext4Types.Contains(fsType),
        "xfs-" => fsType == "xfs",
        _ => prefix[..^1] == eventWord,
    };

    /// <summary>What a prefix selects, in words (errorwatch hooks list).</summary>
    public static string Describe(string prefix) => prefix switch
    {
        "all-" => "every report",
        "ext4-" => "ext4 (and ext2/ext3) filesystems",
        "xfs-" => "XFS filesystems",
        _ => $"{prefix[..^1]} reports",
    };
}
