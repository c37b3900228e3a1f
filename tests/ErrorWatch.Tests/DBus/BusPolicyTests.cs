using System.Diagnostics;
using System.Text.RegularExpressions;
using System.Xml;
using System.Xml.Linq;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// deploy/dbus/io.github.errorwatch.ErrorWatch1.conf as a real dbus-daemon enforces it, on a private
/// bus configured like the system bus, with root and uid nobody as callers and a python stand-in
/// (stand-in-service.py) in place of the daemon. The stand-in never checks who calls, so every
/// refusal seen here comes from the bus.
/// </summary>
public sealed class BusPolicyTests
{
    private const string Name = "io.github.errorwatch.ErrorWatch1";
    private const string RootPath = "/io/github/errorwatch/ErrorWatch1";
    private const string FilesystemPath = RootPath + "/filesystems/loop3";
    private const string Manager = Name + ".Manager";
    private const string AccessDenied = "org.freedesktop.DBus.Error.AccessDenied";
    private const string ReportId = "01936a3e-7b2c-7000-8000-000000000001";

    /// <summary>Requests a name without queueing; prints the RequestName reply (1 = primary owner) or the error name.</summary>
    private const string RequestName = """
        import sys, dbus
        bus = dbus.bus.BusConnection(sys.argv[1])
        try:
            print(bus.request_name(sys.argv[2], dbus.bus.NAME_FLAG_DO_NOT_QUEUE))
        except dbus.exceptions.DBusException as e:
            print(e.get_dbus_name())
            sys.exit(1)
        """;

