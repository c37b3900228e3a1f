using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Recovery;
using ErrorWatch.Reports;
using ErrorWatch.Tests.DBus;
using ErrorWatch.Tests.Journal;
using ErrorWatch.Tests.Recovery;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>
/// A tree of hostile names on a real ext4 (newlines that look like journal fields, terminal
/// escapes, tab and carriage return, quotes and backslashes, invalid UTF-8, Unicode noncharacters
/// that D-Bus refuses, direction overrides, a 255-byte name, a path of exactly PATH_MAX-1 bytes and
/// one longer than PATH_MAX), under a mount point and label of hostile names too. Each named
/// directory or file is corrupted on the unmounted image and read after mounting, so each yields a
/// report naming it; the real daemon publishes them to every output at once: journald, the store
/// (errorwatch list), JSON and text lines, D-Bus (signals with paths, GetReport, GetReports,
/// GetManagedObjects) and a hook. Every output must carry every report intact, and the daemon must
/// report an ordinary error afterwards as usual.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class HostileNameTests : IDisposable
{
    private readonly HookDirectory _hooks = new();

    public void Dispose() => _hooks.Dispose();

    /// <summary>A directory (or a file) to corrupt, by its path under the mount point.</summary>
    private sealed record Target(string What, byte[] Relative, bool IsFile = false)
    {
        public ulong Inode { get; set; }
        public override string ToString() => What;
    }

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private const string Injection = "\nPRIORITY=0\nMESSAGE_ID=0123456789abcdef0123456789abcdef\nERRORWATCH_PATH=/etc/shadow\n";

    [LoopFact]
    public void Hostile_names_reach_journal_store_json_dbus_and_hooks_intact_and_the_daemon_reports_on()
    {
        using var scratch = new ScratchDirectory();
        using var bus = new BusDaemon();
        // The mount point and the label are names too: a space and a tab (mountinfo escapes them),
        // an escape sequence, a noncharacter (sd-bus refuses U+FFFE in a string).
        const string label = "lbl\x1b[5m\uFFFE";
        var fs = scratch.Ext4("mnt \t\x1b[7m\uFFFE", mkfs: ["-O", "metadata_csum", "-L", label]);
        var mount = Utf8(fs.MountPoint);

        var targets = new List<Target>
        {
            new("field injection", Utf8("inject" + Injection + "end")),
            new("terminal escapes", Utf8("esc\x1b[31mred\x1b]0;title\x07\x1b[2J\x1b[0m")),
            new("tab and carriage return", Utf8("tab\tcr\rend")),
            new("backslash and quotes", Utf8("back\\slash \\n \"dq\" 'sq' $(reboot) `reboot`")),
            new("invalid UTF-8", [.. "bad"u8, 0xff, 0xfe, .. "utf8"u8, 0xc3]),
            new("noncharacters", Utf8("nonchar\uFFFE\uFDD0\U0010FFFF")),
            new("direction override", Utf8("gpj.\u202eexe\u200b")),
            new("255-byte name", Utf8("max\n" + new string('m', 251))),
            new("file in an escaped directory", [.. Utf8("files\x1b[1m/leaf" + Injection), 0xff, .. ".txt"u8], IsFile: true),
            new("path of PATH_MAX-1 bytes", RelativeOfLength(mount, "deep\n\x1b[32m", 4095)),
            new("path longer than PATH_MAX", RelativeOfLength(mount, "deeper\n", 4097)),
        };
        Assert.Equal(255, targets.Single(t => t.What == "255-byte name").Relative.Length);
        Assert.Equal(4095, mount.Length + 1 + targets.Single(t => t.What.StartsWith("path of")).Relative.Length);
        var tooLong = targets.Single(t => t.What.StartsWith("path longer"));

        // Made with byte paths (Python, fd-relative: the long ones are beyond what open(2) takes).
        var tree = Client.Script(scratch.Path, "tree.py", TreeScript);
        var made = Lines(Tool.Check(BusCaller.Python, [tree, "make", Convert.ToHexString(mount), .. targets.Select(Argument)]));
        for (var i = 0; i < targets.Count; i++)
            targets[i].Inode = made[i].GetProperty("inode").GetUInt64();

        // Directories: their first block overwritten; the file: its extent tree block.
        fs.Unmount();
        var requests = new List<string>();
        foreach (var t in targets)
        {
            if (!t.IsFile)
            {
                requests.Add($"zap_block -f <{t.Inode}> -p 0x41 0");
                continue;
            }
            var stat = Tool.Check("debugfs", "-R", $"stat <{t.Inode}>", fs.LoopDevice);
            var etb = Regex.Match(stat, @"\(ETB0\):(\d+)");
            Assert.True(etb.Success, $"the fragmented file has no extent tree block:\n{stat}");
            requests.Add($"zap_block -p 0x41 {etb.Groups[1].Value}");
        }
        foreach (var request in requests)
            fs.Debugfs(request);
        fs.Mount("errors=continue");

        var recorder = _hooks.Recorder("all-rec");
        var state = Path.Combine(scratch.Path, "state");
        var jsonFile = Path.Combine(scratch.Path, "reports.jsonl");
        var textFile = Path.Combine(scratch.Path, "reports.txt");
        var collected = new List<CorruptionReport>();
        ulong baseline;
        using (var jsonOut = new FileStream(jsonFile, FileMode.Create, FileAccess.Write, FileShare.Read))
        using (var textOut = new StreamWriter(new FileStream(textFile, FileMode.Create, FileAccess.Write, FileShare.Read), new UTF8Encoding(false)))
        using (var journal = new JournalSink(new SdJournal()) { MaxEntriesPerInterval = 1000 })
        using (var hooks = new HookSink(_hooks.Settings(), _hooks.State, new SdJournal(), HookReports.Quiet))
        using (var daemon = new DaemonHarness(new DaemonOptions { Watch = new WatchOptions { Include = [fs.MountPoint] }, StateDirectory = state },
            bus: new BusOptions { Bus = bus.Address, SignalPaths = true },
            sinks: [journal, hooks, new JsonLinesSink(jsonOut), new TextSink(textOut)]))
        {
            Assert.True(daemon.Bus!.IsConnected, daemon.Bus.Problem);
            using var signals = Client.Start(BusCaller.Root, BusCaller.Python, Client.Script(scratch.Path, "subscriber.py", BusServiceTests.SubscriberScript), bus.Address);
            Assert.NotNull(signals.WaitFor(l => l.Contains("\"ready\""), TimeSpan.FromSeconds(10)));
            baseline = fs.ErrorsCount;

            // One at a time: fanotify folds an error into an event still queued, which would name the earlier file.
            foreach (var t in targets)
            {
                var read = Lines(Tool.Check(BusCaller.Python, tree, "read", Convert.ToHexString(mount), Argument(t)));
                Assert.NotEqual(JsonValueKind.Null, read[0].GetProperty("error").ValueKind);
                collected.AddRange(daemon.Collect(r => r.Any(x => x.Object.Inode == t.Inode), TimeSpan.FromSeconds(15)));
                Assert.True(collected.Any(r => r.Object.Inode == t.Inode), $"no report for the {t}");
                Assert.True(hooks.WaitIdle(TimeSpan.FromSeconds(30)), "hooks still running");
            }

            // Afterwards an ordinary error is reported as ever.
            fs.TriggerFsError("after the hostile names");
            collected.AddRange(daemon.Collect(r =>
                (collected.Count + r.Count) > 0 && collected.Concat(r).Aggregate(0UL, (s, x) => s + x.Error.Count) == fs.ErrorsCount - baseline
                && collected.Concat(r).Any(x => x.Object.WholeFilesystem), TimeSpan.FromSeconds(15)));
            Assert.True(hooks.WaitIdle(TimeSpan.FromSeconds(30)), "hooks still running");
            Assert.Equal(fs.ErrorsCount - baseline, collected.Aggregate(0UL, (s, r) => s + r.Error.Count));
            Assert.Contains(collected, r => r.Object.WholeFilesystem && r.Error.Name == "EUCLEAN");

            // The reports themselves: the exact bytes, or why there are none.
            foreach (var t in targets)
            {
                var named = collected.Where(r => r.Object.Inode == t.Inode && r.Source == "fanotify").ToList();
                Assert.NotEmpty(named);
                Assert.All(named, r =>
                {
                    if (t == tooLong)
                    {
                        Assert.Null(r.Object.Path);
                        Assert.Contains("PATH_MAX", r.Object.PathError);
                    }
                    else
                    {
                        Assert.True(r.Object.Path is not null, $"{t}: {r.Object.PathError}");
                        Assert.Equal([.. mount, (byte)'/', .. t.Relative], r.Object.Path!.Bytes.ToArray());
                    }
                });
            }

            AssertDBus(bus, daemon, signals, collected, scratch.Path, fs);
        }

        AssertJournal(collected, label, mount);
        AssertHooks(targets, collected, label, mount);
        AssertJsonLines(File.ReadAllBytes(jsonFile), collected);
        AssertStore(state, File.ReadAllBytes(jsonFile), collected);
        var text = File.ReadAllText(textFile);
        Assert.Equal(collected.Count, text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        AssertPrintable(text.Replace("\n", ""), "text output");
    }

    // ---- journald: one entry per report, exactly the fields ReportJournal makes, bytes intact ----

    private static void AssertJournal(List<CorruptionReport> reports, string label, byte[] mount)
    {
        foreach (var r in reports)
        {
            var entries = Journalctl.WaitFor(1, "MESSAGE_ID=" + ReportJournal.ReportMessageId, "ERRORWATCH_REPORT_ID=" + r.Id);
            var entry = Assert.Single(entries);
            var message = Assert.Single(Journalctl.Values(entry, "MESSAGE"));
            Assert.True(System.Text.Unicode.Utf8.IsValid(message), "MESSAGE is not UTF-8");
            AssertPrintable(Encoding.UTF8.GetString(message), "MESSAGE");
            Assert.Equal(ReportJournal.OneLine(r.Summary), Encoding.UTF8.GetString(message));

            // Nothing injected, nothing lost: the client fields are exactly those sent, value for value.
            var expected = ReportJournal.ToEntry(r).Fields.GroupBy(f => f.Name)
                .ToDictionary(g => g.Key, g => g.Select(f => Convert.ToHexString(f.Value)).ToList());
            var actual = entry.EnumerateObject().Where(p => !p.Name.StartsWith('_'))
                .ToDictionary(p => p.Name, p => Journalctl.Values(entry, p.Name).Select(Convert.ToHexString).ToList());
            Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, values) in expected)
                Assert.True(values.SequenceEqual(actual[name]), $"{name} of {r.Id}");
            Assert.Equal(Utf8(label), Assert.Single(Journalctl.Values(entry, "ERRORWATCH_LABEL")));
            Assert.Equal(mount, Assert.Single(Journalctl.Values(entry, "ERRORWATCH_MOUNTPOINT")));
            if (r.Object.Path is { } path)
                Assert.Equal(path.Bytes.ToArray(), Assert.Single(Journalctl.Values(entry, "ERRORWATCH_PATH")));
            else
                Assert.Empty(Journalctl.Values(entry, "ERRORWATCH_PATH"));
        }
        // The injected field values made no entries of their own.
        Assert.Empty(Journalctl.Query("MESSAGE_ID=0123456789abcdef0123456789abcdef"));
    }

    // ---- hooks: the exact bytes in the environment, nothing split, every run a success ----

    private void AssertHooks(List<Target> targets, List<CorruptionReport> reports, string label, byte[] mount)
    {
        var runs = Directory.EnumerateFiles(_hooks.Out, "all-rec.*.env").Select(File.ReadAllBytes).ToList();
        Assert.NotEmpty(runs);
        var byReport = new Dictionary<string, Dictionary<string, byte[]>>();
        foreach (var raw in runs)
        {
            // env -0: NUL-separated NAME=value; a value may hold newlines, a name never anything odd.
            var names = raw.AsSpan().TrimEnd((byte)0).ToArray().Split(0).Select(e => Encoding.ASCII.GetString(e, 0, Array.IndexOf(e, (byte)'='))).ToList();
            Assert.All(names, n => Assert.Matches("^[A-Z_][A-Z0-9_]*$", n));
            Assert.Equal(names.Count, names.Distinct().Count());
            Assert.DoesNotContain("PRIORITY", names);
            Assert.DoesNotContain("MESSAGE_ID", names);
            var env = HookDirectory.ParseEnv(raw);
            var report = reports.Single(r => r.Id == Encoding.UTF8.GetString(env["ERRORWATCH_REPORT_ID"]));
            byReport[report.Id] = env;
            Assert.Equal(report.Object.Path?.Bytes.ToArray() ?? [], env["ERRORWATCH_PATH"]);
            Assert.Equal(Utf8(ReportJournal.OneLine(report.Summary)), env["ERRORWATCH_MESSAGE"]);
            AssertPrintable(Encoding.UTF8.GetString(env["ERRORWATCH_MESSAGE"]), "ERRORWATCH_MESSAGE");
            Assert.Equal(Utf8(label), env["ERRORWATCH_LABEL"]);
            Assert.Equal(mount, env["ERRORWATCH_MOUNTPOINT"]);
            var runId = Encoding.UTF8.GetString(env["ERRORWATCH_RUN_ID"]);
            var outcome = Assert.Single(Journalctl.WaitFor(1, "MESSAGE_ID=" + HookJournal.OutcomeMessageId, "ERRORWATCH_RUN_ID=" + runId));
            Assert.Equal("success", Journalctl.Text(outcome, "ERRORWATCH_OUTCOME"));
            using var json = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_hooks.Out, $"all-rec.{runId}.json")));
            Assert.Equal(report.Id, json.RootElement.GetProperty("id").GetString());
        }
        // Every named target reached the hook (a run shows the newest report folded into it).
        foreach (var t in targets)
            Assert.Contains(byReport.Values, env => Encoding.UTF8.GetString(env["ERRORWATCH_INODE"]) == t.Inode.ToString());
        Assert.Contains(byReport.Values, env => Encoding.UTF8.GetString(env["ERRORWATCH_SCOPE"]) == "filesystem");
    }

    // ---- JSON lines (--output json) and the store (errorwatch list) ----

    private static void AssertJsonLines(byte[] output, List<CorruptionReport> reports)
    {
        var lines = output.AsSpan().TrimEnd((byte)'\n').ToArray().Split((byte)'\n');
        Assert.Equal(reports.Count, lines.Count);
        foreach (var line in lines)
        {
            using var doc = JsonDocument.Parse(line);
            var report = reports.Single(r => r.Id == doc.RootElement.GetProperty("id").GetString());
            Assert.Equal(ReportJson.ToUtf8(report), line);
            AssertPathRoundTrips(doc.RootElement.GetProperty("object"), report.Object.Path);
            Assert.Equal(report.Summary, doc.RootElement.GetProperty("summary").GetString());
        }
    }

    /// <summary>The documented JSON form: text for plain names, else the escaped form and the exact bytes in path_base64.</summary>
    private static void AssertPathRoundTrips(JsonElement obj, FsPath? path)
    {
        if (path is null)
        {
            Assert.True(!obj.TryGetProperty("path", out var p) || p.ValueKind == JsonValueKind.Null);
            Assert.False(obj.TryGetProperty("path_base64", out _));
            return;
        }
        var text = obj.GetProperty("path").GetString()!;
        var bytes = path.Bytes.ToArray();
        var plain = System.Text.Unicode.Utf8.IsValid(bytes) && Encoding.UTF8.GetString(bytes) == BusText(Encoding.UTF8.GetString(bytes));
        Assert.Equal(!plain, obj.TryGetProperty("path_base64", out var b64));
        if (!plain)
        {
            Assert.Equal(path.Bytes.ToArray(), b64.GetBytesFromBase64());
            Assert.Equal(path.Escaped, text);
            AssertPrintable(text, "escaped path");
        }
        else
        {
            Assert.Equal(path.Bytes.ToArray(), Utf8(text));
        }
    }

    private static void AssertStore(string state, byte[] jsonLines, List<CorruptionReport> reports)
    {
        var errorwatch = ErrorWatchBinary.Path;
        var json = Tool.Run(errorwatch, "list", "--state-dir", state, "--json");
        Assert.True(json.ExitCode == 0, json.StdErr);
        Assert.Equal(Encoding.UTF8.GetString(jsonLines), json.StdOut);
        var text = Tool.Run(errorwatch, "list", "--state-dir", state);
        Assert.True(text.ExitCode == 0, text.StdErr);
        var lines = text.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(reports.Count, lines.Length);
        Assert.All(lines, l => AssertPrintable(l, "errorwatch list"));
        Assert.Empty(text.StdErr);
    }

    // ---- D-Bus: every signal sent, every report readable, the documented strings ----

    private static void AssertDBus(BusDaemon bus, DaemonHarness daemon, Client signals, List<CorruptionReport> reports, string scripts, ScratchFilesystem fs)
    {
        var call = Client.Script(scripts, "call.py", CallScript);
        foreach (var r in reports)
        {
            var line = signals.WaitFor(l => l.Contains("\"ReportAdded\"") && l.Contains(r.Id), TimeSpan.FromSeconds(10));
            Assert.True(line is not null, $"no ReportAdded for {r.Id} ({r.Summary}); sent {daemon.Bus!.SignalsSent}, dropped {daemon.Bus.SignalsDropped}");
            AssertBusReport(JsonDocument.Parse(line).RootElement.GetProperty("report"), r);

            var got = Call(bus, BusCaller.Root, call, "GetReport", "s", r.Id);
            AssertBusReport(got, r);

            // Without the right to see paths: no path, and the summary names none.
            var withheld = Call(bus, BusCaller.Nobody, call, "GetReport", "s", r.Id);
            var obj = withheld.GetProperty("object");
            Assert.False(obj.TryGetProperty("path", out _));
            Assert.False(obj.TryGetProperty("path_base64", out _));
            if (r.Object.Path is { } path)
            {
                Assert.True(obj.GetProperty("path_withheld").GetBoolean());
                Assert.DoesNotContain(path.Escaped, withheld.GetProperty("summary").GetString());
            }
        }
        Assert.Equal(reports.Count, daemon.Bus!.SignalsSent);

        var all = Call(bus, BusCaller.Root, call, "GetReports", "tu", 0, 0);
        Assert.Equal(reports.Select(r => r.Id).Order(), all.EnumerateArray().Select(e => e.GetProperty("id").GetString()!).Order());
        Assert.True(Tool.Run("busctl", "--address=" + bus.Address, "--json=short", "call", BusNames.Service, BusNames.RootPath,
            BusNames.ManagerInterface, "GetReports", "tu", "0", "0").ExitCode == 0, "busctl GetReports");

        var objects = Call(bus, BusCaller.Nobody, call, "GetManagedObjects", "", path: BusNames.RootPath, iface: "org.freedesktop.DBus.ObjectManager");
        var fsObject = objects.GetProperty($"{BusNames.FilesystemsPath}/{fs.KernelName}").GetProperty(BusNames.FilesystemInterface);
        Assert.Equal(FsPath.FromString(fs.MountPoint).Escaped, fsObject.GetProperty("Mountpoints")[0].GetString());
    }

    /// <summary>The report on the bus is its JSON without nulls, with strings sd-bus refuses replaced (only the label has any).</summary>
    private static void AssertBusReport(JsonElement onBus, CorruptionReport r)
    {
        var expected = WithoutNulls(JsonNode.Parse(ReportJson.ToUtf8(r))!);
        expected["filesystem"]!["label"] = BusText(r.Filesystem.Label!);
        Assert.True(JsonNode.DeepEquals(expected, JsonNode.Parse(onBus.GetRawText())), $"{r.Id} on the bus:\n{onBus.GetRawText()}\nexpected:\n{expected.ToJsonString()}");
        AssertPathRoundTrips(onBus.GetProperty("object"), r.Object.Path);
    }

    /// <summary>A string as sd-bus takes it: noncharacters (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF) as U+FFFD.</summary>
    private static string BusText(string s)
    {
        var sb = new StringBuilder();
        foreach (var rune in s.EnumerateRunes())
            sb.Append(rune.Value is >= 0xfdd0 and <= 0xfdef || (rune.Value & 0xfffe) == 0xfffe ? "\uFFFD" : rune.ToString());
        return sb.ToString();
    }

    private static JsonNode WithoutNulls(JsonNode node)
    {
        if (node is JsonObject o)
            foreach (var (key, value) in o.ToList())
            {
                if (value is null)
                    o.Remove(key);
                else
                    WithoutNulls(value);
            }
        else if (node is JsonArray a)
            foreach (var item in a)
                WithoutNulls(item!);
        return node;
    }

    private static JsonElement Call(BusDaemon bus, BusCaller caller, string script, string method, string signature, params object[] args) =>
        Call(bus, caller, script, method, signature, BusNames.RootPath, BusNames.ManagerInterface, args);

    private static JsonElement Call(BusDaemon bus, BusCaller caller, string script, string method, string signature, string path, string iface, params object[] args)
    {
        var result = caller.Run(BusCaller.Python, script, bus.Address, path, iface, method, signature, JsonSerializer.Serialize(args));
        Assert.True(result.ExitCode == 0, $"{method} as {caller}: {result.StdErr}");
        return JsonDocument.Parse(result.StdOut).RootElement.Clone();
    }

    // ---- helpers ----

    /// <summary>No control character (newline, carriage return, tab, ESC, BEL...), no invisible or direction-changing one, no noncharacter.</summary>
    private static void AssertPrintable(string text, string what)
    {
        foreach (var rune in text.EnumerateRunes())
            Assert.False(rune.Value is < 0x20 or 0x7f or (>= 0x80 and < 0xa0) or (>= 0x200b and <= 0x200f) or (>= 0x202a and <= 0x202e)
                    or (>= 0x2066 and <= 0x2069) or 0x2028 or 0x2029 or 0xfeff or (>= 0xfdd0 and <= 0xfdef) || (rune.Value & 0xfffe) == 0xfffe,
                $"{what} holds U+{rune.Value:X4}: {text}");
    }

    /// <summary>A relative path whose absolute form is exactly <paramref name="total"/> bytes: 255-byte components, the first starting with <paramref name="tag"/>.</summary>
    private static byte[] RelativeOfLength(byte[] mount, string tag, int total)
    {
        var parts = new List<byte[]>();
        var remaining = total - mount.Length; // for "/component" pieces
        while (remaining > 0)
        {
            var length = Math.Min(255, remaining - 1);
            if (remaining - 1 - length == 1)
                length--; // never leave one byte: that would be a "/" with an empty name
            var name = parts.Count == 0 ? tag : "";
            parts.Add(Utf8(name + new string((char)('a' + parts.Count % 26), length - Encoding.UTF8.GetByteCount(name))));
            remaining -= 1 + length;
        }
        return [.. parts.SelectMany((p, i) => i == 0 ? p : [(byte)'/', .. p])];
    }

    private static string Argument(Target t) => (t.IsFile ? "f:" : "d:") + Convert.ToHexString(t.Relative);

    private static List<JsonElement> Lines(string output) =>
        output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    /// <summary>
    /// make: creates each target (d: a directory with three files, f: a file fragmented into an
    /// extent tree of its own block) and prints its inode; read: lists or reads it, printing the errno.
    /// Paths are walked one name at a time from the mount point, as bytes.
    /// </summary>
    private const string TreeScript = """
        import json, os, sys
        mode, root = sys.argv[1], bytes.fromhex(sys.argv[2])

        def walk(names, create):
            fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
            for name in names:
                if create:
                    try:
                        os.mkdir(name, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                inner = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
                os.close(fd)
                fd = inner
            return fd

        for argument in sys.argv[3:]:
            kind, path = argument[0], bytes.fromhex(argument[2:])
            names = path.split(b"/")
            parent = walk(names if kind == "d" else names[:-1], mode == "make")
            if mode == "make":
                if kind == "d":
                    for i in range(3):
                        f = os.open(b"file%d" % i, os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=parent)
                        os.write(f, b"x")
                        os.close(f)
                    inode = os.fstat(parent).st_ino
                else:
                    f = os.open(names[-1], os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=parent)
                    for block in range(0, 80, 2):  # every other block: more extents than the inode holds
                        os.pwrite(f, b"y" * 4096, block * 4096)
                        os.fsync(f)
                    inode = os.fstat(f).st_ino
                    os.close(f)
                print(json.dumps({"inode": inode}))
            else:
                error = None
                try:
                    if kind == "d":
                        os.listdir(parent)
                    else:
                        f = os.open(names[-1], os.O_RDONLY, dir_fd=parent)
                        try:
                            os.read(f, 1 << 20)
                        finally:
                            os.close(f)
                except OSError as e:
                    error = e.errno
                print(json.dumps({"error": error}))
            os.close(parent)
        """;

    /// <summary>One method call with python3-dbus (libdbus): address path interface method signature json-args; prints the reply as JSON.</summary>
    private const string CallScript = $$"""
        import json, sys
        import dbus

        {{Client.PythonPlain}}

        address, path, interface, method, signature, args = sys.argv[1:7]
        bus = dbus.bus.BusConnection(address)
        reply = bus.call_blocking("io.github.errorwatch.ErrorWatch1", path, interface, method, signature, json.loads(args))
        print(json.dumps(plain(reply)))
        """;
}

internal static class ByteSplitting
{
    /// <summary>The pieces between separators (empty pieces included).</summary>
    public static List<byte[]> Split(this byte[] bytes, byte separator)
    {
        var parts = new List<byte[]>();
        var start = 0;
        for (var i = 0; i <= bytes.Length; i++)
            if (i == bytes.Length || bytes[i] == separator)
            {
                parts.Add(bytes[start..i]);
                start = i + 1;
            }
        return parts;
    }
}
