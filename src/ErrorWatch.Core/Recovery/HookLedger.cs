using System.Buffers;
using System.Text.Json;
using ErrorWatch.Interop;
using ErrorWatch.Store;
using Serilog;

namespace ErrorWatch.Recovery;

/// <summary>How often a hook ran for a filesystem, and when it last started: what repeat policies decide on.</summary>
public sealed record LaneHistory(string Hook, string Filesystem, long Runs, DateTimeOffset? LastStart)
{
    /// <summary>The newest outcome (skips included), kept through compaction for errorwatch hooks list.</summary>
    public LastRun? Last { get; init; }
}

/// <summary>Which process an unfinished run had started, to end what is left of it after a crash.</summary>
public sealed record RunProcess(int Pid, string StartTime, string BootId);

/// <summary>The last outcome of a hook, for errorwatch hooks list.</summary>
public sealed record LastRun(string Hook, string Filesystem, DateTimeOffset Started, string Outcome, string Detail);

/// <summary>
/// The durable record of hook runs, <c>&lt;state&gt;/hooks/runs.log</c>, in the report store's
/// checksummed record format (<see cref="StoreRecord"/>, JSON payloads): a run is recorded as due
/// before it can start (with everything needed to run it: the report's variables and JSON), every
/// report folded into it, its process when it starts, and its outcome when it is done. At the next
/// start, runs that are due but not done are run once more: delivery is at least once, never lost.
/// The file is rewritten compactly (<see cref="AtomicFile"/>) at each start and when it grows past
/// <see cref="CompactBytes"/>: one history line per hook and filesystem, and the unfinished runs.
/// Written only by the daemon, which holds the report store's lock on the same state directory.
/// </summary>
public sealed unsafe class HookLedger : IDisposable
{
    public const string DirectoryName = "hooks";
    public const string FileName = "runs.log";
    /// <summary>Where ERRORWATCH_REPORT_JSON files live while their run does.</summary>
    public const string RunDirectoryName = "run";
    public const long CompactBytes = 8 << 20;

    private static readonly TimeSpan SyncDelay = TimeSpan.FromMilliseconds(200);

    private readonly string _path;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly Timer _syncTimer;
    private int _fd = -1;
    private long _size;
    private bool _unsynced, _syncScheduled;
    private long _failures;

    private HookLedger(string stateDirectory, ILogger log)
    {
        Directory = Path.Combine(stateDirectory, DirectoryName);
        _path = Path.Combine(Directory, FileName);
        _log = log;
        _syncTimer = new Timer(_ => Sync(), null, Timeout.Infinite, Timeout.Infinite);
    }

    public string Directory { get; }
    public string RunDirectory => Path.Combine(Directory, RunDirectoryName);

    /// <summary>Runs due and not done when the ledger was opened, oldest first (<see cref="HookRun.Replayed"/>).</summary>
    public IReadOnlyList<HookRun> Unfinished { get; private set; } = [];

    /// <summary>The processes those runs had started, by run id.</summary>
    public IReadOnlyDictionary<string, RunProcess> Processes { get; private set; } = new Dictionary<string, RunProcess>();

    public IReadOnlyList<LaneHistory> History { get; private set; } = [];

    /// <summary>Reads the ledger, rewrites it compactly and opens it for appending.</summary>
    public static HookLedger Open(string stateDirectory, ILogger log)
    {
        var ledger = new HookLedger(stateDirectory, log);
        AtomicFile.CreateDirectory(ledger.Directory);
        var state = Read(ledger._path, log);
        ledger.Unfinished = state.Unfinished;
        ledger.Processes = state.Processes;
        ledger.History = state.History;
        ledger.Compact(state.History, state.Unfinished.Select(r => (r, state.Processes.GetValueOrDefault(r.Id))));
        // JSON files of runs that will never finish in this form: replays write theirs again.
        try
        {
            if (System.IO.Directory.Exists(ledger.RunDirectory))
                foreach (var file in System.IO.Directory.EnumerateFiles(ledger.RunDirectory))
                    File.Delete(file);
        }
        catch (IOException e)
        {
            log.Warning("Hook ledger: cannot clear {Directory}: {Reason}", ledger.RunDirectory, e.Message);
        }
        return ledger;
    }

