using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Store;
using ErrorWatch.Tests.EndToEnd;
using ErrorWatch.Tests.Service;
using ErrorWatch.Tests.Store;
using ErrorWatch.Watching;
using Xunit.Abstractions;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// What an unprivileged caller can make the real service do on a real dbus-daemon (system-bus
/// policy plus deploy/dbus's): floods of privileged calls while polkit never answers, hostile report
/// ids, huge GetReports limits, Properties.Set, unknown paths and signals. The service runs in this
/// process (DaemonHarness) and watches no filesystem; its store is written here beforehand. Its RSS
/// would be this whole test process's, so what must stay bounded is read from its own counters.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class BusLimitsTests(ITestOutputHelper output)
{
    private const string Service = BusNames.Service;
    private const string Root = BusNames.RootPath;
    private const string Manager = BusNames.ManagerInterface;

    private static DaemonHarness Daemon(BusDaemon bus, string state, AuthorizationLimits? limits = null) =>
        new(new DaemonOptions
        {
            // Nothing to watch: these tests are about the bus, and must not pick up other tests' mounts.
            Watch = new WatchOptions { Include = [Path.Combine(bus.TempDirectory, "no-such-filesystem")] },
            StateDirectory = state,
        }, bus: new BusOptions { Bus = bus.Address, Authorization = limits ?? new AuthorizationLimits() });

    /// <summary>A state directory holding <paramref name="count"/> stored reports, one second apart, oldest first.</summary>
    private static List<string> Store(string state, int count, FsPath? path = null)
    {
        var start = DateTimeOffset.UtcNow.AddHours(-1);
        var ids = new List<string>();
        using var store = ReportStore.Open(state, new StoreOptions(), Serilog.Core.Logger.None);
        for (var i = 1; i <= count; i++)
        {
            var report = ReportStoreTests.Report(i, time: start.AddSeconds(i), path: path);
            store.Append(report);
            ids.Add(report.Id);
        }
        return ids;
    }

    [BusFact]
    public void A_flood_of_privileged_calls_while_polkit_never_answers_stays_bounded_and_root_gets_through()
    {
        var limits = new AuthorizationLimits { PerUser = 8, Total = 12, CheckTimeout = TimeSpan.FromSeconds(2) };
        using var bus = new BusDaemon(withPolkitPolicy: true);
        using var polkit = SilentPolkit(bus);
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        var ids = Store(state, 3);
        using var daemon = Daemon(bus, state, limits);
        Assert.True(daemon.Bus!.IsConnected, daemon.Bus.Problem);

        // Two users: nobody fills its own share first, and the second user, flooding too, then meets the total.
        var script = Client.Script(bus.TempDirectory, "flood.py", FloodScript);
        using var nobody = Client.Start(BusCaller.Nobody, BusCaller.Python, script, bus.Address, "Acknowledge", "20000", "100", ids[0]);
        Assert.True(nobody.WaitFor(l => l.Contains("\"flooding\""), TimeSpan.FromSeconds(10)) is not null, nobody.Transcript());
        var deadline = Stopwatch.StartNew();
        while (daemon.Bus.AuthorizationsWaiting < limits.PerUser && deadline.Elapsed < TimeSpan.FromSeconds(10))
            Thread.Sleep(5);
        // Another user the bus accepts (dbus-daemon drops connections of uids without a passwd entry).
        var other = new BusCaller("www-data", int.Parse(Tool.Check("id", "-u", "www-data").Trim()));
        using var second = Client.Start(other, BusCaller.Python, script, bus.Address, "RescanFilesystems", "5000", "100");
        Assert.True(second.WaitFor(l => l.Contains("\"flooding\""), TimeSpan.FromSeconds(10)) is not null, second.Transcript());

        // Root's calls neither wait for polkit nor queue behind the flood.
        var rootCalls = 0;
        var rootCallsDuringFlood = 0;
        string? nobodyDone = null;
        while (rootCalls < 20 || nobodyDone is null)
        {
            var watch = Stopwatch.StartNew();
            Busctl(bus, BusCaller.Root, "call", Service, Root, Manager, "RescanFilesystems");
            Assert.Contains(ids[2], Busctl(bus, BusCaller.Root, "call", Service, Root, Manager, "GetReport", "s", ids[2]));
            Assert.Contains("t 3", Busctl(bus, BusCaller.Root, "get-property", Service, Root, Manager, "ReportCount"));
            Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"root's three calls took {watch.Elapsed} during the flood");
            Assert.True(daemon.Bus.AuthorizationsWaiting <= limits.Total, $"{daemon.Bus.AuthorizationsWaiting} checks waiting");
            rootCalls++;
            nobodyDone ??= nobody.WaitFor(l => l.Contains("\"answers\""), TimeSpan.FromMilliseconds(50));
            if (nobodyDone is null)
                rootCallsDuringFlood++;
            Assert.True(rootCalls < 2000, "the flood did not end");
        }
        Assert.True(rootCallsDuringFlood >= 3, $"only {rootCallsDuringFlood} rounds of root's calls while nobody flooded");
        var secondDone = second.WaitFor(l => l.Contains("\"answers\""), TimeSpan.FromSeconds(60));
        Assert.NotNull(secondDone);

        output.WriteLine($"nobody: {nobodyDone}\nwww-data: {secondDone}\nroot's rounds during the flood: {rootCallsDuringFlood}; peak waiting: {daemon.Bus.AuthorizationsWaitingPeak}");
        var fromNobody = Answers(nobodyDone);
        var fromSecond = Answers(secondDone);
        // Every call was answered, by the service (nothing from the bus's own limits), with one of two refusals.
        Assert.Equal(20000, fromNobody.Values.Sum());
        Assert.Equal(5000, fromSecond.Values.Sum());
        var nobodyWaited = AssertOnly(fromNobody, 65534, "acknowledge", limits);
        var secondWaited = AssertOnly(fromSecond, other.Uid, "rescan", limits);
        Assert.Contains(fromNobody.Keys, k => k.StartsWith($"{BusNames.LimitsExceeded}: uid 65534 already has 8 authorization checks waiting", StringComparison.Ordinal));
        Assert.Contains(fromSecond.Keys, k => k.StartsWith($"{BusNames.LimitsExceeded}: 12 authorization checks are waiting for polkit, the most allowed in total", StringComparison.Ordinal));

        // What waited is what reached polkit, never more than the limits at once, and all of it ends.
        Assert.InRange(daemon.Bus.AuthorizationsWaitingPeak, limits.PerUser, limits.Total);
        deadline.Restart();
        while (daemon.Bus.AuthorizationsWaiting > 0 && deadline.Elapsed < limits.CheckTimeout * 3)
            Thread.Sleep(50);
        Assert.Equal(0, daemon.Bus.AuthorizationsWaiting);
        Assert.True(nobodyWaited > 0 && secondWaited > 0);
        var checks = polkit.WaitFor(l => l.Contains($"\"check\": {nobodyWaited + secondWaited},"), TimeSpan.FromSeconds(5));
        Assert.True(checks is not null, "polkit saw other than the checks that timed out: " + polkit.Transcript());
        Assert.Null(polkit.WaitFor(l => l.Contains($"\"check\": {nobodyWaited + secondWaited + 1},"), TimeSpan.FromMilliseconds(200)));
    }

    /// <summary>Only the two refusals of a flood against a silent polkit; returns how many waited for polkit until the timeout.</summary>
    private static int AssertOnly(Dictionary<string, int> answers, int uid, string action, AuthorizationLimits limits)
    {
        var timedOut = $"{BusNames.AccessDenied}: polkit did not answer for uid {uid} about {BusNames.Service}.{action} within {limits.CheckTimeout.TotalSeconds:0} s";
        foreach (var (answer, count) in answers)
            Assert.True(answer.StartsWith(timedOut, StringComparison.Ordinal) || answer.StartsWith(BusNames.LimitsExceeded + ": ", StringComparison.Ordinal) && answer.Contains("authorization checks"),
                $"{count} × {answer}");
        return answers.Where(a => a.Key.StartsWith(timedOut, StringComparison.Ordinal)).Sum(a => a.Value);
    }

    private static Dictionary<string, int> Answers(string line) =>
        JsonDocument.Parse(line).RootElement.GetProperty("answers").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetInt32());

    [BusFact]
    public void Polkit_going_away_mid_check_is_named_as_such_at_once_not_as_a_timeout()
    {
        using var bus = new BusDaemon(withPolkitPolicy: true);
        var polkit = SilentPolkit(bus);
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        var ids = Store(state, 1);
        using var daemon = Daemon(bus, state, new AuthorizationLimits { CheckTimeout = TimeSpan.FromSeconds(60), InteractiveTimeout = TimeSpan.FromSeconds(120) });

        var clock = Stopwatch.StartNew();
        // gdbus prints the error's message whole (busctl only the errno's text); its own timeout is 25 s.
        var call = Task.Run(() => Gdbus(bus, BusCaller.Nobody, "Acknowledge", ids[0]));
        Assert.NotNull(polkit.WaitFor(l => l.Contains(BusNames.AcknowledgeAction), TimeSpan.FromSeconds(10)));
        polkit.Dispose(); // polkitd crashes with the check in hand
        Assert.True(call.Wait(TimeSpan.FromSeconds(30)), "the caller was left waiting for the 120 s timeout");
        var refused = call.Result;
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("polkit went away before answering", refused.StdErr);
        Assert.DoesNotContain("within 120 s", refused.StdErr);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30));
    }

    [BusFact]
    public void Reads_never_let_polkit_prompt_and_privileged_calls_only_when_the_caller_allows_it()
    {
        using var bus = new BusDaemon(withPolkitPolicy: true);
        using var polkit = SilentPolkit(bus);
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        var ids = Store(state, 1);
        using var daemon = Daemon(bus, state, new AuthorizationLimits { CheckTimeout = TimeSpan.FromSeconds(1), InteractiveTimeout = TimeSpan.FromSeconds(1) });

        // busctl allows interactive authorization unless told otherwise.
        BusCaller.Nobody.Run("busctl", "--address=" + bus.Address, "call", Service, Root, Manager, "GetReport", "s", ids[0]);
        var read = polkit.WaitFor(l => l.Contains(BusNames.ReadPathsAction), TimeSpan.FromSeconds(5));
        Assert.NotNull(read);
        Assert.Equal(0, JsonDocument.Parse(read).RootElement.GetProperty("flags").GetInt32());

        var refused = BusCaller.Nobody.Run("busctl", "--address=" + bus.Address, "call", Service, Root, Manager, "Acknowledge", "s", ids[0]);
        Assert.NotEqual(0, refused.ExitCode);
        var acknowledge = polkit.WaitFor(l => l.Contains(BusNames.AcknowledgeAction), TimeSpan.FromSeconds(5));
        Assert.NotNull(acknowledge);
        Assert.Equal(1, JsonDocument.Parse(acknowledge).RootElement.GetProperty("flags").GetInt32());
        BusCaller.Nobody.Run("busctl", "--address=" + bus.Address, "--allow-interactive-authorization=no", "call", Service, Root, Manager, "RescanFilesystems");
        var rescan = polkit.WaitFor(l => l.Contains(BusNames.RescanAction), TimeSpan.FromSeconds(5));
        Assert.NotNull(rescan);
        Assert.Equal(0, JsonDocument.Parse(rescan).RootElement.GetProperty("flags").GetInt32());
    }

    [BusFact]
    public void A_reply_forged_by_the_caller_does_not_answer_its_waiting_polkit_check()
    {
        using var bus = new BusDaemon(withPolkitPolicy: true);
        using var polkit = SilentPolkit(bus);
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        using var daemon = Daemon(bus, state, new AuthorizationLimits { CheckTimeout = TimeSpan.FromSeconds(3) });
        var unique = JsonDocument.Parse(Busctl(bus, BusCaller.Root, "--json=short", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
            "org.freedesktop.DBus", "GetNameOwner", "s", Service)).RootElement.GetProperty("data")[0].GetString()!;

        // While its RescanFilesystems waits for polkit, nobody sends "polkit's" answer (authorized)
        // under every serial the daemon's CheckAuthorization could carry.
        var forger = BusCaller.Nobody.Run(BusCaller.Python, "-c", ForgedReplies, bus.Address, unique);
        Assert.True(forger.ExitCode == 0, forger.StdErr);
        Assert.NotNull(polkit.WaitFor(l => l.Contains(BusNames.RescanAction), TimeSpan.FromSeconds(1)));
        Assert.StartsWith($"{BusNames.AccessDenied}: polkit did not answer for uid 65534 about {BusNames.RescanAction} within 3 s", forger.StdOut);
        // The bus stopped them: only replies to calls it saw pass, and our policy lets nothing else reach the daemon.
        Assert.Matches("Rejected send message.*type=\"method_return\".*requested_reply=\"0\"", bus.Output);
    }

    [BusFact]
    public void Hostile_report_ids_are_refused_before_any_file_is_opened()
    {
        Assert.True(Tool.Exists("strace"), "strace is missing: scripts/test.sh installs it");
        using var bus = new BusDaemon();
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        var ids = Store(state, 3);
        using var daemon = Daemon(bus, state);
        var script = Client.Script(bus.TempDirectory, "hostile-ids.py", HostileIdsScript);
        var unknown = Guid.CreateVersion7().ToString();

        // Once before tracing, so whatever the runtime loads on first use is loaded.
        var first = BusCaller.Nobody.Run(BusCaller.Python, script, bus.Address);
        Assert.True(first.ExitCode == 0, first.StdErr);

        var segments = Directory.GetFiles(Path.Combine(state, ReportStore.DirectoryName), "*.log");
        var trace = Path.Combine(bus.TempDirectory, "strace.out");
        // Two threads traced: strace starts each line with the thread id ("TID " into a file, "[pid TID] " on a terminal).
        string[] TraceLines() => File.Exists(trace) ? [.. File.ReadAllLines(trace).Select(l => Regex.Replace(l, @"^(\[pid\s+\d+\]|\d+)\s+", ""))] : [];
        int SegmentOpens() => TraceLines().Count(l => l.StartsWith("openat(") && segments.Any(s => l.Contains($"\"{s}\"")));
        int before, reads;
        Tool.Result hostile;
        // Only the bus thread, where every call is handled, and the report reader, where the store is read for
        // them: the rest of this test process is none of the test's business.
        using var strace = Process.Start(new ProcessStartInfo("strace",
            ["-qq", "-e", "trace=%file,execve,execveat,open_by_handle_at", "-e", "signal=none", "-o", trace,
             "-p", daemon.Bus!.ThreadId.ToString(), "-p", daemon.Bus.ReaderThreadId.ToString()])
        { UseShellExecute = false, RedirectStandardError = true })!;
        try
        {
            // A marker that reads the store (root, an unknown id): once its opens show up, strace is attached.
            var deadline = Stopwatch.StartNew();
            while (SegmentOpens() == 0)
            {
                Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(15) && !strace.HasExited, "strace did not attach: " + (strace.HasExited ? strace.StandardError.ReadToEnd() : ""));
                Assert.Contains("NoSuchReport", Gdbus(bus, BusCaller.Root, "GetReport", unknown).StdErr);
                Thread.Sleep(100);
            }
            // Two well-formed reads by nobody (the caller's uid asked of the bus, polkit asked about paths, the store read), then the closing marker.
            int WellFormedReads()
            {
                var from = SegmentOpens();
                Assert.Contains(ids[1], Busctl(bus, BusCaller.Nobody, "call", Service, Root, Manager, "GetReport", "s", ids[1]));
                Assert.Contains(ids[2], Busctl(bus, BusCaller.Nobody, "call", Service, Root, Manager, "GetReports", "tu", "0", "4294967295"));
                Assert.Contains("NoSuchReport", Gdbus(bus, BusCaller.Root, "GetReport", unknown).StdErr);
                // strace writes behind the calls: wait until the count stops moving.
                var seen = -1;
                for (var settle = Stopwatch.StartNew(); settle.Elapsed < TimeSpan.FromSeconds(10) && SegmentOpens() != seen; Thread.Sleep(300))
                    seen = SegmentOpens();
                return SegmentOpens() - from;
            }
            reads = WellFormedReads();
            Assert.True(reads >= 3, $"the three reads opened a segment {reads} times");
            before = SegmentOpens();

            hostile = BusCaller.Nobody.Run(BusCaller.Python, script, bus.Address);
            Assert.Equal(reads, WellFormedReads());
        }
        finally
        {
            OwnProcess.Stop(strace);
        }
        // The three reads' opens and nothing from the hostile calls: not even the store...
        Assert.Equal(before + reads, SegmentOpens());
        // ...nor any path they named, nor a program; and the reads touched the store only (no /proc/PID of the caller either).
        var lines = TraceLines();
        var storeDirectory = Path.Combine(state, ReportStore.DirectoryName);
        foreach (var line in lines)
        {
            Assert.DoesNotContain("exec", line.Split('(')[0]);
            foreach (Match quoted in Regex.Matches(line, "\"([^\"]*)\""))
                Assert.True(quoted.Groups[1].Value.Length == 0 || quoted.Groups[1].Value.StartsWith(storeDirectory, StringComparison.Ordinal),
                    $"the bus or reader thread touched {quoted.Groups[1].Value}: {line}");
        }

        // And each was answered InvalidArgs, never with the argument echoed whole (a short, printable one at most).
        Assert.True(hostile.ExitCode == 0, hostile.StdErr);
        var answers = hostile.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(40, answers.Count);
        foreach (var answer in answers)
        {
            Assert.True(answer.GetProperty("error").GetString() == BusNames.InvalidArgs, answer.GetRawText());
            Assert.True(answer.GetProperty("message_length").GetInt32() < 200, answer.GetRawText());
        }
    }

    [BusFact]
    public void GetReports_with_a_huge_max_is_bounded_by_count_and_size_and_pages_on()
    {
        using var bus = new BusDaemon();
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        // About 9 KiB of JSON each (a 3,000-byte path, with its base64): 700 make 6 MiB, more than one reply may hold.
        var path = FsPath.FromString("/srv/" + new string('p', 3000));
        var ids = Store(state, 700, path);
        var sizes = new Dictionary<string, int>();
        StoredReports.Query(state, new ReportQuery(), (in StoredRecord r) =>
        {
            sizes[r.Facts().Id] = r.Json.Length;
            return true;
        });
        Assert.True(sizes.Values.Sum() > BusService.ReplyBudgetBytes);
        using var daemon = Daemon(bus, state);
        var script = Client.Script(bus.TempDirectory, "get-reports.py", GetReportsScript);

        // nobody, with the largest max there is: a reply that stops at the size budget (root's, with the paths, is the same list).
        var first = GetReports(bus, BusCaller.Nobody, script, 0, uint.MaxValue);
        Assert.Equal(ids.Take(first.Count), first);
        Assert.InRange(first.Sum(id => sizes[id]), BusService.ReplyBudgetBytes, BusService.ReplyBudgetBytes + sizes.Values.Max());
        Assert.Equal(first, GetReports(bus, BusCaller.Root, script, 0, uint.MaxValue));

        // Paging with the time of the last report received reaches every report.
        var all = new List<string>(first);
        while (all.Count < ids.Count)
        {
            var page = GetReports(bus, BusCaller.Nobody, script, StoredMicroseconds(state, all[^1]), uint.MaxValue);
            var fresh = page.Where(id => !all.Contains(id)).ToList();
            Assert.True(fresh.Count > 0, "a page brought nothing new");
            all.AddRange(fresh);
        }
        Assert.Equal(ids, all);

        // Small max and a since past everything: what was asked for, and nothing.
        Assert.Equal(ids.Take(5), GetReports(bus, BusCaller.Nobody, script, 0, 5));
        Assert.Empty(GetReports(bus, BusCaller.Nobody, script, ulong.MaxValue, uint.MaxValue));
    }

    [BusFact]
    public void Store_reads_run_off_the_bus_thread_a_few_at_a_time_and_the_rest_are_refused()
    {
        using var bus = new BusDaemon();
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        // ~27 MiB of stored JSON: every GetReport of an id that is not there reads all of it.
        Store(state, 3000, FsPath.FromString("/srv/" + new string('p', 3000)));
        using var daemon = Daemon(bus, state);
        var script = Client.Script(bus.TempDirectory, "read-flood.py", ReadFloodScript);
        var missing = Guid.CreateVersion7().ToString();

        var result = BusCaller.Nobody.Run(BusCaller.Python, script, bus.Address, "12", missing);
        Assert.True(result.ExitCode == 0, result.StdErr);
        var answers = JsonDocument.Parse(result.StdOut).RootElement.EnumerateArray()
            .Select(a => (Kind: a[0].GetString()!, At: a[1].GetDouble(), Answer: a[2].GetString()!)).ToList();
        output.WriteLine(string.Join(Environment.NewLine, answers));

        var reads = answers.Where(a => a.Kind == "read").ToList();
        Assert.Equal(12, reads.Count);
        Assert.All(reads, a => Assert.Contains(a.Answer, new[] { BusNames.NoSuchReport, BusNames.LimitsExceeded }));
        var done = reads.Where(a => a.Answer == BusNames.NoSuchReport).ToList();
        var refused = reads.Count(a => a.Answer == BusNames.LimitsExceeded);
        Assert.InRange(done.Count, 1, 12 - 1);
        Assert.Equal(refused, daemon.Bus!.StoreReadsRefused);
        // The bus thread answered a property while the store was being read for the others.
        var property = Assert.Single(answers, a => a.Kind == "property");
        Assert.Equal("ok", property.Answer);
        Assert.True(property.At < done.Max(a => a.At), "the property was answered only after every read");
    }

    /// <summary>The stored time of a report, as GetReports compares it with since.</summary>
    private static ulong StoredMicroseconds(string state, string id)
    {
        ulong found = 0;
        StoredReports.Query(state, new ReportQuery(), (in StoredRecord r) =>
        {
            if (r.Facts().Id == id)
                found = BusService.Microseconds(r.Time);
            return true;
        });
        return found;
    }

    private static List<string> GetReports(BusDaemon bus, BusCaller caller, string script, ulong since, uint max)
    {
        var result = caller.Run(BusCaller.Python, script, bus.Address, since.ToString(), max.ToString());
        Assert.True(result.ExitCode == 0, result.StdErr);
        return [.. JsonDocument.Parse(result.StdOut).RootElement.EnumerateArray().Select(e => e.GetString()!)];
    }

    [BusFact]
    public void Properties_are_read_only_to_root_and_nobody()
    {
        using var bus = new BusDaemon();
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        using var daemon = Daemon(bus, state);

        // Root reaches the service (the bus lets root send anything), which refuses: nothing is writable.
        foreach (var (property, value) in new[] { ("Version", "<'x'>"), ("ReportCount", "<uint64 0>"), ("LastReportId", "<'x'>") })
        {
            var asRoot = BusCaller.Root.Run("gdbus", "call", "--address", bus.Address, "--dest", Service, "--object-path", Root,
                "--method", "org.freedesktop.DBus.Properties.Set", Manager, property, value);
            Assert.NotEqual(0, asRoot.ExitCode);
            Assert.Contains($"org.freedesktop.DBus.Error.PropertyReadOnly: Property '{property}' is not writable", asRoot.StdErr);
        }
        // nobody does not even reach it.
        var asNobody = BusCaller.Nobody.Run("gdbus", "call", "--address", bus.Address, "--dest", Service, "--object-path", Root,
            "--method", "org.freedesktop.DBus.Properties.Set", Manager, "Version", "<'x'>");
        Assert.NotEqual(0, asNobody.ExitCode);
        Assert.Contains($"{BusNames.AccessDenied}: Rejected send message", asNobody.StdErr);
        Assert.Contains(ProductVersion.Text, Busctl(bus, BusCaller.Nobody, "get-property", Service, Root, Manager, "Version"));
    }

    [BusFact]
    public void Unknown_paths_answer_unknown_object_and_no_signal_reaches_the_service()
    {
        using var bus = new BusDaemon();
        var state = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "state")).FullName;
        using var daemon = Daemon(bus, state);

        foreach (var path in new[] { "/io/github/errorwatch/nothere", Root + "/filesystems/sda1", Root + "/filesystems/_2e_2e" })
        {
            var call = BusCaller.Nobody.Run("gdbus", "call", "--address", bus.Address, "--dest", Service, "--object-path", path, "--method", Manager + ".GetReports", "0", "0");
            Assert.Contains($"org.freedesktop.DBus.Error.UnknownObject: Unknown object '{path}'", call.StdErr);
            var properties = BusCaller.Nobody.Run("gdbus", "call", "--address", bus.Address, "--dest", Service, "--object-path", path,
                "--method", "org.freedesktop.DBus.Properties.GetAll", BusNames.FilesystemInterface);
            Assert.Contains("org.freedesktop.DBus.Error.UnknownObject", properties.StdErr);
        }
        // Introspection is generated by sd-bus from what is exported, and nothing is at other paths.
        Assert.Contains("org.freedesktop.DBus.Error.UnknownObject", BusCaller.Nobody.Run("gdbus", "introspect", "--address", bus.Address, "--dest", Service, "--object-path", "/a/b/c").StdErr);

        // The service subscribes to nothing, so no broadcast signal is ever delivered to it...
        var stats = JsonDocument.Parse(Busctl(bus, BusCaller.Root, "--json=short", "call", "org.freedesktop.DBus", "/org/freedesktop/DBus",
            "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats", "s", Service)).RootElement.GetProperty("data")[0];
        Assert.Equal(0u, stats.GetProperty("MatchRules").GetProperty("data").GetUInt32());
        // ...and a signal addressed to it is stopped by the bus.
        var unique = stats.GetProperty("UniqueName").GetProperty("data").GetString()!;
        var sent = BusCaller.Nobody.Run(BusCaller.Python, "-c", UnicastSignal, bus.Address, unique);
        Assert.True(sent.ExitCode == 0, sent.StdErr);
        var deadline = Stopwatch.StartNew();
        while (!bus.Output.Contains("type=\"signal\"") && deadline.Elapsed < TimeSpan.FromSeconds(5))
            Thread.Sleep(50);
        Assert.Contains("Rejected send message", bus.Output);
        Assert.Matches($"type=\"signal\".*member=\"ReportAdded\".*destination=\"{Regex.Escape(unique)}\"", bus.Output);
        Assert.Contains("t 0", Busctl(bus, BusCaller.Nobody, "get-property", Service, Root, Manager, "ReportCount"));
    }

    private static Client SilentPolkit(BusDaemon bus)
    {
        var uid = int.Parse(Tool.Check("id", "-u", "polkitd").Trim());
        var script = Client.Script(bus.TempDirectory, "silent-polkit.py",
            File.ReadAllText(Path.Combine(ServicePaths.RepositoryRoot, "tests", "ErrorWatch.Tests", "DBus", "silent-polkit.py")));
        var polkit = Client.Start(new BusCaller("polkitd", uid), BusCaller.Python, script, bus.Address);
        if (polkit.WaitFor(l => l == "owned" || l.StartsWith("refused") || l.StartsWith("stderr"), TimeSpan.FromSeconds(15)) is not "owned")
        {
            var transcript = polkit.Transcript();
            polkit.Dispose();
            throw new InvalidOperationException("the silent polkit did not take its name: " + transcript);
        }
        return polkit;
    }

    private static string Busctl(BusDaemon bus, BusCaller caller, params string[] args)
    {
        var result = caller.Run("busctl", ["--address=" + bus.Address, .. args]);
        Assert.True(result.ExitCode == 0, $"busctl {string.Join(' ', args)} as {caller}: {result.StdErr}");
        return result.StdOut;
    }

    private static Tool.Result Gdbus(BusDaemon bus, BusCaller caller, string method, params string[] args) =>
        caller.Run("gdbus", ["call", "--address", bus.Address, "--dest", Service, "--object-path", Root, "--method", $"{Manager}.{method}", .. args]);

    /// <summary>
    /// usage: flood.py ADDRESS MEMBER COUNT WINDOW [ID]. Calls MEMBER COUNT times on one connection,
    /// WINDOW at a time (below dbus-daemon's 128 pending replies per connection, so every call
    /// reaches the service), and prints {"answers": {"error name: message" or "ok": count}}.
    /// </summary>
    private const string FloodScript = """
        import collections, json, sys, time
        from gi.repository import Gio, GLib

        address, member, count, window = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
        args = GLib.Variant("(s)", (sys.argv[5],)) if len(sys.argv) > 5 else None
        connection = Gio.DBusConnection.new_for_address_sync(
            address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        answers = collections.Counter()
        state = {"sent": 0, "done": 0}
        loop = GLib.MainLoop()

        def answered(conn, result, _):
            try:
                conn.call_finish(result)
                answers["ok"] += 1
            except GLib.Error as e:
                name = Gio.DBusError.get_remote_error(e) or "local"
                answers[name + ": " + e.message.removeprefix("GDBus.Error:" + name + ": ")] += 1
            state["done"] += 1
            send()
            if state["done"] == count:
                loop.quit()

        def send():
            while state["sent"] < count and state["sent"] - state["done"] < window:
                state["sent"] += 1
                connection.call("io.github.errorwatch.ErrorWatch1", "/io/github/errorwatch/ErrorWatch1", "io.github.errorwatch.ErrorWatch1.Manager",
                                member, args, None, Gio.DBusCallFlags.NONE, 60000, None, answered, None)

        print(json.dumps({"flooding": member}), flush=True)
        started = time.monotonic()
        send()
        loop.run()
        print(json.dumps({"answers": answers, "seconds": round(time.monotonic() - started, 2)}), flush=True)
        """;

    /// <summary>GetReport and Acknowledge with ids that are no ids; one JSON line per call: {"error", "message_length"}.</summary>
    private const string HostileIdsScript = """
        import json, sys
        from gi.repository import Gio, GLib

        connection = Gio.DBusConnection.new_for_address_sync(
            sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        good = "01936a3e-7b2c-7000-8000-000000000001"
        hostile = [
            "../../etc/shadow", "/etc/shadow", "/proc/self/environ", "../../../../../../var/lib/errorwatch/reports/0000000001.log",
            good + "/../../etc/shadow", "{" + good + "}", "(" + good + ")", " " + good, good + "\n", good.replace("-", ""),
            good[:-1] + "g", good[:-1], good + "0", "%2e%2e%2fetc%2fshadow", "\u2024\u2024/etc/shadow", good.replace("0", "\uff10"),
            "", "A" * 4096, "A" * (16 << 20), "\x1b]0;owned\x07" + good,
        ]
        for member in ("GetReport", "Acknowledge"):
            for text in hostile:
                try:
                    connection.call_sync("io.github.errorwatch.ErrorWatch1", "/io/github/errorwatch/ErrorWatch1", "io.github.errorwatch.ErrorWatch1.Manager",
                                         member, GLib.Variant("(s)", (text,)), None, Gio.DBusCallFlags.NONE, 30000, None)
                    print(json.dumps({"member": member, "sent": text[:80], "error": None, "message_length": 0}), flush=True)
                except GLib.Error as e:
                    name = Gio.DBusError.get_remote_error(e)
                    message = e.message.removeprefix("GDBus.Error:%s: " % name)
                    print(json.dumps({"member": member, "sent": text[:80], "error": name, "message_length": len(message)}), flush=True)
        """;

    /// <summary>usage: get-reports.py ADDRESS SINCE MAX; prints the ids GetReports returned, as a JSON array.</summary>
    /// <summary>
    /// usage: ADDRESS N ID. Sends N GetReport(ID) calls at once, then one Properties.Get of ReportCount,
    /// and prints each answer as [kind, CLOCK_MONOTONIC seconds, "ok" or the D-Bus error name].
    /// </summary>
    private const string ReadFloodScript = """
        import json, sys, time
        from gi.repository import Gio, GLib
        SERVICE, ROOT, MANAGER = "io.github.errorwatch.ErrorWatch1", "/io/github/errorwatch/ErrorWatch1", "io.github.errorwatch.ErrorWatch1.Manager"
        conn = Gio.DBusConnection.new_for_address_sync(
            sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        n, rid = int(sys.argv[2]), sys.argv[3]
        answers, left, loop = [], [n + 1], GLib.MainLoop()
        def answered(kind):
            def callback(c, res, _):
                at = time.monotonic()
                try:
                    c.call_finish(res)
                    answers.append([kind, at, "ok"])
                except GLib.Error as e:
                    answers.append([kind, at, Gio.DBusError.get_remote_error(e) or e.message])
                left[0] -= 1
                if left[0] == 0:
                    loop.quit()
            return callback
        for _ in range(n):
            conn.call(SERVICE, ROOT, MANAGER, "GetReport", GLib.Variant("(s)", (rid,)), None, Gio.DBusCallFlags.NONE, 120000, None, answered("read"), None)
        conn.call(SERVICE, ROOT, "org.freedesktop.DBus.Properties", "Get", GLib.Variant("(ss)", (MANAGER, "ReportCount")),
                  None, Gio.DBusCallFlags.NONE, 120000, None, answered("property"), None)
        loop.run()
        print(json.dumps(answers))
        """;

    private const string GetReportsScript = """
        import json, sys
        import dbus

        bus = dbus.bus.BusConnection(sys.argv[1])
        manager = dbus.Interface(bus.get_object("io.github.errorwatch.ErrorWatch1", "/io/github/errorwatch/ErrorWatch1"), "io.github.errorwatch.ErrorWatch1.Manager")
        reports = manager.GetReports(dbus.UInt64(int(sys.argv[2])), dbus.UInt32(int(sys.argv[3])), timeout=60)
        print(json.dumps([str(r["id"]) for r in reports]))
        """;

    /// <summary>
    /// usage: -c FORGED_REPLIES ADDRESS DAEMON_UNIQUE_NAME. Calls RescanFilesystems, then sends
    /// method returns (authorized, no challenge) with reply serials 1..2000 to the daemon, and
    /// prints how the call was answered: "error name: message" or "ok".
    /// </summary>
    private const string ForgedReplies = """
        import sys, time
        from gi.repository import Gio, GLib
        connection = Gio.DBusConnection.new_for_address_sync(
            sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        answer = []
        def answered(conn, result, _):
            try:
                conn.call_finish(result)
                answer.append("ok")
            except GLib.Error as e:
                name = Gio.DBusError.get_remote_error(e)
                answer.append(name + ": " + e.message.removeprefix("GDBus.Error:%s: " % name))
        connection.call("io.github.errorwatch.ErrorWatch1", "/io/github/errorwatch/ErrorWatch1", "io.github.errorwatch.ErrorWatch1.Manager",
                        "RescanFilesystems", None, None, Gio.DBusCallFlags.NONE, 30000, None, answered, None)
        context = GLib.MainContext.default()
        until = time.monotonic() + 0.5
        while time.monotonic() < until:
            context.iteration(False)
            time.sleep(0.01)
        for serial in range(1, 2001):
            reply = Gio.DBusMessage.new()
            reply.set_message_type(Gio.DBusMessageType.METHOD_RETURN)
            reply.set_reply_serial(serial)
            reply.set_destination(sys.argv[2])
            reply.set_body(GLib.Variant("((bba{ss}))", ((True, False, {}),)))
            connection.send_message(reply, Gio.DBusSendMessageFlags.NONE)
        while not answer:
            context.iteration(True)
        print(answer[0], flush=True)
        """;

    /// <summary>usage: -c UNICAST_SIGNAL ADDRESS DESTINATION; a ReportAdded signal addressed to one connection.</summary>
    private const string UnicastSignal = """
        import sys
        from gi.repository import Gio, GLib
        connection = Gio.DBusConnection.new_for_address_sync(
            sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
        connection.emit_signal(sys.argv[2], "/io/github/errorwatch/ErrorWatch1", "io.github.errorwatch.ErrorWatch1.Manager", "ReportAdded",
                               GLib.Variant("(oa{sv})", ("/io/github/errorwatch/ErrorWatch1", {})))
        connection.flush_sync(None)
        """;
}
