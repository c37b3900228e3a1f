using System.Text.Json;
using ErrorWatch.Bus;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Reports;
using ErrorWatch.Store;
using ErrorWatch.Watching;
using Serilog;

namespace ErrorWatch.Publishing.DBus;

/// <summary>
/// ErrorWatch on the bus (docs/dbus-api.md): the Manager object with the report history, one
/// Filesystem object per watched filesystem under an ObjectManager, and ReportAdded signals.
/// Reports arrive on the decode thread and are handed to the bus thread, which owns every bit of
/// bus-visible state; a lost bus costs nothing but signals (the store has every report).
/// </summary>
public sealed class BusService : IReportSink, IBusObject, Microsoft.Extensions.Hosting.IHostedService, IDisposable
{
    private const uint DefaultMax = 1000, MaxMax = 10_000;
    /// <summary>
    /// GetReports stops adding reports once they add up to this much JSON (the report that crosses
    /// it is the last): a{sv} takes up to about three times the JSON's size, and the system bus
    /// drops messages over 32 MiB, so a reply stays well below that however large the reports are.
    /// </summary>
    public const int ReplyBudgetBytes = 4 << 20;
    /// <summary>Refusals logged one by one per minute; the rest are counted, so a flood of calls is no flood of log lines.</summary>
    private const int RefusalsLoggedPerMinute = 10;
    private static readonly string[] FilesystemChanges = ["ErrorCount", "FirstErrorTime", "LastErrorTime", "LastReportId", "Health", "Mountpoints"];
    private static readonly string[] ManagerChanges = ["ReportCount", "LastReportId"];
    // Filesystems whose properties changed since the last PropertiesChanged (bus thread, under its gate).
    private readonly HashSet<DeviceNumber> _changed = new();

    private readonly BusOptions _options;
    private readonly string? _stateDirectory;
    private readonly ILogger _log;
    private readonly BusLoop _loop;
    private readonly BusObjectHandle _self;
    private readonly BusInterface _manager;
    private readonly BusInterface _filesystem;
    private readonly Authorization _authorization;
    private EventHandOff? _handOff;
    private MountTracker? _tracker;
    private FilesystemLedger? _ledger;

    // Bus thread only: which object path shows which filesystem.
    private readonly Dictionary<string, Superblock> _objects = new(StringComparer.Ordinal);
    private readonly Dictionary<DeviceNumber, string> _paths = new();

    private long _signalsSent, _signalsDropped, _storeReadsRefused;
    private int _storeReads; // on the bus thread only
    private readonly ReportReader _reader;
    private long _emitFailures; // bus thread only
    private long _refusalMinute; // bus thread only, like the two below
    private int _refusalsThisMinute, _refusalsUnlogged;
    private int _backlogWarned;

    public BusService(BusOptions options, string? stateDirectory, ILogger log)
    {
        _options = options;
        _stateDirectory = stateDirectory;
        _log = log;
        _self = new BusObjectHandle(this);
        _manager = new BusInterface(BusNames.ManagerInterface)
            .Property("Version", "s", constant: true)
            .Property("KernelSupportsFsError", "b", constant: true)
            .Property("WatchedFilesystems", "u")
            .Property("ReportCount", "t")
            .Property("LastReportId", "s")
            .Method("GetReports", "tu", "aa{sv}", ["since", "max"], ["reports"])
            .Method("GetReport", "s", "a{sv}", ["id"], ["report"])
            .Method("Acknowledge", "s", "", ["id"], [])
            .Method("RescanFilesystems", "", "", [], [])
            .Signal("ReportAdded", "oa{sv}", "filesystem", "report");
        _filesystem = new BusInterface(BusNames.FilesystemInterface)
            .Property("Device", "s", constant: true)
            .Property("Uuid", "s", constant: true)
            .Property("Type", "s", constant: true)
            .Property("Mountpoints", "as")
            .Property("Health", "u")
            .Property("ErrorCount", "t")
            .Property("FirstErrorTime", "t")
            .Property("LastErrorTime", "t")
            .Property("LastReportId", "s");
        _authorization = new Authorization(options.Authorization);
        // A lost connection takes every waiting caller with it: their checks no longer count.
        _loop = new BusLoop("bus service", () => BusConnection.Resolve(_options.Bus), Export, _authorization.Abandon, log);
        _loop.Drained = EmitChanges;
        _reader = new ReportReader(log);
    }

