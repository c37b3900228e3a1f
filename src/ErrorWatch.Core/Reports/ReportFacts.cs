using ErrorWatch.Filesystems;

namespace ErrorWatch.Reports;

/// <summary>
/// The few facts of a report that totals and baselines are made of: which filesystem, which
/// source and event, how many errors. Taken from a live report (<see cref="Of"/>) or read from a
/// stored one without building the whole report (<see cref="ReportJson.ReadFacts"/>: the ledger
/// reads every stored report at start).
/// </summary>
public readonly record struct ReportFacts(
    string Id, DateTimeOffset Time, string Source, string Event, string FsType, Guid? Uuid, DeviceNumber MajorMinor, ulong Count)
{
    /// <summary>The filesystem as the ledger and acknowledgements key it (<see cref="KeyOf"/>).</summary>
    public string FilesystemKey => KeyOf(Uuid?.ToString(), MajorMinor.ToString());

    /// <summary>A filesystem's key: UUID and device number together ("-" for no UUID), so twins with one UUID stay apart.</summary>
    public static string KeyOf(string? uuid, string majorMinor) => $"{uuid ?? "-"}/{majorMinor}";

    public static ReportFacts Of(CorruptionReport r) =>
        new(r.Id, r.Time, r.Source, r.EventName, r.Filesystem.Type, r.Filesystem.Uuid, r.Filesystem.MajorMinor, r.Error.Count);
}
