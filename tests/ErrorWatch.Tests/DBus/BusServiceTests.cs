using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using System.Xml.Linq;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Reports;
using ErrorWatch.Tests.EndToEnd;
using ErrorWatch.Tests.Service;
using ErrorWatch.Watching;
using ErrorWatch.Publishing;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// The D-Bus service on a real dbus-daemon (system-bus policy plus deploy/dbus's policy file) with
/// real clients: busctl, gdbus, python3-dbus, and clients running as uid nobody.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class BusServiceTests
{
    private const string Service = BusNames.Service;
    private const string Root = BusNames.RootPath;

    private static DaemonHarness Daemon(BusDaemon bus, string state, bool signalPaths = false, params string[] mountPoints) =>
        new(new DaemonOptions
        {
            Watch = new WatchOptions { Include = mountPoints },
            StateDirectory = state,
        }, bus: new BusOptions { Bus = bus.Address, SignalPaths = signalPaths });

    private static string Busctl(BusDaemon bus, BusCaller caller, params string[] args)
    {
        var result = caller.Run("busctl", ["--address=" + bus.Address, .. args]);
        Assert.True(result.ExitCode == 0, $"busctl {string.Join(' ', args)} as {caller}: {result.StdErr}");
        return result.StdOut;
    }

    /// <summary>A Manager call through gdbus, which prints an error reply's name and message (busctl shows only strerror).</summary>
    private static Tool.Result Gdbus(BusDaemon bus, BusCaller caller, string method, params string[] args) =>
        caller.Run("gdbus", ["call", "--address", bus.Address, "--dest", Service, "--object-path", Root, "--method", $"{BusNames.ManagerInterface}.{method}", .. args]);

    private static JsonElement BusctlJson(BusDaemon bus, BusCaller caller, params string[] args) =>
        JsonDocument.Parse(Busctl(bus, caller, ["--json=short", .. args])).RootElement;

    private static ulong FilesystemProperty(BusDaemon bus, string path, string property) =>
        BusctlJson(bus, BusCaller.Root, "get-property", Service, path, BusNames.FilesystemInterface, property).GetProperty("data").GetUInt64();

    private static string PathOf(ScratchFilesystem fs) => $"{BusNames.FilesystemsPath}/{fs.KernelName}";

    [LoopFact]
    public void A_real_error_reaches_busctl_gdbus_and_python_with_its_properties_changed()
    {
        Assert.True(Tool.Exists("gdbus"), "gdbus is missing: scripts/test.sh installs libglib2.0-bin");
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon();
        var fs = scratch.Ext4("signals");
        using var daemon = Daemon(bus, Path.Combine(scratch.Path, "state"), false, fs.MountPoint);
        Assert.True(daemon.Bus!.IsConnected, daemon.Bus.Problem);

        using var busctl = Client.Start(BusCaller.Root, "busctl", "--address=" + bus.Address, "monitor", "--match", $"type='signal',sender='{Service}'");
        using var gdbus = Client.Start(BusCaller.Root, "gdbus", "monitor", "--address", bus.Address, "--dest", Service);
        using var python = Client.Start(BusCaller.Nobody, BusCaller.Python, Client.Script(scratch.Path, "subscriber.py", SubscriberScript), bus.Address);
        Assert.NotNull(python.WaitFor(l => l.Contains("\"ready\""), TimeSpan.FromSeconds(10)));
        Assert.NotNull(gdbus.WaitFor(l => l.Contains("Monitoring signals"), TimeSpan.FromSeconds(10)));
        Assert.NotNull(busctl.WaitFor(l => l.Contains("Monitoring bus message stream"), TimeSpan.FromSeconds(10)));

        var before = fs.ErrorsCount;
        fs.TriggerFsError("bus test");
        daemon.CollectMatchingErrorsCount(fs, before, atLeast: 1);

        var added = python.WaitFor(l => l.Contains("\"ReportAdded\""), TimeSpan.FromSeconds(10));
        Assert.NotNull(added);
        var signal = JsonDocument.Parse(added).RootElement;
        Assert.Equal(PathOf(fs), signal.GetProperty("path").GetString());
        var report = signal.GetProperty("report");
        Assert.Equal(fs.LoopDevice, report.GetProperty("filesystem").GetProperty("device").GetString());
        Assert.Equal("corruption", report.GetProperty("event").GetString());
        Assert.Equal(117, report.GetProperty("error").GetProperty("errno").GetInt32());
        Assert.Equal(fs.ErrorsCount - before, report.GetProperty("error").GetProperty("count").GetUInt64());

        var changed = python.WaitFor(l => l.Contains("\"PropertiesChanged\"") && l.Contains(PathOf(fs)) && l.Contains("ErrorCount"), TimeSpan.FromSeconds(10));
        Assert.NotNull(changed);
        var properties = JsonDocument.Parse(changed).RootElement.GetProperty("changed");
        Assert.Equal(fs.ErrorsCount - before, properties.GetProperty("ErrorCount").GetUInt64());
        Assert.Equal((uint)FilesystemHealth.Errors, properties.GetProperty("Health").GetUInt32());
        Assert.Equal(report.GetProperty("id").GetString(), properties.GetProperty("LastReportId").GetString());

        Assert.NotNull(busctl.WaitFor(l => l.Contains("Member=ReportAdded"), TimeSpan.FromSeconds(5)));
        Assert.NotNull(gdbus.WaitFor(l => l.Contains($"{BusNames.ManagerInterface}.ReportAdded") && l.Contains(fs.LoopDevice), TimeSpan.FromSeconds(5)));
        Assert.Equal(fs.ErrorsCount - before, FilesystemProperty(bus, PathOf(fs), "ErrorCount"));
    }

    [LoopFact]
    public void Introspection_matches_the_interface_files_in_deploy()
    {
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon();
        var fs = scratch.Ext4("introspect");
        using var daemon = Daemon(bus, Path.Combine(scratch.Path, "state"), false, fs.MountPoint);

        foreach (var (path, iface) in new[] { (Root, BusNames.ManagerInterface), (PathOf(fs), BusNames.FilesystemInterface) })
        {
            var live = XDocument.Parse(Busctl(bus, BusCaller.Nobody, "--xml-interface", "introspect", Service, path));
            var file = XDocument.Load(Path.Combine(ServicePaths.RepositoryRoot, "deploy", "dbus", iface + ".xml"));
            Assert.Equal(Members(file, iface), Members(live, iface));
        }
    }

    /// <summary>Every member as "kind name signature/arg names and directions/access", sorted.</summary>
    private static string[] Members(XDocument doc, string iface)
    {
        var node = doc.Descendants("interface").Single(i => (string?)i.Attribute("name") == iface);
        return [.. node.Elements().Where(e => e.Name != "annotation").Select(e => e.Name.LocalName switch
        {
            "property" => $"property {e.Attribute("name")!.Value} {e.Attribute("type")!.Value} {e.Attribute("access")!.Value}",
            _ => $"{e.Name.LocalName} {e.Attribute("name")!.Value} " + string.Join(",", e.Elements("arg").Select(a =>
                $"{(string?)a.Attribute("name")}:{a.Attribute("type")!.Value}:{(string?)a.Attribute("direction") ?? (e.Name.LocalName == "signal" ? "out" : "in")}")),
        }).Order(StringComparer.Ordinal)];
    }

    [LoopFact]
    public void Object_manager_lists_watched_filesystems_and_follows_mounts()
    {
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon();
        var first = scratch.Ext4("om-first");
        using var daemon = new DaemonHarness(new DaemonOptions { StateDirectory = Path.Combine(scratch.Path, "state"), Watch = new WatchOptions { Include = [first.MountPoint, Path.Combine(scratch.Path, "om-second")] } },
            bus: new BusOptions { Bus = bus.Address });

        var objects = BusctlJson(bus, BusCaller.Nobody, "call", Service, Root, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects").GetProperty("data")[0];
        var fsObject = objects.GetProperty(PathOf(first)).GetProperty(BusNames.FilesystemInterface);
        Assert.Equal(first.LoopDevice, fsObject.GetProperty("Device").GetProperty("data").GetString());
        Assert.Equal("ext4", fsObject.GetProperty("Type").GetProperty("data").GetString());
        Assert.Equal(first.MountPoint, fsObject.GetProperty("Mountpoints").GetProperty("data")[0].GetString());
        Assert.Equal(0u, fsObject.GetProperty("Health").GetProperty("data").GetUInt32());

        using var monitor = Client.Start(BusCaller.Root, "busctl", "--address=" + bus.Address, "monitor", "--match", $"type='signal',sender='{Service}',interface='org.freedesktop.DBus.ObjectManager'");
        Assert.NotNull(monitor.WaitFor(l => l.Contains("Monitoring bus message stream"), TimeSpan.FromSeconds(10)));
        var second = scratch.Ext4("om-second");
        Assert.True(monitor.WaitFor(l => l.Contains("Member=InterfacesAdded"), TimeSpan.FromSeconds(10)) is not null, $"watched {daemon.Daemon.WatchedCount}: " + monitor.Transcript());
        Assert.NotNull(monitor.WaitFor(l => l.Contains(PathOf(second)), TimeSpan.FromSeconds(5)));
        Assert.Equal(2u, BusctlJson(bus, BusCaller.Nobody, "get-property", Service, Root, BusNames.ManagerInterface, "WatchedFilesystems").GetProperty("data").GetUInt32());

        second.Unmount();
        Assert.NotNull(monitor.WaitFor(l => l.Contains("Member=InterfacesRemoved"), TimeSpan.FromSeconds(10)));
        var after = BusctlJson(bus, BusCaller.Nobody, "call", Service, Root, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects").GetProperty("data")[0];
        Assert.False(after.TryGetProperty(PathOf(second), out _));
        Assert.True(after.TryGetProperty(PathOf(first), out _));
    }

    [LoopFact]
    public void An_unprivileged_client_reads_without_paths_and_is_refused_Acknowledge_which_root_may_do()
    {
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon();
        var fs = scratch.Ext4("private", prepare: root =>
        {
            Directory.CreateDirectory(Path.Combine(root, "home", "alice", "diary"));
            for (var i = 0; i < 5; i++)
                File.WriteAllText(Path.Combine(root, "home", "alice", "diary", $"d{i}.txt"), "x");
        });
        fs.CorruptOffline("zap_block -f /home/alice/diary -p 0x41 0");
        using var daemon = Daemon(bus, Path.Combine(scratch.Path, "state"), false, fs.MountPoint);
        using var signals = Client.Start(BusCaller.Nobody, BusCaller.Python, Client.Script(scratch.Path, "subscriber.py", SubscriberScript), bus.Address);
        Assert.NotNull(signals.WaitFor(l => l.Contains("\"ready\""), TimeSpan.FromSeconds(10)));

        var before = fs.ErrorsCount;
        Tool.Run("ls", Path.Combine(fs.MountPoint, "home", "alice", "diary"));
        var reports = daemon.CollectMatchingErrorsCount(fs, before, atLeast: 1);
        var withPath = reports.First(r => r.Object.Path is not null);
        var secret = Path.Combine(fs.MountPoint, "home", "alice", "diary");
        Assert.Equal(secret, withPath.Object.Path!.Text);

        // Broadcast: no path anywhere in what every local user receives.
        var signal = signals.WaitFor(l => l.Contains("\"ReportAdded\"") && l.Contains(withPath.Id), TimeSpan.FromSeconds(10));
        Assert.NotNull(signal);
        Assert.DoesNotContain("alice", signal);
        Assert.True(JsonDocument.Parse(signal).RootElement.GetProperty("report").GetProperty("object").GetProperty("path_withheld").GetBoolean());

        // nobody reads: properties and reports, without the path; root gets the path.
        Assert.Equal((uint)FilesystemHealth.Errors, BusctlJson(bus, BusCaller.Nobody, "get-property", Service, PathOf(fs), BusNames.FilesystemInterface, "Health").GetProperty("data").GetUInt32());
        var asNobody = Busctl(bus, BusCaller.Nobody, "--json=short", "call", Service, Root, BusNames.ManagerInterface, "GetReport", "s", withPath.Id);
        Assert.Contains(withPath.Id, asNobody);
        Assert.DoesNotContain("alice", asNobody);
        var asRoot = Busctl(bus, BusCaller.Root, "--json=short", "call", Service, Root, BusNames.ManagerInterface, "GetReport", "s", withPath.Id);
        Assert.Contains(secret, asRoot);
        var list = BusctlJson(bus, BusCaller.Nobody, "call", Service, Root, BusNames.ManagerInterface, "GetReports", "tu", "0", "0").GetProperty("data")[0];
        Assert.Equal(reports.Count, list.GetArrayLength());
        Assert.DoesNotContain("alice", list.GetRawText());

        // Acknowledge: refused to nobody (no polkit on this bus), allowed to root, and Health follows.
        var refused = Gdbus(bus, BusCaller.Nobody, "Acknowledge", reports[^1].Id);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains($"{BusNames.AccessDenied}: polkit is not available", refused.StdErr);
        Assert.Equal((ulong)FilesystemHealth.Errors, FilesystemProperty(bus, PathOf(fs), "Health"));
        var rescan = BusCaller.Nobody.Run("busctl", "--address=" + bus.Address, "call", Service, Root, BusNames.ManagerInterface, "RescanFilesystems");
        Assert.NotEqual(0, rescan.ExitCode);

        var last = reports.MaxBy(r => r.Id, StringComparer.Ordinal)!;
        Busctl(bus, BusCaller.Root, "call", Service, Root, BusNames.ManagerInterface, "Acknowledge", "s", last.Id);
        Assert.Equal((ulong)FilesystemHealth.Ok, FilesystemProperty(bus, PathOf(fs), "Health"));
        Busctl(bus, BusCaller.Root, "call", Service, Root, BusNames.ManagerInterface, "RescanFilesystems");

        // Unknown and malformed ids are errors with names a client can act on.
        Assert.Contains($"{BusNames.NoSuchReport}: no stored report", Gdbus(bus, BusCaller.Root, "GetReport", Guid.Empty.ToString()).StdErr);
        Assert.Contains($"{BusNames.InvalidArgs}: '../../etc/passwd' is not a report id", Gdbus(bus, BusCaller.Root, "Acknowledge", "../../etc/passwd").StdErr);
    }

    [LoopFact]
    public void Acknowledgements_and_history_survive_a_restart()
    {
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon();
        var state = Path.Combine(scratch.Path, "state");
        var fs = scratch.Ext4("history");
        string first;
        using (var daemon = Daemon(bus, state, false, fs.MountPoint))
        {
            var before = fs.ErrorsCount;
            fs.TriggerFsError("one");
            first = daemon.CollectMatchingErrorsCount(fs, before, atLeast: 1).Single().Id;
            Busctl(bus, BusCaller.Root, "call", Service, Root, BusNames.ManagerInterface, "Acknowledge", "s", first);
            fs.TriggerFsError("two");
            daemon.CollectMatchingErrorsCount(fs, before + 1, atLeast: 1);
        }
        using (var daemon = Daemon(bus, state, false, fs.MountPoint))
        {
            Assert.Equal(2UL, FilesystemProperty(bus, PathOf(fs), "ErrorCount"));
            Assert.Equal(2UL, BusctlJson(bus, BusCaller.Root, "get-property", Service, Root, BusNames.ManagerInterface, "ReportCount").GetProperty("data").GetUInt64());
            // The second error came after the acknowledgement: still red after the restart.
            Assert.Equal((ulong)FilesystemHealth.Errors, FilesystemProperty(bus, PathOf(fs), "Health"));
        }
    }

    [LoopFact]
    public void Polkit_decides_for_unprivileged_callers()
    {
        Assert.True(File.Exists(Polkitd.Binary), $"{Polkitd.Binary} is missing: scripts/test.sh installs polkitd");
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon(withPolkitPolicy: true);
        // The rule lets nobody acknowledge, and nothing else: rescan stays with polkit's default (admin).
        using var polkit = new Polkitd(bus, scratch.Path, $$"""
            polkit.addRule(function(action, subject) {
              if (action.id == "{{BusNames.AcknowledgeAction}}" && subject.user == "nobody")
                return polkit.Result.YES;
            });
            """);
        var fs = scratch.Ext4("polkit");
        using var daemon = Daemon(bus, Path.Combine(scratch.Path, "state"), false, fs.MountPoint);
        var before = fs.ErrorsCount;
        fs.TriggerFsError("polkit");
        var id = daemon.CollectMatchingErrorsCount(fs, before, atLeast: 1).Single().Id;

        Busctl(bus, BusCaller.Nobody, "call", Service, Root, BusNames.ManagerInterface, "Acknowledge", "s", id);
        Assert.Equal((ulong)FilesystemHealth.Ok, FilesystemProperty(bus, PathOf(fs), "Health"));
        var rescan = Gdbus(bus, BusCaller.Nobody, "RescanFilesystems");
        Assert.NotEqual(0, rescan.ExitCode);
        Assert.Contains($"{BusNames.AccessDenied}: uid 65534 is not authorized for {BusNames.RescanAction}", rescan.StdErr);
    }

    [LoopFact]
    public void A_storm_of_errors_leaves_exact_counts_on_the_bus()
    {
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon();
        var fs = scratch.Ext4("storm");
        using var daemon = Daemon(bus, Path.Combine(scratch.Path, "state"), false, fs.MountPoint);
        var before = fs.ErrorsCount;
        fs.TriggerFsErrors(3000);
        var reports = daemon.CollectMatchingErrorsCount(fs, before, atLeast: 3000);
        reports.AddRange(daemon.Collect(_ => false, TimeSpan.FromSeconds(1))); // nothing more may follow
        Assert.True(fs.ErrorsCount - before == reports.Aggregate(0UL, (s, r) => s + r.Error.Count),
            $"{fs.ErrorsCount - before} vs {reports.Aggregate(0UL, (s, r) => s + r.Error.Count)}: " + string.Join("; ", reports.GroupBy(r => $"{r.Source}/{r.EventName}").Select(g => $"{g.Key} x{g.Count()} = {g.Aggregate(0UL, (s, r) => s + r.Error.Count)} {g.First().Finding}")));
        Assert.Equal(fs.ErrorsCount - before, FilesystemProperty(bus, PathOf(fs), "ErrorCount"));
        Assert.Equal((ulong)reports.Count, BusctlJson(bus, BusCaller.Root, "get-property", Service, Root, BusNames.ManagerInterface, "ReportCount").GetProperty("data").GetUInt64());
        Assert.Equal(reports.Count, daemon.Bus!.SignalsSent + daemon.Bus.SignalsDropped);
    }

    [LoopFact]
    public void After_the_bus_restarts_the_service_is_back_and_signals_later_errors()
    {
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon();
        var fs = scratch.Ext4("restart");
        using var daemon = Daemon(bus, Path.Combine(scratch.Path, "state"), false, fs.MountPoint);
        Assert.Equal(1, daemon.Bus!.Connections);

        bus.Stop();
        // Detection goes on without a bus: this error is stored, never lost.
        var before = fs.ErrorsCount;
        fs.TriggerFsError("while the bus is away");
        daemon.CollectMatchingErrorsCount(fs, before, atLeast: 1);
        bus.Restart();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (daemon.Bus.Connections < 2 && DateTime.UtcNow < deadline)
            Thread.Sleep(100);
        Assert.True(daemon.Bus.Connections >= 2, $"not reconnected: {daemon.Bus.Problem}");
        Assert.Contains(Service, Busctl(bus, BusCaller.Nobody, "list", "--acquired"));
        Assert.Equal(1UL, FilesystemProperty(bus, PathOf(fs), "ErrorCount"));

        using var monitor = Client.Start(BusCaller.Root, "busctl", "--address=" + bus.Address, "monitor", "--match", $"type='signal',sender='{Service}',member='ReportAdded'");
        Assert.NotNull(monitor.WaitFor(l => l.Contains("Monitoring bus message stream"), TimeSpan.FromSeconds(10)));
        fs.TriggerFsError("after the restart");
        Assert.NotNull(monitor.WaitFor(l => l.Contains("Member=ReportAdded"), TimeSpan.FromSeconds(10)));
        Assert.Equal(2UL, FilesystemProperty(bus, PathOf(fs), "ErrorCount"));
    }

    /// <summary>Subscribes to ReportAdded and PropertiesChanged and prints each as one JSON line.</summary>
    internal const string SubscriberScript = $$"""
        import json, sys
        import dbus
        from dbus.mainloop.glib import DBusGMainLoop
        from gi.repository import GLib

        DBusGMainLoop(set_as_default=True)
        bus = dbus.bus.BusConnection(sys.argv[1])

        {{Client.PythonPlain}}

        def report_added(path, report):
            print(json.dumps({"signal": "ReportAdded", "path": str(path), "report": plain(report)}), flush=True)

        def changed(interface, properties, invalidated, path=None):
            print(json.dumps({"signal": "PropertiesChanged", "path": str(path), "interface": str(interface), "changed": plain(properties)}), flush=True)

        bus.add_signal_receiver(report_added, "ReportAdded", "io.github.errorwatch.ErrorWatch1.Manager", "io.github.errorwatch.ErrorWatch1")
        bus.add_signal_receiver(changed, "PropertiesChanged", "org.freedesktop.DBus.Properties", "io.github.errorwatch.ErrorWatch1", path_keyword="path")
        print(json.dumps({"ready": True}), flush=True)
        GLib.MainLoop().run()
        """;
}

/// <summary>A long-running client process whose output lines a test waits on; killed by PID on dispose.</summary>
internal sealed class Client : IDisposable
{
    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();
    private readonly List<string> _seen = new();

    private Client(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) _lines.Add(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _lines.Add("stderr: " + e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static Client Start(BusCaller caller, string file, params string[] args) => new(caller.Start(null, file, args));

    /// <summary>For the clients' Python scripts: a reply or signal argument (python-dbus types) as plain JSON-able values.</summary>
    internal const string PythonPlain = """
        def plain(v):
            if isinstance(v, dict):
                return {str(k): plain(x) for k, x in v.items()}
            if isinstance(v, (list, tuple)):
                return [plain(x) for x in v]
            if isinstance(v, dbus.Boolean):
                return bool(v)
            if isinstance(v, int):
                return int(v)
            if isinstance(v, float):
                return float(v)
            return str(v)
        """;

    /// <summary>Writes a script where uid nobody can read it, and returns its path.</summary>
    public static string Script(string directory, string name, string text)
    {
        BusDaemon.MakeWorldReadable(directory);
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, text); // 0644 under the usual umask
        return path;
    }

    /// <summary>The first line (seen before or arriving now) that matches, or null after the timeout.</summary>
    public string? WaitFor(Func<string, bool> match, TimeSpan timeout)
    {
        lock (_seen)
        {
            var earlier = _seen.FindIndex(l => match(l));
            if (earlier >= 0)
            {
                var line = _seen[earlier];
                _seen.RemoveAt(earlier);
                return line;
            }
        }
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (!_lines.TryTake(out var line, 100))
                continue;
            if (match(line))
                return line;
            lock (_seen)
                _seen.Add(line);
        }
        return null;
    }

    public string Transcript()
    {
        while (_lines.TryTake(out var line))
            _seen.Add(line);
        return string.Join('\n', _seen);
    }

    public void Dispose() => OwnProcess.Stop(_process, TimeSpan.FromSeconds(2));
}

/// <summary>
/// A real polkitd on the test's bus, in a private mount namespace where polkit's action and rules
/// directories are the test's own (ErrorWatch's deploy/polkit policy plus the test's rule), so the
/// machine's polkit configuration is neither read nor touched.
/// </summary>
internal sealed class Polkitd : IDisposable
{
    public const string Binary = "/usr/lib/polkit-1/polkitd";
    private readonly Process _process;
    private readonly string _directory;

    public Polkitd(BusDaemon bus, string scratch, string rules)
    {
        _directory = Path.Combine(scratch, "polkit");
        var actions = Path.Combine(_directory, "actions");
        var rulesDirectory = Path.Combine(_directory, "rules.d");
        Directory.CreateDirectory(actions);
        Directory.CreateDirectory(rulesDirectory);
        File.Copy(Path.Combine(ServicePaths.RepositoryRoot, "deploy", "polkit", BusNames.Service + ".policy"), Path.Combine(actions, BusNames.Service + ".policy"));
        File.WriteAllText(Path.Combine(rulesDirectory, "50-errorwatch-test.rules"), rules);
        BusDaemon.MakeWorldReadable(_directory);
        // polkitd switches to its own user by itself; the bind mounts exist only in this namespace.
        var script = $"mount --bind '{actions}' /usr/share/polkit-1/actions && mount --bind '{rulesDirectory}' /etc/polkit-1/rules.d && exec {Binary} --no-debug";
        var start = new ProcessStartInfo("unshare", ["-m", "--propagation", "private", "sh", "-c", script])
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        start.Environment["DBUS_SYSTEM_BUS_ADDRESS"] = bus.Address;
        _process = Process.Start(start)!;
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            if (BusCaller.Root.Run("busctl", "--address=" + bus.Address, "list", "--acquired").StdOut.Contains("org.freedesktop.PolicyKit1"))
                return;
            if (_process.HasExited)
                break;
            Thread.Sleep(100);
        }
        Dispose();
        throw new InvalidOperationException("polkitd did not come up on the test bus");
    }

    public void Dispose() => OwnProcess.Stop(_process, TimeSpan.FromSeconds(2));
}