    public string Name => "dbus";

    public bool IsConnected => _loop.IsConnected;
    public long Connections => _loop.Connections;
    public long SignalsSent => Interlocked.Read(ref _signalsSent);
    public long SignalsDropped => Interlocked.Read(ref _signalsDropped);
    // Bytes of the ReportAdded signals posted to the bus thread and not yet sent.
    private long _backlogBytes;
    /// <summary>GetReports/GetReport calls refused because <see cref="MaxStoreReads"/> reads were running.</summary>
    public long StoreReadsRefused => Interlocked.Read(ref _storeReadsRefused);
    /// <summary>GetReports/GetReport store reads running or waiting at once, at most (on the report reader thread).</summary>
    public const int MaxStoreReads = 4;
    /// <summary>The report reader thread's kernel thread id (0 before it starts): every store read a caller causes happens on it.</summary>
    public int ReaderThreadId => _reader.ThreadId;
    /// <summary>Authorization checks now waiting for polkit, and the most that ever waited at once.</summary>
    public int AuthorizationsWaiting => _authorization.WaitingChecks;
    public int AuthorizationsWaitingPeak => _authorization.PeakWaitingChecks;
    /// <summary>The bus thread's kernel thread id (0 before it starts): everything a caller makes the service do happens on it.</summary>
    public int ThreadId => _loop.ThreadId;
    /// <summary>Whether this kernel accepted FAN_FS_ERROR marks (set from the daemon's capabilities before <see cref="Start"/>).</summary>
    public bool KernelSupportsFsError { get; set; }
    /// <summary>Why the bus is not reachable now, if it is not.</summary>
    public string? Problem => _loop.LastProblem;

    /// <summary>
    /// Follows the watched filesystems (one object each, their standing from the ledger), sends a
    /// signal from the decode thread only while no event waits in the hand-off, and rescans on
    /// request. Call before the pipeline starts.
    /// </summary>
    public void Follow(FilesystemInventory inventory, FilesystemLedger ledger, EventHandOff handOff, MountTracker tracker)
    {
        _handOff = handOff;
        _tracker = tracker;
        _ledger = ledger;
        inventory.Watched += w => _loop.Post(bus => Add(bus, w.Superblock));
        inventory.Unwatched += w => _loop.Post(bus => Remove(bus, w.Superblock));
    }

    /// <summary>Starts the bus thread and waits (briefly) for the name, so that READY=1 means "on the bus" when the bus is there.</summary>
    public void Start(TimeSpan wait)
    {
        _reader.Start();
        _loop.Start();
        if (!_loop.WaitConnected(wait))
            _log.Warning("Not on the D-Bus bus ({Bus}) yet: {Problem}; reports are stored and signalled once it is", _options.Bus, _loop.LastProblem ?? "still connecting");
    }

    public void Stop(TimeSpan timeout) => _loop.Stop(timeout);

    // On the Generic Host: a short wait for the name, so that READY=1 normally means "on the bus" too
    // (never a condition for it); stopped after the pipeline has drained.
    Task Microsoft.Extensions.Hosting.IHostedService.StartAsync(CancellationToken cancellationToken)
    {
        Start(TimeSpan.FromSeconds(1));
        return Task.CompletedTask;
    }

    Task Microsoft.Extensions.Hosting.IHostedService.StopAsync(CancellationToken cancellationToken)
    {
        Stop(TimeSpan.FromMilliseconds(300));
        return Task.CompletedTask;
    }

    // ---- from the decode thread ----

    public void Publish(CorruptionReport report)
    {
        var device = report.Filesystem.MajorMinor;
        // Past the count bound the signal is not even written: a storm's dropped signals cost nothing.
        if (_loop.Pending > _options.SignalBacklog)
        {
            Drop(device);
            return;
        }
        Interlocked.Exchange(ref _backlogWarned, 0);
        var signal = _options.SignalPaths ? report : ReportPrivacy.Withheld(report);
        // With no report waiting behind this one, send the signal from here while the bus thread idles:
        // one thread wake-up less between the kernel and subscribers (docs/performance.md); what changed
        // in the properties follows from the bus thread. In a storm the bus thread does it all, so the
        // decode thread keeps its pace.
        if (_handOff?.Count is 0 && _loop.TryRunHere(bus => SendReportAdded(bus, device, signal)))
        {
            _loop.Post(bus => Announce(bus, device, signal: null, 0));
            return;
        }
        // What a waiting signal holds, measured by its report's JSON (encoded once for the store already).
        var bytes = ReportJson.Utf8Of(report).Length;
        if (Interlocked.Read(ref _backlogBytes) + bytes > _options.SignalBacklogBytes)
        {
            Drop(device);
            return;
        }
        Interlocked.Add(ref _backlogBytes, bytes);
        _loop.Post(bus => Announce(bus, device, signal, bytes));
    }

