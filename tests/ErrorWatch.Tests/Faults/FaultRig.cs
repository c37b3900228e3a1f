using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Store;
using ErrorWatch.Tests.DBus;
using ErrorWatch.Tests.EndToEnd;
using ErrorWatch.Tests.Journal;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.Faults;

/// <summary>
/// The real `errorwatch run` with every output on (report store, the test run's journald, a private
/// system-like D-Bus, the Prometheus endpoint, OTLP push, hooks) watching one scratch ext4
/// (errors=continue) whose errors the test raises with trigger_fs_error. The accounting compares
/// each output with the kernel's own count: the growth of errors_count.
/// </summary>
internal sealed class FaultRig : IDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(5) };
    private readonly StringBuilder _stderr = new();
    private readonly List<string> _timeline = new();
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _config;
    private Process? _daemon;
    private NotifySocket? _notify;
    private string? _uuid;

    /// <param name="collector">Whether the OTLP receiver runs from the start (<see cref="StartCollector"/> otherwise).</param>
    public FaultRig(string name, string? stateDirectory = null, string extraConfig = "", bool collector = true)
    {
        Scratch = new ScratchDirectory();
        try
        {
            Fs = Scratch.Ext4(name);
            Bus = new BusDaemon();
            StateDirectory = stateDirectory ?? Path.Combine(Scratch.Path, "state");
            MetricsPort = Metrics.PrometheusServer.FreePort();
            OtlpPort = Metrics.PrometheusServer.FreePort();
            if (collector)
                StartCollector();
            HooksDirectory = Directory.CreateDirectory(Path.Combine(Scratch.Path, "hooks.d")).FullName;
            _config = Path.Combine(Scratch.Path, "errorwatch.conf");
            File.WriteAllText(_config, $"""
                [Watch]
                Filesystems={Fs.MountPoint}
                [OpenTelemetry]
                Endpoint=http://127.0.0.1:{OtlpPort}
                Protocol=grpc
                Interval=1s
                [Journal]
                Interval=2s
                [Hooks]
                Directory={HooksDirectory}
                {extraConfig}
                """);
            Baseline = Fs.ErrorsCount;
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public ScratchDirectory Scratch { get; }
    public ScratchFilesystem Fs { get; } = null!;
    public BusDaemon Bus { get; } = null!;
    public string StateDirectory { get; } = "";
    public string HooksDirectory { get; } = "";
    public int MetricsPort { get; }
    /// <summary>The OTLP receiver's gRPC port (the rig pushes over grpc, the default protocol).</summary>
    public int OtlpPort { get; }
    public Otlp.OtlpReceiver? Collector { get; private set; }

    public void StartCollector()
    {
        Collector = new Otlp.OtlpReceiver(grpcPort: OtlpPort);
        Note("OTLP collector up");
    }
    public ulong Baseline { get; }
    public int Restarts { get; private set; }
    public int? Pid => _daemon is { HasExited: false } d ? d.Id : null;
    public bool Alive => _daemon is { HasExited: false };

    public string Stderr
    {
        get { lock (_stderr) return _stderr.ToString(); }
    }

    /// <summary>What happened when, for the results and for a failing test's message.</summary>
    public string Timeline => string.Join("; ", _timeline);

    public void Note(string what) => _timeline.Add($"{_clock.Elapsed.TotalSeconds:F1}s {what}");

    /// <summary>Starts errorwatch run and waits for READY=1 (again after a kill: that is a restart).</summary>
    public void Start()
    {
        if (_daemon is not null)
            Restarts++;
        _notify?.Dispose();
        var notify = _notify = new NotifySocket(); // kept: STATUS= updates follow READY=1
        var psi = ErrorWatchBinary.StartInfo(["run", "--config", _config, "--state-dir", StateDirectory, "--output", "none",
            "--bus", Bus.Address, "--metrics-listen", $"127.0.0.1:{MetricsPort}"]);
        psi.Environment["NOTIFY_SOCKET"] = notify.Address;
        var daemon = _daemon = ErrorWatchBinary.StartCollecting(psi, _stderr);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (notify.Receive(TimeSpan.FromMilliseconds(200)) is { } message && message.Contains("READY=1"))
            {
                Note($"started (pid {daemon.Id})");
                return;
            }
            if (daemon.HasExited)
                throw new Xunit.Sdk.XunitException($"errorwatch exited with {daemon.ExitCode} before READY=1:\n{Stderr}");
        }
        throw new Xunit.Sdk.XunitException($"no READY=1 from errorwatch within 30 s:\n{Stderr}");
    }

    /// <summary>kill -9, as the OOM killer or an admin would: no chance to flush anything.</summary>
    public void Kill()
    {
        var daemon = _daemon ?? throw new InvalidOperationException("not started");
        daemon.Kill(entireProcessTree: false);
        daemon.WaitForExit(5000);
        Note($"killed -9 (pid {daemon.Id})");
    }

    /// <summary>SIGTERM; how long until it exited.</summary>
    public TimeSpan Stop()
    {
        var daemon = _daemon;
        if (daemon is null || daemon.HasExited)
            return TimeSpan.Zero;
        var clock = Stopwatch.StartNew();
        OwnProcess.Signal(daemon.Id, 15);
        daemon.WaitForExit(10_000);
        Note($"SIGTERM: exited in {clock.Elapsed.TotalSeconds:F2} s");
        return clock.Elapsed;
    }

    /// <summary><paramref name="count"/> errors, <paramref name="spacing"/> apart (zero: a storm from this process).</summary>
    public void Trigger(int count, TimeSpan spacing = default)
    {
        if (spacing == TimeSpan.Zero)
            Fs.TriggerFsErrors(count);
        else
            for (var i = 0; i < count; i++)
            {
                Fs.TriggerFsErrors(1);
                Thread.Sleep(spacing);
            }
        Note($"{count} error(s) triggered");
    }

    /// <summary>
    /// The kernel's count of errors since the rig was made, once it has settled: ext4 moves
    /// errors_count from deferred work, so right after a storm it still lags behind.
    /// </summary>
    public ulong Growth
    {
        get
        {
            var last = Fs.ErrorsCount;
            for (var i = 0; i < 50; i++)
            {
                Thread.Sleep(100);
                var now = Fs.ErrorsCount;
                if (now == last)
                    return now - Baseline;
                last = now;
            }
            return last - Baseline;
        }
    }

    public ulong StoreErrors() => StoreErrors(out _);

    /// <summary>Error counts of every stored report about this filesystem.</summary>
    public ulong StoreErrors(out IReadOnlyList<string> problems)
    {
        ulong sum = 0;
        problems = StoredReports.Query(StateDirectory, new ReportQuery(), (in StoredRecord record) =>
        {
            var report = record.Report();
            if (report.Filesystem.Device != Fs.LoopDevice)
                return true;
            _uuid ??= report.Filesystem.Uuid?.ToString();
            sum += report.Error.Count;
            return true;
        }).Problems;
        return sum;
    }

    /// <summary>Stored errors by report source and process, in store order ("fanotify×3=120"), for a failing test's message.</summary>
    public string StoreBreakdown()
    {
        var parts = new List<(string Key, ulong Count, int Reports)>();
        StoredReports.Query(StateDirectory, new ReportQuery(), (in StoredRecord record) =>
        {
            var report = record.Report();
            var key = report.Source + (report.Finding is { } f ? $" ({f})" : "");
            var count = report.Error.Count;
            if (parts.Count > 0 && parts[^1].Key == key)
                parts[^1] = (key, parts[^1].Count + count, parts[^1].Reports + 1);
            else
                parts.Add((key, count, 1));
            return true;
        });
        return string.Join(", ", parts.Select(p => $"{p.Key}×{p.Reports}={p.Count}"));
    }

    /// <summary>Report entries' ERRORWATCH_ERROR_COUNT plus summary entries' ERRORWATCH_SUPPRESSED_ERRORS, for this filesystem (by UUID).</summary>
    public ulong JournalErrors()
    {
        var uuid = Uuid();
        ulong sum = 0;
        foreach (var entry in Journalctl.Query($"ERRORWATCH_UUID={uuid}", $"MESSAGE_ID={ReportJournal.ReportMessageId}"))
            sum += ulong.Parse(Journalctl.Text(entry, "ERRORWATCH_ERROR_COUNT"), CultureInfo.InvariantCulture);
        foreach (var entry in Journalctl.Query($"ERRORWATCH_UUID={uuid}", $"MESSAGE_ID={ReportJournal.SuppressedMessageId}"))
            sum += ulong.Parse(Journalctl.Text(entry, "ERRORWATCH_SUPPRESSED_ERRORS"), CultureInfo.InvariantCulture);
        return sum;
    }

    /// <summary>The ErrorCount the D-Bus service shows for this filesystem (errorwatch status --json, a real client).</summary>
    public ulong BusErrors()
    {
        var r = Tool.RunWithTimeout(TimeSpan.FromSeconds(20), ErrorWatchBinary.Path, "status", "--json", "--bus", Bus.Address);
        if (r.ExitCode != 0)
            return 0;
        using var doc = JsonDocument.Parse(r.StdOut);
        foreach (var fs in doc.RootElement.GetProperty("filesystems").EnumerateArray())
            if (fs.GetProperty("device").GetString() == Fs.LoopDevice)
                return fs.GetProperty("error_count").GetUInt64();
        return 0;
    }

    /// <summary>errorwatch_filesystem_errors_total for this filesystem in a scrape of the endpoint (counts since this process started).</summary>
    public ulong MetricsErrors()
    {
        string text;
        try
        {
            text = Http.GetStringAsync($"http://127.0.0.1:{MetricsPort}/metrics").GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return 0;
        }
        double sum = 0;
        foreach (var line in text.Split('\n'))
            if (line.StartsWith("errorwatch_filesystem_errors_total{", StringComparison.Ordinal) && line.Contains($"system_device=\"{Fs.LoopDevice}\""))
                sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        return (ulong)sum;
    }

    /// <summary>
    /// Error counts of the OTLP log records about this filesystem, each report once (by id), and how
    /// many records came again (at least once: after a kill -9, what was sent after the cursor last moved).
    /// </summary>
    public ulong OtlpErrors(out int duplicates)
    {
        duplicates = 0;
        if (Collector is not { } collector)
            return 0;
        var reports = new Dictionary<string, ulong>();
        foreach (var record in collector.LogRecords.Where(r => r.Get("errorwatch.report.filesystem.device") == Fs.LoopDevice))
        {
            if (!reports.TryAdd(record["errorwatch.report.id"], ulong.Parse(record["errorwatch.report.error.count"], CultureInfo.InvariantCulture)))
                duplicates++;
        }
        return reports.Values.Aggregate(0UL, (a, b) => a + b);
    }

    public ulong OtlpErrors() => OtlpErrors(out _);

    private string Uuid()
    {
        if (_uuid is null)
        {
            var r = Tool.Run("blkid", "-o", "value", "-s", "UUID", Fs.LoopDevice);
            _uuid = r.StdOut.Trim();
        }
        return _uuid;
    }

    /// <summary>Polls until <paramref name="read"/> equals <paramref name="expected"/>; returns the last value read.</summary>
    public ulong WaitFor(string what, Func<ulong> read, ulong expected, TimeSpan? timeout = null, bool atLeast = false)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        ulong last;
        while (!(atLeast ? (last = read()) >= expected : (last = read()) == expected) && DateTime.UtcNow < deadline)
            Thread.Sleep(200);
        if (last != expected)
            Note($"{what}: {last} of {expected}");
        return last;
    }

    public void Dispose()
    {
        if (_daemon is not null)
        {
            OwnProcess.Stop(_daemon);
            _daemon = null;
        }
        _notify?.Dispose();
        Bus?.Dispose();
        Collector?.Dispose();
        Scratch.Dispose();
    }
}