    private sealed record State(List<HookRun> Unfinished, Dictionary<string, RunProcess> Processes, List<LaneHistory> History, List<LastRun> Done);

    private static State Read(string path, ILogger? log)
    {
        var runs = new Dictionary<string, HookRun>();
        var order = new List<string>();
        var processes = new Dictionary<string, RunProcess>();
        var lanes = new Dictionary<(string, string), LaneHistory>();
        var done = new List<LastRun>();
        if (File.Exists(path))
        {
            var scan = StoreRecord.Scan(path, (json, _, offset) =>
            {
                try
                {
                    using var doc = JsonDocument.Parse(json.ToArray());
                    Apply(doc.RootElement, runs, order, processes, lanes, done);
                }
                catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or KeyNotFoundException)
                {
                    log?.Warning("Hook ledger {Path}: record at byte {Offset} not understood ({Reason}); skipped", path, offset, e.Message);
                }
            });
            foreach (var problem in scan.Problems)
                log?.Warning("Hook ledger {Path}: {Problem}", path, problem);
            if (scan.ValidLength < scan.FileLength)
                log?.Warning("Hook ledger {Path}: torn record at byte {Offset} cut off (the process stopped while writing it)", path, scan.ValidLength);
        }
        var unfinished = order.Where(runs.ContainsKey).Select(id => runs[id]).ToList();
        return new State(unfinished, processes.Where(p => runs.ContainsKey(p.Key)).ToDictionary(), [.. lanes.Values], done);
    }

    private static void Apply(JsonElement e, Dictionary<string, HookRun> runs, List<string> order, Dictionary<string, RunProcess> processes,
        Dictionary<(string, string), LaneHistory> lanes, List<LastRun> done)
    {
        var type = e.GetProperty("t").GetString();
        switch (type)
        {
            case "lane":
            {
                var hook = e.GetProperty("hook").GetString()!;
                var fs = e.GetProperty("fs").GetString()!;
                LastRun? lastRun = null;
                if (e.TryGetProperty("last_outcome", out var outcome) && e.TryGetProperty("last_time", out var time))
                {
                    lastRun = new LastRun(hook, fs, time.GetDateTimeOffset(), outcome.GetString()!, e.GetProperty("last_detail").GetString() ?? "");
                    done.Add(lastRun);
                }
                lanes[(hook, fs)] = new LaneHistory(hook, fs, e.GetProperty("runs").GetInt64(),
                    e.TryGetProperty("last_start", out var last) && last.ValueKind == JsonValueKind.String ? last.GetDateTimeOffset() : null) { Last = lastRun };
                break;
            }
            case "due":
            {
                var id = e.GetProperty("run").GetString()!;
                var facts = HookFacts.Read(e) ?? throw new FormatException("due record without its report");
                var run = new HookRun(id, e.GetProperty("hook").GetString()!, facts, e.GetProperty("not_before").GetDateTimeOffset()) { Replayed = true };
                if (e.TryGetProperty("total", out var total))
                    run.Restore(total.GetUInt64(), e.GetProperty("reports").GetInt32(), e.GetProperty("first_time").GetDateTimeOffset(), e.GetProperty("first_report").GetString()!);
                runs[id] = run;
                order.Add(id);
                break;
            }
            case "fold":
            {
                if (runs.TryGetValue(e.GetProperty("run").GetString()!, out var run) && HookFacts.Read(e) is { } facts)
                    run.Fold(facts);
                break;
            }
            case "start":
                processes[e.GetProperty("run").GetString()!] = new RunProcess(e.GetProperty("pid").GetInt32(),
                    e.GetProperty("proc_start").GetString()!, e.GetProperty("boot").GetString()!);
                break;
            case "done":
            {
                var id = e.GetProperty("run").GetString()!;
                runs.Remove(id);
                processes.Remove(id);
                var hook = e.GetProperty("hook").GetString()!;
                var fs = e.GetProperty("fs").GetString()!;
                var started = e.GetProperty("started").GetDateTimeOffset();
                var outcome = e.GetProperty("outcome").GetString()!;
                var lastRun = new LastRun(hook, fs, started, outcome, e.GetProperty("detail").GetString() ?? "");
                done.Add(lastRun);
                var before = lanes.GetValueOrDefault((hook, fs)) ?? new LaneHistory(hook, fs, 0, null);
                // Skipped runs never ran: they do not count for repeat policies.
                lanes[(hook, fs)] = outcome == HookOutcome.Skipped ? before with { Last = lastRun }
                    : before with { Runs = before.Runs + 1, LastStart = before.LastStart is { } l && l > started ? l : started, Last = lastRun };
                break;
            }
        }
    }

    /// <summary>The newest outcome per hook and filesystem, read without the daemon's help (errorwatch hooks list).</summary>
    public static IReadOnlyList<LastRun> LastRuns(string stateDirectory)
    {
        var path = Path.Combine(stateDirectory, DirectoryName, FileName);
        return Read(path, null).Done.GroupBy(d => (d.Hook, d.Filesystem)).Select(g => g.Last()).ToList();
    }

    public void Due(HookRun run) => Append(w =>
    {
        w.WriteString("t", "due");
        WriteDue(w, run);
    });

    public void Folded(HookRun run, HookFacts facts) => Append(w =>
    {
        w.WriteString("t", "fold");
        w.WriteString("run", run.Id);
        facts.Write(w);
    });

    public void Started(HookRun run, RunProcess process) => Append(w => WriteStart(w, run.Id, process));

    public void Done(HookRun run, HookOutcome outcome) => Append(w =>
    {
        w.WriteString("t", "done");
        w.WriteString("run", run.Id);
        w.WriteString("hook", run.Hook);
        w.WriteString("fs", run.Filesystem);
        w.WriteString("report", run.Latest.ReportId);
        w.WriteString("outcome", outcome.Result);
        w.WriteString("detail", outcome.Detail);
        w.WriteString("started", HookFacts.Rfc3339(outcome.Started));
        w.WriteNumber("duration", Math.Round(outcome.Duration.TotalSeconds, 6));
        if (outcome.ExitCode is { } code) w.WriteNumber("exit", code);
        if (outcome.Signal is { } signal) w.WriteString("signal", signal);
        w.WriteNumber("output_bytes", outcome.OutputBytes);
        if (outcome.Unit is { } unit) w.WriteString("unit", unit);
        if (outcome.JobResult is { } job) w.WriteString("job_result", job);
        w.WriteNumber("errors", run.ErrorCount);
        w.WriteNumber("reports", run.Reports);
    });

    private static void WriteDue(Utf8JsonWriter w, HookRun run)
    {
        w.WriteString("run", run.Id);
        w.WriteString("hook", run.Hook);
        w.WriteString("not_before", HookFacts.Rfc3339(run.NotBefore));
        w.WriteNumber("total", run.ErrorCount);
        w.WriteNumber("reports", run.Reports);
        w.WriteString("first_time", HookFacts.Rfc3339(run.FirstTime));
        w.WriteString("first_report", run.FirstReportId);
        run.Latest.Write(w);
    }

    private static void WriteStart(Utf8JsonWriter w, string run, RunProcess process)
    {
        w.WriteString("t", "start");
        w.WriteString("run", run);
        w.WriteNumber("pid", process.Pid);
        w.WriteString("proc_start", process.StartTime);
        w.WriteString("boot", process.BootId);
    }

    /// <summary>Whether the file has grown enough to be rewritten (the dispatcher then calls <see cref="Compact"/>).</summary>
    public bool WantsCompaction
    {
        get
        {
            lock (_lock)
                return _size > CompactBytes;
        }
    }

    /// <summary>Replaces the file with the history and the unfinished runs (folds merged) and appends after them.</summary>
    public void Compact(IEnumerable<LaneHistory> history, IEnumerable<(HookRun Run, RunProcess? Process)> unfinished)
    {
        var buffer = new ArrayBufferWriter<byte>();
        var now = DateTimeOffset.UtcNow;
        void Add(Action<Utf8JsonWriter> write) => buffer.Write(StoreRecord.Encode(Json(write), now));
        foreach (var lane in history)
            Add(w =>
            {
                w.WriteString("t", "lane");
                w.WriteString("hook", lane.Hook);
                w.WriteString("fs", lane.Filesystem);
                w.WriteNumber("runs", lane.Runs);
                if (lane.LastStart is { } last) w.WriteString("last_start", HookFacts.Rfc3339(last)); else w.WriteNull("last_start");
                if (lane.Last is { } run)
                {
                    w.WriteString("last_time", HookFacts.Rfc3339(run.Started));
                    w.WriteString("last_outcome", run.Outcome);
                    w.WriteString("last_detail", run.Detail);
                }
            });
        foreach (var (run, process) in unfinished)
        {
            Add(w =>
            {
                w.WriteString("t", "due");
                WriteDue(w, run);
            });
            if (process is not null)
                Add(w => WriteStart(w, run.Id, process));
        }
        lock (_lock)
        {
            try
            {
                AtomicFile.Write(_path, buffer.WrittenSpan);
                if (_fd >= 0)
                    Libc.Close(_fd);
                _fd = Libc.Open(_path, Libc.O_WRONLY | Libc.O_APPEND | Libc.O_CLOEXEC, 0x180);
                if (_fd < 0)
                    throw new IOException($"cannot open {_path}: {ErrnoTable.Name(Libc.LastErrno)}");
                _size = buffer.WrittenCount;
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.Error("Hook ledger {Path} cannot be written: {Reason}; hook runs are not durable until it can", _path, e.Message);
            }
        }
    }

    private static byte[] Json(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var w = new Utf8JsonWriter(buffer, Reports.ReportJson.Options))
        {
            w.WriteStartObject();
            write(w);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>One record, one write(2) with O_APPEND: a kill leaves at most a torn last record, cut at the next open.</summary>
    private void Append(Action<Utf8JsonWriter> write)
    {
        var record = StoreRecord.Encode(Json(write), DateTimeOffset.UtcNow);
        lock (_lock)
        {
            if (_fd < 0)
                return;
            if (StoreRecord.Append(_fd, record) is var errno and not 0)
            {
                if (_failures++ % 1000 == 0)
                    _log.Error("Hook ledger write failed ({Reason}, {Failures} so far): hook runs are not durable meanwhile", ErrnoTable.Name(errno), _failures);
                return;
            }
            _size += record.Length;
            _unsynced = true;
            if (!_syncScheduled)
            {
                _syncScheduled = true;
                _syncTimer.Change(SyncDelay, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>fdatasync within 200 ms of a write: a crash of the process loses nothing, this bounds a power loss.</summary>
    public void Sync()
    {
        lock (_lock)
        {
            _syncScheduled = false;
            if (_unsynced && _fd >= 0)
                Libc.FDataSync(_fd);
            _unsynced = false;
        }
    }

    /// <summary>The kernel's start time of <paramref name="pid"/> (field 22 of /proc/PID/stat), which tells a pid from its reuse; null when it is gone.</summary>
    public static string? ProcessStartTime(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return fields.Length > 19 ? fields[19] : null; // field 22 is the 20th after "pid (comm)"
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>The boot a run's process belongs to ("" when /proc does not tell it).</summary>
    public static string BootId() => Kernel.BootId.Current ?? "";

    public void Dispose()
    {
        _syncTimer.Dispose();
        lock (_lock)
        {
            if (_fd >= 0)
            {
                Libc.FDataSync(_fd);
                Libc.Close(_fd);
                _fd = -1;
            }
        }
    }

}