    /// <summary>The bus thread is behind (a storm, or a stalled bus): keep the counts, drop the signal.</summary>
    private void Drop(DeviceNumber device)
    {
        Interlocked.Increment(ref _signalsDropped);
        if (Interlocked.Exchange(ref _backlogWarned, 1) == 0)
            _log.Warning("D-Bus signals are {Backlog} behind ({Bytes} bytes); dropping ReportAdded signals (counts and the store keep every report)",
                _loop.Pending, Interlocked.Read(ref _backlogBytes));
        _loop.Post(bus => Announce(bus, device, signal: null, 0));
    }

    // ---- on the bus thread, or a thread it let in (BusLoop.TryRunHere) ----

    private void Export(BusConnection bus)
    {
        _manager.Export(bus, BusNames.RootPath, _self);
        _filesystem.ExportFallback(bus, BusNames.FilesystemsPath, _self);
        bus.AddObjectManager(BusNames.RootPath);
        // Last: a client that sees the name can call everything at once.
        bus.RequestName(BusNames.Service);
        _log.Information("On the D-Bus bus as {Name} ({Unique})", BusNames.Service, bus.UniqueName);
    }

    private void Add(BusConnection? bus, Superblock sb)
    {
        var path = BusConnection.EncodePath(BusNames.FilesystemsPath, sb.KernelName is { Length: > 0 } name ? name : sb.Device.ToString());
        if (_paths.Remove(sb.Device, out var previous))
            _objects.Remove(previous);
        _objects[path] = sb;
        _paths[sb.Device] = path;
        Emit(bus, b =>
        {
            b.EmitInterfacesAdded(path, BusNames.FilesystemInterface);
            b.EmitPropertiesChanged(BusNames.RootPath, BusNames.ManagerInterface, ["WatchedFilesystems"]);
        });
    }

    private void Remove(BusConnection? bus, Superblock sb)
    {
        if (!_paths.Remove(sb.Device, out var path))
            return;
        _objects.Remove(path);
        Emit(bus, b =>
        {
            b.EmitInterfacesRemoved(path, BusNames.FilesystemInterface);
            b.EmitPropertiesChanged(BusNames.RootPath, BusNames.ManagerInterface, ["WatchedFilesystems"]);
        });
    }

    /// <summary>A report was published (the ledger already counts it): signal it (unless the signal was sent already or dropped) and what changed.</summary>
    private void Announce(BusConnection? bus, DeviceNumber device, CorruptionReport? signal, long bytes)
    {
        if (signal is not null)
        {
            Interlocked.Add(ref _backlogBytes, -bytes);
            SendReportAdded(bus, device, signal);
        }
        _changed.Add(device);
    }

    /// <summary>
    /// PropertiesChanged once the bus thread has no report left to announce (<see cref="BusLoop.Drained"/>):
    /// after a single report at once, after a storm's thousands once per filesystem with the final
    /// values, instead of two more messages per report that kept the bus thread behind (and the
    /// reports waiting for it in memory; docs/performance.md, footprint).
    /// </summary>
    private void EmitChanges(BusConnection? bus)
    {
        if (_changed.Count == 0)
            return;
        Emit(bus, b =>
        {
            foreach (var device in _changed)
                if (_paths.GetValueOrDefault(device) is { } path)
                    b.EmitPropertiesChanged(path, BusNames.FilesystemInterface, FilesystemChanges);
            b.EmitPropertiesChanged(BusNames.RootPath, BusNames.ManagerInterface, ManagerChanges);
        });
        _changed.Clear();
    }

