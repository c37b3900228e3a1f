using System.Collections.Concurrent;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Decoding;
using ErrorWatch.Modules;
using ErrorWatch.Publishing;
using ErrorWatch.Reports;
using ErrorWatch.Watching;
using Serilog;
using Serilog.Events;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>
/// Tests that mount scratch filesystems or talk to journald run one at a time (they share loop
/// devices, the mount table and one journald, which a test run starts when none is listening).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ScratchCollection : ICollectionFixture<Journal.JournaldFixture>
{
    public const string Name = "Scratch filesystems";
}

/// <summary>
/// A fact that needs root and loop devices: skipped only where those are missing, saying so.
/// Missing mkfs/debugfs tools are not a reason to skip: the test command installs them, and a
/// test that cannot find them fails loudly.
/// </summary>
public sealed class LoopFactAttribute : FactAttribute
{
    public LoopFactAttribute()
    {
        if (Interop.Libc.GetEuid() != 0)
            Skip = "needs root to loop-mount scratch filesystems";
        else if (!File.Exists("/dev/loop-control"))
            Skip = "needs loop devices (/dev/loop-control is missing)";
    }
}

/// <summary>A temporary directory for scratch images; everything in it is unmounted and detached on dispose.</summary>
public sealed class ScratchDirectory : IDisposable
{
    private readonly List<ScratchFilesystem> _filesystems = new();

    public ScratchDirectory() => Path = Directory.CreateTempSubdirectory("errorwatch-test-").FullName;

    public string Path { get; }

    public ScratchFilesystem Ext4(string name, string mountOptions = "errors=continue", Action<string>? prepare = null, params string[] mkfs)
        => Track(ScratchFilesystem.Create(Path, name, "ext4", 32, mkfs.Length > 0 ? mkfs : ["-O", "metadata_csum"], mountOptions, prepare));

    public ScratchFilesystem Xfs(string name, params string[] mkfs) => Track(ScratchFilesystem.Create(Path, name, "xfs", 320, mkfs, ""));

    /// <summary>Two ext4s with one UUID (and so one fsid), as cloned images or LVM snapshots are: both mounted errors=continue.</summary>
    public (ScratchFilesystem Original, ScratchFilesystem Clone) Ext4Twins(string name)
    {
        var original = Ext4(name);
        original.Unmount();
        var cloneImage = System.IO.Path.Combine(Path, name + "-clone.img");
        File.Copy(original.Image, cloneImage);
        original.Mount("errors=continue");
        return (original, Track(ScratchFilesystem.Attach(cloneImage, System.IO.Path.Combine(Path, name + "-clone"), "ext4", "errors=continue")));
    }

    public ScratchFilesystem Track(ScratchFilesystem fs)
    {
        _filesystems.Add(fs);
        return fs;
    }

    public void Dispose()
    {
        foreach (var fs in Enumerable.Reverse(_filesystems))
            fs.Dispose();
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The real daemon, in process, publishing to a collection the test can wait on.</summary>
public sealed class DaemonHarness : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;

    private readonly string? _ownStateDirectory;

    /// <param name="bus">Also runs the D-Bus service on that bus, as errorwatch run does.</param>
    /// <param name="sinks">More outputs (the hooks), before the collecting one: a collected report has been offered to them.</param>
    public DaemonHarness(DaemonOptions options, FilesystemModules? registry = null, ErrorWatch.Publishing.DBus.BusOptions? bus = null,
        IReadOnlyList<IReportSink>? sinks = null)
    {
        // Never the machine's /var/lib/errorwatch: a test gets its own state unless it passes one.
        if (options.StateDirectory == ErrorWatch.Health.HealthBaseline.DefaultDirectory())
        {
            _ownStateDirectory = Directory.CreateTempSubdirectory("errorwatch-state-").FullName;
            options = options with { StateDirectory = _ownStateDirectory };
        }
        var log = new LoggerConfiguration().MinimumLevel.Is(LogEventLevel.Warning).WriteTo.Console(standardErrorFromLevel: LogEventLevel.Verbose).CreateLogger();
        if (bus is not null)
            Bus = new ErrorWatch.Publishing.DBus.BusService(bus, options.StateDirectory, log);
        Daemon = new ErrorWatchDaemon(options, registry ?? FilesystemModules.CreateDefault(),
            [.. (Bus is null ? Array.Empty<IReportSink>() : [Bus]), .. sinks ?? [], new CallbackSink(Reports.Add)], log);
        Bus?.Attach(Daemon);
        Capabilities = Daemon.Start();
        if (Bus is not null)
        {
            Bus.KernelSupportsFsError = Capabilities.FsErrorMarksAccepted;
            Bus.Start(TimeSpan.FromSeconds(5));
        }
        _running = Daemon.RunAsync(_stop.Token);
    }

    public static DaemonHarness Watching(params string[] mountPoints) =>
        new(new DaemonOptions { Watch = new WatchOptions { Include = mountPoints } });

    public ErrorWatchDaemon Daemon { get; }
    public ErrorWatch.Publishing.DBus.BusService? Bus { get; }
    public Capabilities Capabilities { get; }
    public BlockingCollection<CorruptionReport> Reports { get; } = new();

    /// <summary>Collects reports until <paramref name="done"/> holds for what was collected, or the timeout.</summary>
    public List<CorruptionReport> Collect(Func<List<CorruptionReport>, bool> done, TimeSpan? timeout = null)
    {
        var collected = new List<CorruptionReport>();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (!done(collected) && DateTime.UtcNow < deadline)
        {
            if (Reports.TryTake(out var report, 100))
                collected.Add(report);
        }
        return collected;
    }

    /// <summary>Collects until the error counts reported for <paramref name="fs"/> equal the growth of its errors_count.</summary>
    public List<CorruptionReport> CollectMatchingErrorsCount(ScratchFilesystem fs, ulong baseline, ulong atLeast)
    {
        return Collect(reports =>
        {
            var sum = reports.Where(r => r.Filesystem.Device == fs.LoopDevice).Aggregate(0UL, (s, r) => s + r.Error.Count);
            return sum >= atLeast && sum == fs.ErrorsCount - baseline;
        });
    }

    public void Dispose()
    {
        _stop.Cancel();
        _running.Wait(TimeSpan.FromSeconds(5));
        Bus?.Dispose();
        Daemon.Dispose();
        if (_ownStateDirectory is not null)
            Directory.Delete(_ownStateDirectory, recursive: true);
    }
}
