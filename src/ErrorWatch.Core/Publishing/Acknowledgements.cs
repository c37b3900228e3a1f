using System.Text.Json;
using System.Text.Json.Serialization;
using ErrorWatch.Store;
using Serilog;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing;

/// <summary>
/// Per filesystem, the newest report id an admin acknowledged (Acknowledge(id) covers that report
/// and every earlier one: report ids are time-ordered UUIDv7s, so ordinal order is time order).
/// Kept in the state directory so that a restart does not turn acknowledged filesystems red again.
/// </summary>
public sealed class Acknowledgements
{
    public const string FileName = "acknowledged.json";
    private readonly string? _path;
    private readonly ILogger _log;
    private readonly Dictionary<string, string> _latest = new(StringComparer.Ordinal);

    public Acknowledgements(string? stateDirectory, ILogger log)
    {
        _path = stateDirectory is null ? null : Path.Combine(stateDirectory, FileName);
        _log = log;
        Load();
    }

    public string? Latest(string filesystemKey) => _latest.GetValueOrDefault(filesystemKey);

    public static bool Covers(string? acknowledged, string? reportId) =>
        reportId is null || (acknowledged is not null && string.CompareOrdinal(reportId, acknowledged) <= 0);

    /// <summary>Records the acknowledgement durably; false (and logged) when the file cannot be written.</summary>
    public bool Acknowledge(string filesystemKey, string reportId)
    {
        if (Covers(Latest(filesystemKey), reportId))
            return true;
        _latest[filesystemKey] = reportId;
        if (_path is null)
            return true;
        try
        {
            AtomicFile.Write(_path, JsonSerializer.SerializeToUtf8Bytes(_latest, AcknowledgementsJson.Default.DictionaryStringString));
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Error("Cannot save acknowledgements to {Path}: {Reason}", _path, e.Message);
            return false;
        }
    }

    private void Load()
    {
        if (_path is null || !File.Exists(_path))
            return;
        try
        {
            var loaded = JsonSerializer.Deserialize(File.ReadAllBytes(_path), AcknowledgementsJson.Default.DictionaryStringString);
            foreach (var (key, id) in loaded ?? new())
                _latest[key] = id;
        }
        catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
        {
            // A damaged file costs the acknowledgements, never the service.
            _log.Error("Ignoring {Path}: {Reason}; every filesystem with reports shows as unacknowledged", _path, e.Message);
        }
    }
}

[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class AcknowledgementsJson : JsonSerializerContext;