    private void SendReportAdded(BusConnection? bus, DeviceNumber device, CorruptionReport signal) => Emit(bus, b =>
    {
        var m = b.NewSignal(BusNames.RootPath, BusNames.ManagerInterface, "ReportAdded");
        try
        {
            m.AppendObjectPath(_paths.GetValueOrDefault(device) ?? BusNames.RootPath);
            ReportVariant.Write(m, signal);
        }
        catch
        {
            BusConnection.Release(m);
            throw;
        }
        b.Send(m);
        Interlocked.Increment(ref _signalsSent);
    });

    private void Emit(BusConnection? bus, Action<BusConnection> emit)
    {
        if (bus is null || !bus.IsOpen)
            return;
        try
        {
            emit(bus);
        }
        catch (BusException e)
        {
            // A full send queue fails every emission of a storm: say it once per thousand.
            if (_emitFailures++ % 1000 == 0)
                _log.Warning("D-Bus emission failed ({Failures} so far): {Reason}", _emitFailures, e.Message);
        }
    }

    // ---- IBusObject: called by sd-bus on the bus thread ----

    public bool Exists(string path) => _objects.ContainsKey(path);

    public IEnumerable<string> Children(string prefix) => _objects.Keys.ToArray();

    public void GetProperty(string path, string property, BusMessage reply)
    {
        if (path == BusNames.RootPath)
        {
            switch (property)
            {
                case "Version": reply.Append(ProductVersion.Text); break;
                case "KernelSupportsFsError": reply.Append(KernelSupportsFsError); break;
                case "WatchedFilesystems": reply.Append((uint)_objects.Count); break;
                case "ReportCount": reply.Append((ulong)(_ledger?.ReportCount ?? 0)); break;
                case "LastReportId": reply.Append(_ledger?.LastReportId ?? ""); break;
                default: throw new InvalidOperationException($"no property {property}");
            }
            return;
        }
        var sb = _objects[path];
        var status = _ledger?.Status(sb.Device) ?? new FilesystemStatus { Key = FilesystemLedger.Key(sb) };
        switch (property)
        {
            case "Device": reply.Append(sb.DevicePath); break;
            case "Uuid": reply.Append(sb.Uuid?.ToString() ?? ""); break;
            case "Type": reply.Append(sb.FsType); break;
            case "Mountpoints": reply.AppendStrings(sb.MountsByPreference.Select(m => m.MountPoint.TextOrEscaped)); break;
            case "Health": reply.Append((uint)status.Health); break;
            case "ErrorCount": reply.Append(status.ErrorCount); break;
            case "FirstErrorTime": reply.Append(Microseconds(status.FirstErrorTime)); break;
            case "LastErrorTime": reply.Append(Microseconds(status.LastErrorTime)); break;
            case "LastReportId": reply.Append(status.LastReportId); break;
            default: throw new InvalidOperationException($"no property {property}");
        }
    }

    public int Call(BusCall call)
    {
        var m = call.Message;
        switch (call.Member)
        {
            case "GetReports":
            {
                var since = m.ReadUInt64();
                var max = m.ReadUInt32();
                max = max == 0 ? DefaultMax : Math.Min(max, MaxMax);
                WithPathAccess(m, (reply, paths) => ReadThenReply(reply,
                    () => ReadStore(since, (int)max, ReplyBudgetBytes),
                    (held, reports) =>
                    {
                        var r = BusConnection.NewReturn(held);
                        r.Open('a', "a{sv}");
                        foreach (var report in reports)
                            WriteReport(r, report, paths);
                        r.Close();
                        BusConnection.Reply(r);
                    }));
                return 1;
            }
            case "GetReport":
            {
                var id = ReadReportId(call, out var failed);
                if (id is null)
                    return failed;
                WithPathAccess(m, (reply, paths) => ReadThenReply(reply, () => FindReport(id), (held, found) =>
                {
                    if (found is null)
                    {
                        BusConnection.ReplyError(held, BusNames.NoSuchReport, $"no stored report {id}");
                        return;
                    }
                    var r = BusConnection.NewReturn(held);
                    WriteReport(r, found, paths);
                    BusConnection.Reply(r);
                }));
                return 1;
            }
            case "Acknowledge":
            {
                var id = ReadReportId(call, out var failed);
                if (id is null)
                    return failed;
                Privileged(m, BusNames.AcknowledgeAction, reply => Acknowledge(reply, id));
                return 1;
            }
            case "RescanFilesystems":
                Privileged(m, BusNames.RescanAction, reply =>
                {
                    _tracker?.RequestRescan();
                    BusConnection.Reply(BusConnection.NewReturn(reply));
                });
                return 1;
            default:
                return call.Fail("org.freedesktop.DBus.Error.UnknownMethod", $"no method {call.Member}");
        }
    }