/// <summary>One fault scenario's outcome: a row of docs/reliability.md.</summary>
internal sealed record FaultResult(string Fault, string Load, ulong KernelErrors, ulong Store, ulong? Journal, ulong? Bus, ulong? Metrics, ulong? Otlp, string Daemon, string Notes)
{
    public ulong Lost => KernelErrors > Store ? KernelErrors - Store : 0;
    public ulong Duplicated => Store > KernelErrors ? Store - KernelErrors : 0;

    /// <summary>Appends the row to $ERRORWATCH_RELIABILITY_RESULTS (tests/faults/run.sh sets it), one JSON object per line.</summary>
    public void Record()
    {
        if (Environment.GetEnvironmentVariable("ERRORWATCH_RELIABILITY_RESULTS") is not { Length: > 0 } file)
            return;
        var line = JsonSerializer.Serialize(new
        {
            kind = "fault",
            fault = Fault,
            load = Load,
            kernel_errors = KernelErrors,
            store = Store,
            journal = Journal,
            bus = Bus,
            metrics = Metrics,
            otlp = Otlp,
            lost = Lost,
            duplicated = Duplicated,
            daemon = Daemon,
            notes = Notes,
        });
        lock (typeof(FaultResult))
            File.AppendAllText(file, line + "\n");
    }
}
