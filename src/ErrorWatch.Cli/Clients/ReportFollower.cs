using ErrorWatch.Bus;
using ErrorWatch.Publishing.DBus;
using Serilog;

namespace ErrorWatch.Cli.Clients;

/// <summary>
/// Follows ErrorWatch's ReportAdded signals on one bus for as long as it runs: through the service
/// leaving and coming back (NameOwnerChanged) and through the bus connection dropping (its
/// <see cref="BusLoop"/> reconnects with backoff), saying each of these on the log.
/// Reports are handed over on the loop's thread, one at a time, in the order the service sent them.
/// </summary>
public sealed class ReportFollower : IDisposable
{
    private readonly string _label;
    private readonly ILogger _log;
    private readonly Action<AddedReport> _onReport;
    private readonly BusLoop _loop;
    private readonly BusSignalHandler _reports;
    private readonly BusSignalHandler _owners;

    // Loop thread only: the service's unique name while it runs.
    private string? _owner;

    /// <param name="bus">"system", "session" or a bus address.</param>
    public ReportFollower(string bus, ILogger log, Action<AddedReport> onReport)
    {
        _label = ErrorWatchClient.Describe(bus);
        _log = log;
        _onReport = onReport;
        _reports = new BusSignalHandler(OnReportAdded, e => _log.Warning("A ReportAdded signal could not be read: {Reason}", e.Message));
        _owners = new BusSignalHandler(OnOwnerChanged, e => _log.Warning("A NameOwnerChanged signal could not be read: {Reason}", e.Message));
        var loopName = _label.StartsWith("the ", StringComparison.Ordinal) ? _label[4..] : "bus";
        _loop = new BusLoop(loopName, () => BusConnection.Resolve(bus), OnConnect, () => _owner = null, log);
    }

    public void Start() => _loop.Start();

    public void Stop(TimeSpan timeout) => _loop.Stop(timeout);

    private void OnConnect(BusConnection bus)
    {
        // Matches first, then the owner: nothing sent in between is missed.
        _reports.Match(bus, BusNames.Service, BusNames.RootPath, BusNames.ManagerInterface, "ReportAdded");
        _owners.MatchOwnerChanges(bus, BusNames.Service);
        var client = new ErrorWatchClient(bus, _label);
        _owner = client.NameOwner(BusNames.Service);
        if (_owner is null)
        {
            _log.Warning("{NotRunning}; waiting for it", ErrorWatchClient.NotRunning(_label));
            return;
        }
        _log.Information("Following the reports of ErrorWatch {Version} on {Bus}", VersionOf(client), _label);
    }

    private void OnOwnerChanged(BusMessage signal)
    {
        var name = signal.ReadString();
        var oldOwner = signal.ReadString();
        var newOwner = signal.ReadString();
        if (name != BusNames.Service)
            return;
        _owner = newOwner.Length == 0 ? null : newOwner;
        if (newOwner.Length == 0)
            _log.Warning("ErrorWatch left {Bus}; waiting for it to come back", _label);
        else
            _log.Information("ErrorWatch {Again} on {Bus}; following its reports", oldOwner.Length == 0 ? "is back" : "was replaced", _label);
    }

    private void OnReportAdded(BusMessage signal)
    {
        // The bus daemon routes only the owner's signals to this match; another sender is not ErrorWatch.
        if (_owner is not null && signal.Sender != _owner)
            return;
        _onReport(AddedReport.Read(signal));
    }

    private static string VersionOf(ErrorWatchClient client)
    {
        try
        {
            return client.GetStatus().Version;
        }
        catch (BusException)
        {
            return "(version unknown)";
        }
    }

    public void Dispose()
    {
        _loop.Dispose();
        // The loop has closed its connection, and the matches with it.
        _reports.Dispose();
        _owners.Dispose();
    }
}