    /// <summary>
    /// The id argument, judged on the message's bytes before anything else happens: a malformed
    /// one is refused before polkit, the store or the log see it, and is never copied or echoed in full.
    /// </summary>
    private static string? ReadReportId(BusCall call, out int failed)
    {
        failed = 0;
        var text = call.Message.ReadUtf8();
        if (ReportIds.TryParse(text, out var id))
            return id;
        failed = call.Fail(BusNames.InvalidArgs, $"{ReportIds.Describe(text)} is not a report id (a UUID such as 01936a3e-7b2c-7000-8000-000000000001)");
        return null;
    }

    private void Acknowledge(BusMessage reply, string id)
    {
        var found = FindReport(id);
        if (found is null)
        {
            BusConnection.ReplyError(reply, BusNames.NoSuchReport, $"no stored report {id}");
            return;
        }
        var facts = ReportFacts.Of(found);
        if (_ledger is null || !_ledger.Acknowledge(facts))
        {
            BusConnection.ReplyError(reply, "org.freedesktop.DBus.Error.Failed", "the acknowledgement could not be saved");
            return;
        }
        _log.Information("Reports of {Filesystem} up to {Id} acknowledged", facts.FilesystemKey, facts.Id);
        BusConnection.Reply(BusConnection.NewReturn(reply));
        foreach (var (path, sb) in _objects)
            if (FilesystemLedger.Key(sb) == facts.FilesystemKey)
                Emit(_loop.Current, b => b.EmitPropertiesChanged(path, BusNames.FilesystemInterface, ["Health"]));
    }

    private void Privileged(BusMessage call, string action, Action<BusMessage> allowed)
    {
        Authorize(call, action, mayPrompt: true, (reply, verdict) =>
        {
            if (verdict.Allowed)
            {
                allowed(reply);
                return;
            }
            LogRefusal(reply, verdict);
            BusConnection.ReplyError(reply, verdict.ErrorName, verdict.Reason);
        });
    }

    /// <summary>
    /// Paths go to root and to callers polkit authorizes for read-paths, never with a prompt for a
    /// read (busctl allows interactive authorization by default; a GetReports must not ask for a
    /// password, nor hold a check open for minutes). A caller over the limits gets LimitsExceeded,
    /// not a slower path-less read.
    /// </summary>
    private void WithPathAccess(BusMessage call, Action<BusMessage, bool> then) =>
        Authorize(call, BusNames.ReadPathsAction, mayPrompt: false, (reply, verdict) =>
        {
            if (verdict.OverLimit)
            {
                LogRefusal(reply, verdict);
                BusConnection.ReplyError(reply, verdict.ErrorName, verdict.Reason);
                return;
            }
            then(reply, verdict.Allowed);
        });

    private void Authorize(BusMessage call, string action, bool mayPrompt, Action<BusMessage, Verdict> then)
    {
        // The reply may come later (polkit is asked asynchronously): the connection is the loop's.
        var bus = _loop.Current ?? throw new InvalidOperationException("not connected");
        _authorization.Check(bus, call, action, mayPrompt, then);
    }

    /// <summary>The first refusals of each minute one by one, then how many more there were.</summary>
    private void LogRefusal(BusMessage call, Verdict verdict)
    {
        var minute = Environment.TickCount64 / 60_000;
        if (minute != _refusalMinute)
        {
            if (_refusalsUnlogged > 0)
                _log.Warning("{Count} more D-Bus calls were refused in that minute, beyond the {Max} logged one by one", _refusalsUnlogged, RefusalsLoggedPerMinute);
            _refusalMinute = minute;
            _refusalsThisMinute = _refusalsUnlogged = 0;
        }
        if (++_refusalsThisMinute <= RefusalsLoggedPerMinute)
            _log.Information("Refused {Member} to {Sender}: {Reason}", call.Member, call.Sender, verdict.Reason);
        else
            _refusalsUnlogged++;
    }