    [BusFact]
    public void Dbus_daemon_accepts_the_policy_file()
    {
        // Included directly, not through an includedir: dbus-daemon then refuses to start on any
        // error in the file, where from system.d/ it would only log it and ignore the whole file.
        var dir = Directory.CreateTempSubdirectory("errorwatch-bus-check-");
        try
        {
            var config = Path.Combine(dir.FullName, "bus.conf");
            File.WriteAllText(config, $"""
                <busconfig>
                  <type>system</type>
                  <auth>EXTERNAL</auth>
                  <listen>unix:path={Path.Combine(dir.FullName, "socket")}</listen>
                  <include>{BusDaemon.PolicyFile}</include>
                </busconfig>
                """);
            var start = new ProcessStartInfo(BusDaemon.Binary!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var argument in new[] { "--nofork", "--config-file=" + config, "--print-address" })
                start.ArgumentList.Add(argument);
            using var process = Process.Start(start)!;
            var stderr = process.StandardError.ReadToEndAsync();
            var address = process.StandardOutput.ReadLineAsync();
            var started = address.Wait(TimeSpan.FromSeconds(15)) && address.Result is not null;
            if (!process.HasExited)
                process.Kill(); // the PID started here
            process.WaitForExit(5000);
            Assert.True(started, $"dbus-daemon did not start with {BusDaemon.PolicyFile}: {stderr.Result}");
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [BusFact]
    public void Root_owns_the_name_and_no_other()
    {
        using var bus = new BusDaemon();
        Assert.Equal("1", Own(BusCaller.Root, bus, Name));
        // The test bus denies owning names like the system bus does, so the grant above came
        // from our policy file.
        Assert.Equal(AccessDenied, Own(BusCaller.Root, bus, "io.github.errorwatch.Other"));
        Assert.DoesNotContain("Encountered error", bus.Output);
    }

    [BusFact]
    public void Nobody_cannot_own_the_name()
    {
        using var bus = new BusDaemon();
        Assert.Equal(AccessDenied, Own(BusCaller.Nobody, bus, Name));
    }

    [BusFact]
    public void Nobody_reads_properties_objects_and_reports()
    {
        using var bus = new BusDaemon();
        using var service = new StandInService(bus);

        Assert.Contains("\"Version\" s \"0-stand-in\"", Busctl(BusCaller.Nobody, bus, "call", Name, RootPath, "org.freedesktop.DBus.Properties", "GetAll", "s", Manager));
        Assert.Contains("u 1", Busctl(BusCaller.Nobody, bus, "call", Name, FilesystemPath, "org.freedesktop.DBus.Properties", "Get", "ss", Name + ".Filesystem", "Health"));
        Assert.Contains(".GetReports", Busctl(BusCaller.Nobody, bus, "introspect", Name, RootPath));
        Assert.Contains(FilesystemPath, Busctl(BusCaller.Nobody, bus, "call", Name, RootPath, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects"));
        Assert.Contains(ReportId, Busctl(BusCaller.Nobody, bus, "call", Name, RootPath, Manager, "GetReports", "tu", "0", "0"));
        Assert.Contains(ReportId, Busctl(BusCaller.Nobody, bus, "call", Name, RootPath, Manager, "GetReport", "s", ReportId));
        Busctl(BusCaller.Nobody, bus, "call", Name, RootPath, "org.freedesktop.DBus.Peer", "Ping");

        // The service's own errors reach the caller unchanged.
        var missing = Gdbus(BusCaller.Nobody, bus, RootPath, Manager + ".GetReport", "01936a3e-7b2c-7000-8000-0000000000ff");
        Assert.Contains(Name + ".Error.NoSuchReport", missing.StdErr);
    }

    [BusFact]
    public void Nobody_reaches_the_privileged_methods_that_the_daemon_checks_with_polkit()
    {
        using var bus = new BusDaemon();
        using var service = new StandInService(bus);
        Busctl(BusCaller.Nobody, bus, "call", Name, RootPath, Manager, "Acknowledge", "s", ReportId);
        Busctl(BusCaller.Nobody, bus, "call", Name, RootPath, Manager, "RescanFilesystems");
    }

    [BusFact]
    public void The_bus_refuses_nobody_what_the_policy_does_not_list()
    {
        using var bus = new BusDaemon();
        using var service = new StandInService(bus);

        // Hidden exists (root may call it) but is not in the allow list.
        var asRoot = Gdbus(BusCaller.Root, bus, RootPath, Manager + ".Hidden");
        Assert.True(asRoot.ExitCode == 0, "root's call of Hidden: " + asRoot.StdErr);
        AssertRejectedByBus(Gdbus(BusCaller.Nobody, bus, RootPath, Manager + ".Hidden"), "Hidden");
        // Every property is read-only: Set never reaches the daemon.
        AssertRejectedByBus(Gdbus(BusCaller.Nobody, bus, RootPath, "org.freedesktop.DBus.Properties.Set", Manager, "Version", "<'x'>"), "Set");
    }

    [BusFact]
    public void Nobody_receives_ReportAdded_with_the_documented_python_example()
    {
        using var bus = new BusDaemon();
        using var service = new StandInService(bus);
        var example = DocumentedPythonExample();
        using var subscriber = BusCaller.Nobody.Start(new Dictionary<string, string> { ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.Address }, BusCaller.Python, "-c", example);
        try
        {
            // The stand-in emits ReportAdded on every RescanFilesystems; keep asking until the
            // subscriber, once its match is in place, prints one.
            var line = subscriber.StandardOutput.ReadLineAsync();
            var deadline = Stopwatch.StartNew();
            while (!line.Wait(TimeSpan.FromMilliseconds(250)) && !subscriber.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(15))
                Busctl(BusCaller.Root, bus, "call", Name, RootPath, Manager, "RescanFilesystems");
            Assert.True(line.IsCompleted && line.Result is not null,
                "the example printed nothing: " + (subscriber.HasExited ? subscriber.StandardError.ReadToEnd() : "still running"));
            Assert.StartsWith("critical /dev/loop3 ext4 /dev/loop3 (/mnt) reports metadata corruption", line.Result);
        }
        finally
        {
            if (!subscriber.HasExited)
                subscriber.Kill(); // its PID: setpriv execs python3
            subscriber.WaitForExit(5000);
        }
    }

    [BusFact]
    public void Restart_brings_the_bus_back_on_the_same_socket_with_the_same_policy()
    {
        using var bus = new BusDaemon();
        var (socket, pid) = (bus.SocketPath, bus.Pid);
        bus.Restart();
        Assert.Equal(socket, bus.SocketPath);
        Assert.NotEqual(pid, bus.Pid);
        Assert.Equal("1", Own(BusCaller.Root, bus, Name));
        Assert.Equal(AccessDenied, Own(BusCaller.Nobody, bus, Name));
        bus.Stop();
        Assert.Null(bus.Pid);
        Assert.False(File.Exists(bus.SocketPath), "dbus-daemon left its socket behind after SIGTERM");
    }

    [BusFact]
    public void Polkit_reads_the_three_actions_with_their_defaults()
    {
        // polkitd reads actions only from /usr/share/polkit-1/actions. It runs here in a mount
        // namespace of its own where a directory holding just our policy is bind-mounted there,
        // connected to the private bus (whose policy lets user polkitd own its name): nothing
        // is installed and the machine's polkit is untouched.
        using var bus = new BusDaemon(withPolkitPolicy: true);
        var actions = Directory.CreateDirectory(Path.Combine(bus.TempDirectory, "actions")).FullName;
        BusDaemon.MakeWorldReadable(actions); // polkitd runs as user polkitd
        File.Copy(PolicyFiles.Polkit, Path.Combine(actions, Path.GetFileName(PolicyFiles.Polkit)));
        var environment = new Dictionary<string, string> { ["DBUS_SYSTEM_BUS_ADDRESS"] = bus.Address };
        using var polkitd = BusCaller.Root.Start(environment, "unshare",
            "--mount", "--propagation", "private", "sh", "-c",
            "mount --bind \"$0\" /usr/share/polkit-1/actions && exec /usr/lib/polkit-1/polkitd --no-debug", actions);
        try
        {
            string[] pkaction = ["env", "DBUS_SYSTEM_BUS_ADDRESS=" + bus.Address, "pkaction"];
            var deadline = Stopwatch.StartNew();
            Tool.Result listed;
            // polkitd takes its name a moment after starting; the private bus activates nothing.
            while ((listed = Tool.Run(pkaction[0], pkaction[1..])).ExitCode != 0 && !polkitd.HasExited && deadline.Elapsed < TimeSpan.FromSeconds(15))
                Thread.Sleep(100);
            Assert.True(listed.ExitCode == 0, $"pkaction: {listed.StdErr}\npolkitd: {(polkitd.HasExited ? polkitd.StandardError.ReadToEnd() : "running")}");
            Assert.Equal(PolicyFiles.Actions, listed.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Order());

            foreach (var action in PolicyFiles.Actions)
            {
                var verbose = Tool.Run(pkaction[0], [.. pkaction[1..], "--verbose", "--action-id", action]);
                Assert.True(verbose.ExitCode == 0, verbose.StdErr);
                Assert.Matches(@"implicit any:\s+no\n", verbose.StdOut);
                Assert.Matches(@"implicit inactive:\s+no\n", verbose.StdOut);
                Assert.Matches(@"implicit active:\s+auth_admin_keep\n", verbose.StdOut);
            }
        }
        finally
        {
            if (!polkitd.HasExited)
                polkitd.Kill(); // polkitd's own PID: unshare and sh exec it
            polkitd.WaitForExit(5000);
        }
    }

    private static string Own(BusCaller caller, BusDaemon bus, string name) =>
        caller.Run(BusCaller.Python, "-c", RequestName, bus.Address, name).StdOut.Trim();

    /// <summary>busctl as <paramref name="caller"/>, which must succeed; returns its output.</summary>
    private static string Busctl(BusCaller caller, BusDaemon bus, params string[] args)
    {
        var result = caller.Run("busctl", ["--address=" + bus.Address, .. args]);
        Assert.True(result.ExitCode == 0, $"busctl {string.Join(' ', args)} as {caller}: exit {result.ExitCode}: {result.StdErr}{result.StdOut}");
        return result.StdOut;
    }

    /// <summary>gdbus call, whose errors (unlike busctl's) carry the D-Bus error name.</summary>
    private static Tool.Result Gdbus(BusCaller caller, BusDaemon bus, string path, string method, params string[] args) =>
        caller.Run("gdbus", ["call", "--address", bus.Address, "--dest", Name, "--object-path", path, "--method", method, .. args]);

    /// <summary>"Rejected send message" is dbus-daemon's own wording: the call never reached the service.</summary>
    private static void AssertRejectedByBus(Tool.Result result, string member)
    {
        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains($"{AccessDenied}: Rejected send message", result.StdErr);
        Assert.Contains($"member=\"{member}\"", result.StdErr);
    }

    /// <summary>The first ```python block of docs/dbus-api.md.</summary>
    private static string DocumentedPythonExample()
    {
        var doc = File.ReadAllText(Path.Combine(ServicePaths.RepositoryRoot, "docs", "dbus-api.md"));
        var match = Regex.Match(doc, "```python\n(.*?)```", RegexOptions.Singleline);
        Assert.True(match.Success, "docs/dbus-api.md has no ```python example");
        return match.Groups[1].Value;
    }
}

/// <summary>
/// tests/ErrorWatch.Tests/DBus/stand-in-service.py running as root on a test bus, owning the
/// service name and exporting deploy/dbus/*.xml. Stopped by its PID on dispose.
/// </summary>
public sealed class StandInService : IDisposable
{
    private readonly Process _process;

    public StandInService(BusDaemon bus)
    {
        var script = Path.Combine(ServicePaths.RepositoryRoot, "tests", "ErrorWatch.Tests", "DBus", "stand-in-service.py");
        _process = BusCaller.Root.Start(null, BusCaller.Python, script, bus.Address, PolicyFiles.ManagerXml, PolicyFiles.FilesystemXml);
        var line = _process.StandardOutput.ReadLineAsync();
        if (line.Wait(TimeSpan.FromSeconds(15)) && line.Result == "owned")
            return;
        Dispose();
        throw new InvalidOperationException(
            $"the stand-in service did not take its name: {(line.IsCompleted ? line.Result : "no answer")} {_process.StandardError.ReadToEnd()}");
    }

    public void Dispose()
    {
        if (!_process.HasExited)
            _process.Kill();
        _process.WaitForExit(5000);
    }
}

/// <summary>The deploy/ files for D-Bus and polkit, read as XML, against the API they must declare exactly.</summary>
public sealed class InterfaceFileTests
{
    private const string IntrospectPublicId = "-//freedesktop//DTD D-BUS Object Introspection 1.0//EN";
    private const string IntrospectSystemId = "http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd";

    /// <summary>The API (docs/dbus-api.md): every member, one line each, as <see cref="Members"/> writes it.</summary>
    public static readonly string[] ManagerMembers =
    [
        "property Version s read const",
        "property KernelSupportsFsError b read const",
        "property WatchedFilesystems u read true",
        "property ReportCount t read true",
        "property LastReportId s read true",
        "method GetReports(in t since, in u max, out aa{sv} reports)",
        "method GetReport(in s id, out a{sv} report)",
        "method Acknowledge(in s id)",
        "method RescanFilesystems()",
        "signal ReportAdded(o filesystem, a{sv} report)",
    ];

    public static readonly string[] FilesystemMembers =
    [
        "property Device s read const",
        "property Uuid s read const",
        "property Type s read const",
        "property Mountpoints as read true",
        "property Health u read true",
        "property ErrorCount t read true",
        "property FirstErrorTime t read true",
        "property LastErrorTime t read true",
        "property LastReportId s read true",
    ];

    [Theory]
    [InlineData("io.github.errorwatch.ErrorWatch1.Manager")]
    [InlineData("io.github.errorwatch.ErrorWatch1.Filesystem")]
    public void The_interface_xml_declares_exactly_the_api(string interfaceName)
    {
        var file = Path.Combine(PolicyFiles.DbusDirectory, interfaceName + ".xml");
        var xml = PolicyFiles.Load(file);
        Assert.Equal("node", xml.DocumentType?.Name);
        Assert.Equal(IntrospectPublicId, xml.DocumentType?.PublicId);
        Assert.Equal(IntrospectSystemId, xml.DocumentType?.SystemId);

        var declared = Assert.Single(xml.Root!.Elements("interface"));
        Assert.Equal(interfaceName, (string?)declared.Attribute("name"));
        var expected = interfaceName.EndsWith(".Manager") ? ManagerMembers : FilesystemMembers;
        Assert.Equal(expected, Members(declared));

        foreach (var member in declared.Elements())
            Assert.Matches("^[A-Z][A-Za-z0-9]*$", (string?)member.Attribute("name"));
        foreach (var arg in declared.Descendants("arg"))
            Assert.Matches("^[a-z][a-z0-9_]*$", (string?)arg.Attribute("name"));
        // Every member is documented: the element right before it is a comment naming it.
        foreach (var member in declared.Elements())
        {
            var comment = member.NodesBeforeSelf().OfType<XComment>().LastOrDefault();
            Assert.True(comment is not null && comment.Value.TrimStart().StartsWith((string)member.Attribute("name")! + ":"),
                $"{interfaceName}.{member.Attribute("name")} has no doc comment");
        }
    }

    [Fact]
    public void The_bus_policy_allows_users_exactly_the_listed_members_and_only_root_to_own()
    {
        var policies = PolicyFiles.Load(PolicyFiles.BusPolicy).Root!.Elements("policy").ToList();
        var root = Assert.Single(policies, p => (string?)p.Attribute("user") == "root");
        Assert.Contains(root.Elements("allow"), a => (string?)a.Attribute("own") == BusName);
        Assert.DoesNotContain(policies.Where(p => p != root).SelectMany(p => p.Elements()), e => e.Attribute("own") is not null);

        var byDefault = Assert.Single(policies, p => (string?)p.Attribute("context") == "default");
        var first = byDefault.Elements().First();
        Assert.Equal(("deny", BusName), (first.Name.LocalName, (string?)first.Attribute("send_destination")));
        Assert.Single(first.Attributes());

        var allowed = byDefault.Elements("allow")
            .Where(a => a.Attribute("send_destination") is not null)
            .Select(a =>
            {
                Assert.Equal(BusName, (string?)a.Attribute("send_destination"));
                return $"{(string?)a.Attribute("send_interface")} {(string?)a.Attribute("send_member") ?? "*"}";
            })
            .Order()
            .ToList();
        // The Manager methods come from the XML, so a method added there without a policy line fails here.
        var managerMethods = PolicyFiles.Load(PolicyFiles.ManagerXml).Descendants("method").Select(m => $"{BusName}.Manager {(string?)m.Attribute("name")}");
        var expected = new[]
        {
            "org.freedesktop.DBus.Introspectable *",
            "org.freedesktop.DBus.Peer *",
            "org.freedesktop.DBus.Properties Get",
            "org.freedesktop.DBus.Properties GetAll",
            "org.freedesktop.DBus.ObjectManager GetManagedObjects",
        }.Concat(managerMethods).Order().ToList();
        Assert.Equal(expected, allowed);
        Assert.Equal(4, managerMethods.Count());
    }

    [Fact]
    public void The_polkit_policy_declares_the_three_actions()
    {
        var xml = PolicyFiles.Load(PolicyFiles.Polkit);
        Assert.Equal("policyconfig", xml.DocumentType?.Name);
        Assert.Equal("-//freedesktop//DTD PolicyKit Policy Configuration 1.0//EN", xml.DocumentType?.PublicId);
        var actions = xml.Root!.Elements("action").ToList();
        Assert.Equal(PolicyFiles.Actions, actions.Select(a => (string)a.Attribute("id")!).Order());
        foreach (var action in actions)
        {
            Assert.False(string.IsNullOrWhiteSpace((string?)action.Element("description")));
            Assert.False(string.IsNullOrWhiteSpace((string?)action.Element("message")));
            var defaults = action.Element("defaults")!;
            Assert.Equal(("no", "no", "auth_admin_keep"),
                ((string?)defaults.Element("allow_any"), (string?)defaults.Element("allow_inactive"), (string?)defaults.Element("allow_active")));
        }
    }

    [Fact]
    public void The_activation_file_hands_the_name_to_the_systemd_unit()
    {
        var lines = File.ReadAllLines(Path.Combine(PolicyFiles.DbusDirectory, BusName + ".service"))
            .Where(l => l.Length > 0 && l[0] != '#')
            .ToList();
        Assert.Equal("[D-BUS Service]", lines[0]);
        var keys = lines.Skip(1).Select(l => l.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        Assert.Equal(new Dictionary<string, string>
        {
            ["Name"] = BusName,
            ["Exec"] = "/bin/false",
            ["User"] = "root",
            ["SystemdService"] = "errorwatch.service",
        }, keys);
        Assert.True(File.Exists(Path.Combine(ServicePaths.RepositoryRoot, "deploy", "systemd", "errorwatch.service")));
    }

    private const string BusName = "io.github.errorwatch.ErrorWatch1";

    /// <summary>One line per member in declaration order: "property Name type access emits", "method Name(dir type name, ...)", "signal Name(type name, ...)".</summary>
    private static List<string> Members(XElement declared) => declared.Elements().Select(member =>
    {
        var name = (string?)member.Attribute("name");
        var args = string.Join(", ", member.Elements("arg").Select(a =>
            string.Join(' ', new[] { (string?)a.Attribute("direction"), (string?)a.Attribute("type"), (string?)a.Attribute("name") }.Where(s => s is not null))));
        return member.Name.LocalName switch
        {
            "property" => $"property {name} {(string?)member.Attribute("type")} {(string?)member.Attribute("access")} " +
                (string?)member.Elements("annotation").SingleOrDefault(a => (string?)a.Attribute("name") == "org.freedesktop.DBus.Property.EmitsChangedSignal")?.Attribute("value"),
            "method" or "signal" => $"{member.Name.LocalName} {name}({args})",
            var other => other + " " + name,
        };
    }).ToList();
}

/// <summary>Where the D-Bus and polkit deploy files are, and how they are read.</summary>
internal static class PolicyFiles
{
    public static string DbusDirectory => Path.Combine(ServicePaths.RepositoryRoot, "deploy", "dbus");
    public static string BusPolicy => BusDaemon.PolicyFile;
    public static string ManagerXml => Path.Combine(DbusDirectory, "io.github.errorwatch.ErrorWatch1.Manager.xml");
    public static string FilesystemXml => Path.Combine(DbusDirectory, "io.github.errorwatch.ErrorWatch1.Filesystem.xml");
    public static string Polkit => Path.Combine(ServicePaths.RepositoryRoot, "deploy", "polkit", "io.github.errorwatch.ErrorWatch1.policy");

    public static readonly string[] Actions =
    [
        "io.github.errorwatch.ErrorWatch1.acknowledge",
        "io.github.errorwatch.ErrorWatch1.read-paths",
        "io.github.errorwatch.ErrorWatch1.rescan",
    ];

    /// <summary>Parses with the DOCTYPE kept but never fetched (no resolver: no network, no file lookups).</summary>
    public static XDocument Load(string path)
    {
        var settings = new XmlReaderSettings { DtdProcessing = DtdProcessing.Parse, XmlResolver = null };
        using var reader = XmlReader.Create(path, settings);
        return XDocument.Load(reader, LoadOptions.None);
    }
}
