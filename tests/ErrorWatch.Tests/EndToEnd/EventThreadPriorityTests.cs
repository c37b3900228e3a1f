using System.Diagnostics;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.Recovery;
using ErrorWatch.Tests.Service;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>
/// [Watch] PriorityBoost on the shipped daemon: the two event threads (which trade the read and decode roles) run at nice −N with the
/// 0.1 ms slice, every other thread of the daemon and every hook it starts at nice 0 with the default
/// slice, and PriorityBoost=0 leaves the threads as the kernel made them.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class EventThreadPriorityTests : IDisposable
{
    private const long ShortSlice = 100_000;
    private readonly HookDirectory _dir = new();
    private readonly System.Text.StringBuilder _stderr = new();

    public void Dispose() => _dir.Dispose();

    private sealed record ThreadScheduling(int Tid, string Name, int Nice, long Slice);

    /// <summary>Each thread's name, nice value (stat field 19) and EEVDF slice (se.slice in sched).</summary>
    private static List<ThreadScheduling> Threads(int pid)
    {
        var threads = new List<ThreadScheduling>();
        foreach (var task in Directory.EnumerateDirectories($"/proc/{pid}/task"))
        {
            try
            {
                var stat = File.ReadAllText(Path.Combine(task, "stat"));
                var name = stat[(stat.IndexOf('(') + 1)..stat.LastIndexOf(')')];
                var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
                threads.Add(new ThreadScheduling(int.Parse(Path.GetFileName(task)), name, int.Parse(fields[19 - 3]), Slice(File.ReadAllLines(Path.Combine(task, "sched")))));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // the thread ended meanwhile
            }
        }
        return threads;
    }

    private static long Slice(IEnumerable<string> sched) =>
        sched.Where(l => l.StartsWith("se.slice", StringComparison.Ordinal)).Select(l => long.Parse(l.Split(':')[1].Trim())).Single();

    private Process Start(ScratchFilesystem fs, string extraWatch, NotifySocket notify, int? niced = null)
    {
        var config = Path.Combine(_dir.Path, "errorwatch.conf");
        File.WriteAllText(config, $"[Watch]\nFilesystems={fs.MountPoint}\n{extraWatch}\n[Hooks]\nDirectory={_dir.Hooks}\n");
        var psi = ErrorWatchBinary.StartInfo(["run", "--config", config, "--state-dir", _dir.State, "--output", "none", "--journal", "no",
            "--bus", "none", "--metrics-listen", "none", "--log-level", "Debug"]);
        psi.Environment["NOTIFY_SOCKET"] = notify.Address;
        if (niced is { } n)
        {
            // nice(1) executes the daemon in its own process: the pid stays the daemon's.
            psi.ArgumentList.Insert(0, psi.FileName);
            psi.ArgumentList.Insert(0, n.ToString(System.Globalization.CultureInfo.InvariantCulture));
            psi.ArgumentList.Insert(0, "-n");
            psi.FileName = "nice";
        }
        var process = ErrorWatchBinary.StartCollecting(psi, _stderr);
        if (!notify.UntilReady().Contains("READY=1"))
        {
            // Never ready: ours to end before failing, or it outlives the test.
            OwnProcess.Stop(process);
            Assert.Fail($"no READY=1; stderr: {_stderr}");
        }
        return process;
    }

    /// <summary>The daemon's threads once the decode thread has started and set itself up (it starts just after READY=1).</summary>
    private static List<ThreadScheduling> Settled(int pid, Func<List<ThreadScheduling>, bool> done)
    {
        var clock = Stopwatch.StartNew();
        var threads = Threads(pid);
        while (!done(threads) && clock.Elapsed < TimeSpan.FromSeconds(10))
        {
            Thread.Sleep(50);
            threads = Threads(pid);
        }
        return threads;
    }

    [LoopFact]
    public void The_read_and_decode_threads_run_boosted_and_no_other_thread_or_hook_inherits_it()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("boost");
        // What the hook's own process runs at (awk and grep are its children, started without a boost of their own).
        _dir.Write("all-sched", $"""
            #!/bin/sh
            awk '{"{"}print $19{"}"}' /proc/$$/stat > '{_dir.Out}/nice'
            grep '^se.slice' /proc/$$/sched | tr -dc 0-9 > '{_dir.Out}/slice'
            """);
        using var notify = new NotifySocket();
        using var process = Start(fs, "", notify);
        try
        {
            var threads = Settled(process.Id, t => t.Any(x => x.Name == EventThreadNames.Second && x.Nice == -4));
            var boosted = threads.Where(t => t.Name is EventThreadNames.First or EventThreadNames.Second).ToList();
            Assert.Equal([EventThreadNames.First, EventThreadNames.Second], boosted.Select(t => t.Name).Order());
            Assert.All(boosted, t => Assert.Equal((-4, ShortSlice), (t.Nice, t.Slice)));
            // The main thread, the runtime's, the health loop's, the mount tracker's: none raised.
            var others = threads.Except(boosted).ToList();
            Assert.True(others.Count >= 3, string.Join(", ", others));
            Assert.All(others, t => Assert.True(t.Nice == 0 && t.Slice != ShortSlice, $"{t} is boosted too"));

            // A hook is started on the decode thread's side of the pipeline: it begins at nice 0 and the default slice.
            fs.TriggerFsErrors(1);
            var nice = Path.Combine(_dir.Out, "nice");
            var slice = Path.Combine(_dir.Out, "slice");
            var clock = Stopwatch.StartNew();
            while (!(File.Exists(slice) && File.ReadAllText(slice).Length > 0) && clock.Elapsed < TimeSpan.FromSeconds(30))
                Thread.Sleep(50);
            Assert.Equal("0", File.ReadAllText(nice).Trim());
            Assert.NotEqual(ShortSlice, long.Parse(File.ReadAllText(slice)));
        }
        finally
        {
            OwnProcess.Stop(process);
        }
    }

    [LoopFact]
    public void PriorityBoost_0_leaves_every_thread_as_the_kernel_made_it()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("noboost");
        using var notify = new NotifySocket();
        using var process = Start(fs, "PriorityBoost=0", notify);
        try
        {
            var threads = Settled(process.Id, t => t.Any(x => x.Name == EventThreadNames.Second));
            Assert.Contains(threads, t => t.Name == EventThreadNames.Second);
            Assert.Contains(threads, t => t.Name == EventThreadNames.First);
            Assert.All(threads, t => Assert.True(t.Nice == 0 && t.Slice != ShortSlice, $"{t} is boosted"));
        }
        finally
        {
            OwnProcess.Stop(process);
        }
    }

    [LoopFact]
    public void The_boost_is_relative_to_the_nice_value_the_daemon_was_started_with()
    {
        // An admin who runs it niced keeps it niced: started at nice 10, the event threads run at 6.
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("niced");
        using var notify = new NotifySocket();
        using var process = Start(fs, "", notify, niced: 10);
        try
        {
            var threads = Settled(process.Id, t => t.Any(x => x.Name == EventThreadNames.Second && x.Nice == 6));
            Assert.All(threads.Where(t => t.Name is EventThreadNames.First or EventThreadNames.Second), t => Assert.Equal((6, ShortSlice), (t.Nice, t.Slice)));
            Assert.Equal(2, threads.Count(t => t.Name is EventThreadNames.First or EventThreadNames.Second));
            Assert.All(threads.Where(t => t.Name is not (EventThreadNames.First or EventThreadNames.Second)), t => Assert.Equal(10, t.Nice));
        }
        finally
        {
            OwnProcess.Stop(process);
        }
    }
}