    /// <summary>
    /// Reads the store on the report reader thread and replies on the bus thread: a read goes through
    /// every segment (tens of MB when the store is full), and on the bus thread it would hold up every
    /// signal and property meanwhile. Reads run one at a time (one core at most, whoever asks); at most
    /// <see cref="MaxStoreReads"/> are running or waiting, and a call past that is refused with
    /// LimitsExceeded, so callers cannot queue unbounded work or memory.
    /// </summary>
    private void ReadThenReply<T>(BusMessage call, Func<T> read, Action<BusMessage, T> respond)
    {
        if (_storeReads >= MaxStoreReads)
        {
            Interlocked.Increment(ref _storeReadsRefused);
            BusConnection.ReplyError(call, BusNames.LimitsExceeded, $"{_storeReads} report store reads are running or waiting, the most allowed; try again later");
            return;
        }
        _storeReads++;
        var held = BusConnection.Hold(call);
        _reader.Post(() =>
        {
            T result = default!;
            Exception? failure = null;
            try
            {
                result = read();
            }
            catch (Exception e)
            {
                failure = e;
            }
            _loop.Post(bus =>
            {
                _storeReads--;
                try
                {
                    // Disconnected meanwhile: the caller's connection went with the bus; nobody to answer.
                    if (bus is null)
                        return;
                    if (failure is not null)
                    {
                        _log.Error(failure, "Reading the report store for {Member} failed", held.Member);
                        BusConnection.ReplyError(held, "org.freedesktop.DBus.Error.Failed", $"reading the report store failed: {failure.Message}");
                        return;
                    }
                    respond(held, result);
                }
                catch (BusException e)
                {
                    _log.Debug("Could not answer {Member}: {Reason}", held.Member, e.Message);
                }
                finally
                {
                    BusConnection.Release(held);
                }
            });
        });
    }

    /// <summary>A stored report as GetReport(s) answer it: the same keys and types as ReportAdded, the path only for callers who may see it.</summary>
    private static void WriteReport(BusMessage m, CorruptionReport report, bool paths) =>
        ReportVariant.Write(m, paths ? report : ReportPrivacy.Withheld(report));

    /// <summary>
    /// Up to <paramref name="max"/> reports from <paramref name="sinceMicroseconds"/> on, oldest first,
    /// until their JSON adds up to <paramref name="budget"/> bytes (the one crossing it included, so a
    /// large report is never unreachable).
    /// </summary>
    private List<CorruptionReport> ReadStore(ulong sinceMicroseconds, int max, long budget)
    {
        var found = new List<CorruptionReport>();
        if (_stateDirectory is null)
            return found;
        long bytes = 0;
        var since = DateTimeOffset.UnixEpoch.AddTicks((long)Math.Min(sinceMicroseconds, (ulong)(DateTimeOffset.MaxValue - DateTimeOffset.UnixEpoch).Ticks / 10) * 10);
        var result = StoredReports.Query(_stateDirectory, new ReportQuery { Since = since }, (in StoredRecord record) =>
        {
            try
            {
                found.Add(record.Report());
                bytes += record.Json.Length;
            }
            catch (ReportFormatException e)
            {
                _log.Warning("A stored report cannot be read back for GetReports: {Reason}", e.Message);
            }
            return found.Count < max && bytes < budget;
        });
        foreach (var problem in result.Problems)
            _log.Debug("Report store, read for GetReports: {Problem}", problem);
        return found;
    }

    /// <summary>The stored report with this id; <paramref name="id"/> has passed <see cref="ReportIds.TryParse"/>.</summary>
    private CorruptionReport? FindReport(string id)
    {
        if (_stateDirectory is null)
            return null;
        var problems = new List<string>();
        var report = StoredReports.Find(_stateDirectory, id, problems);
        foreach (var problem in problems)
            _log.Debug("Report store, read for {Id}: {Problem}", id, problem);
        return report;
    }

    /// <summary>µs since the epoch (systemd's usec_t), 0 for none.</summary>
    public static ulong Microseconds(DateTimeOffset? time) =>
        time is { } t ? (ulong)Math.Max(0, (t - DateTimeOffset.UnixEpoch).Ticks / 10) : 0;

    public void Dispose()
    {
        // The reader first: what it still reads answers through the loop, which runs posted work before it stops.
        _reader.Dispose();
        _loop.Dispose();
        _self.Dispose();
    }
}
