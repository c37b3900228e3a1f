using System.Text.RegularExpressions;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.Journal;
using ErrorWatch.Recovery;
using ErrorWatch.Reports;
using static ErrorWatch.Tests.Journal.JournalTestReports;

namespace ErrorWatch.Tests.Journal;

/// <summary>One entry of a catalog file: id, headers, body.</summary>
internal sealed record CatalogEntry(string Id, Dictionary<string, string> Headers, string Body);

/// <summary>
/// deploy/catalog/errorwatch.catalog: well-formed (our own parser of the format in
/// platform-interfaces.md §2, and journalctl's compiler on a scratch root), and every @FIELD@ it uses
/// is a field the sink sends in every entry of that MESSAGE_ID (a missing field would be shown as its
/// bare name by journalctl -x).
/// </summary>
public partial class CatalogTests
{
    internal static string CatalogPath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "ErrorWatch.sln")))
                return Path.Combine(dir.FullName, "deploy", "catalog", "errorwatch.catalog");
        throw new DirectoryNotFoundException($"no ErrorWatch.sln above {AppContext.BaseDirectory}");
    }

    [GeneratedRegex("^-- ([0-9a-f]{32})( [a-zA-Z_@]+)?$")]
    private static partial Regex IdLine();

    [GeneratedRegex("@([A-Za-z0-9_]+)@")]
    private static partial Regex Placeholder();

    internal static List<CatalogEntry> Parse(string text)
    {
        var entries = new List<CatalogEntry>();
        string? id = null;
        Dictionary<string, string>? headers = null;
        List<string>? body = null;
        foreach (var line in text.Split('\n'))
        {
            if (line.StartsWith('#'))
                continue;
            if (line.StartsWith("-- "))
            {
                var m = IdLine().Match(line);
                Assert.True(m.Success, $"bad id line '{line}': 32 lowercase hex digits expected");
                Flush();
                (id, headers, body) = (m.Groups[1].Value, new(), null);
                continue;
            }
            if (id is null)
            {
                Assert.True(line.Trim().Length == 0, $"text before the first entry: '{line}'");
                continue;
            }
            if (body is null)
            {
                if (line.Length == 0)
                {
                    body = new();
                    continue;
                }
                var colon = line.IndexOf(": ", StringComparison.Ordinal);
                Assert.True(colon > 0, $"header line expected in {id}: '{line}'");
                headers![line[..colon]] = line[(colon + 2)..];
            }
            else
            {
                body.Add(line);
            }
        }
        Flush();
        return entries;

        void Flush()
        {
            if (id is not null)
            {
                Assert.NotNull(body); // headers must end with a blank line
                entries.Add(new CatalogEntry(id, headers!, string.Join('\n', body).Trim()));
            }
        }
    }

    /// <summary>Fields in every entry of each kind: a minimal report (no UUID, label, mountpoint, inode, path) and a minimal summary.</summary>
    private static Dictionary<string, HashSet<string>> FieldsAlwaysSent()
    {
        var minimal = Small("r0", EIO, 1) with { Filesystem = Filesystem() with { Uuid = null, Label = null, Mountpoints = [] } };
        var journal = new RecordingJournal();
        var sink = new JournalSink(journal, new JournalFallback(new LineWriter())) { MaxEntriesPerInterval = 1 };
        sink.Publish(minimal);
        sink.Publish(minimal with { Id = "r1" });
        sink.Flush();
        // A hook outcome at its barest: a skip, for a filesystem with nothing optional.
        var hook = new Hook { Name = "all-x", Kind = HookKind.Exec, Executable = "/x", Repeat = RepeatPolicy.Always, Timeout = TimeSpan.FromSeconds(1), KillGrace = TimeSpan.FromSeconds(1), Origin = "" };
        var run = new HookRun("run-0", "all-x", HookFacts.From(minimal), DateTimeOffset.MinValue);
        new HookJournal(journal).Outcome(hook, run, HookOutcome.Skip("refused", DateTimeOffset.UnixEpoch));
        return journal.Sent.Select(s => s.Entry)
            .ToDictionary(e => e.GetText("MESSAGE_ID")!, e => e.Fields.Select(f => f.Name).ToHashSet());
    }

    [Fact]
    public void Catalog_IsWellFormed_AndNamesOnlyFieldsTheSinkSends()
    {
        var entries = Parse(File.ReadAllText(CatalogPath()));
        Assert.Equal([ReportJournal.ReportMessageId, ReportJournal.SuppressedMessageId, HookJournal.OutcomeMessageId], entries.Select(e => e.Id));
        var sent = FieldsAlwaysSent();
        foreach (var entry in entries)
        {
            foreach (var header in new[] { "Subject", "Defined-By", "Support", "Documentation" })
                Assert.True(entry.Headers.ContainsKey(header), $"{entry.Id} lacks {header}:");
            Assert.Equal("ErrorWatch", entry.Headers["Defined-By"]);
            Assert.Equal(entry.Id == HookJournal.OutcomeMessageId ? HookJournal.Documentation : ReportJournal.DefaultDocumentation, entry.Headers["Documentation"]);
            Assert.NotEmpty(entry.Body);
            var used = Placeholder().Matches(entry.Headers["Subject"] + "\n" + entry.Body).Select(m => m.Groups[1].Value).ToList();
            Assert.NotEmpty(used);
            foreach (var field in used)
                Assert.True(sent[entry.Id].Contains(field), $"{entry.Id} uses @{field}@, which not every entry carries");
            // An '@' not part of a placeholder would be taken for one.
            Assert.Equal(used.Count * 2, (entry.Headers["Subject"] + entry.Body).Count(c => c == '@'));
        }
    }

    [JournalctlFact]
    public void Catalog_CompilesWithJournalctl()
    {
        var root = Directory.CreateTempSubdirectory("errorwatch-catalog-");
        try
        {
            var database = CompileCatalog(root.FullName);
            Assert.True(File.Exists(database));
            var (code, output, error) = Journalctl.Run(["--root", root.FullName, "--list-catalog"]);
            Assert.True(code == 0, error);
            Assert.Contains($"{ReportJournal.ReportMessageId} ErrorWatch: Filesystem error on @ERRORWATCH_DEVICE@", output);
            Assert.Contains($"{ReportJournal.SuppressedMessageId} ErrorWatch: Error storm on @ERRORWATCH_DEVICE@", output);
            Assert.Contains($"{HookJournal.OutcomeMessageId} ErrorWatch: Recovery hook @ERRORWATCH_HOOK@ for @ERRORWATCH_DEVICE@", output);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }

    /// <summary>journalctl --root compiles ROOT/usr/lib/systemd/catalog/*.catalog into ROOT/var/lib/systemd/catalog/database, touching nothing outside ROOT.</summary>
    internal static string CompileCatalog(string root)
    {
        var source = Directory.CreateDirectory(Path.Combine(root, "usr/lib/systemd/catalog")).FullName;
        File.Copy(CatalogPath(), Path.Combine(source, "errorwatch.catalog"));
        var (code, _, error) = Journalctl.Run(["--root", root, "--update-catalog"]);
        Assert.True(code == 0 && error.Trim().Length == 0, $"journalctl --update-catalog: {code} {error}");
        return Path.Combine(root, "var/lib/systemd/catalog/database");
    }
}

/// <summary>
/// journalctl -x with our catalog, on real entries. journalctl reads the compiled catalog only from
/// /var/lib/systemd/catalog/database, so the scratch database is bind-mounted there inside a private
/// mount namespace (unshare -m): the system's catalog is never touched.
/// </summary>
[Collection(EndToEnd.ScratchCollection.Name)]
public class CatalogRenderingTests(JournaldFixture journald)
{
    private static string ExplainFor(string root, string match)
    {
        var script = $"mount --bind '{root}/var/lib/systemd/catalog' /var/lib/systemd/catalog && exec journalctl -x --no-pager -o short '{match}'";
        var (code, output, error) = Journalctl.Run(["-m", "--propagation", "private", "sh", "-c", script], "unshare");
        Assert.True(code == 0, $"unshare/journalctl -x: {code} {error}");
        return output;
    }

    [JournaldFact]
    public void JournalctlExplain_FillsInTheFields()
    {
        Assert.True(journald.Reused || journald.StartedPid is not null);
        var id = "ewtest-" + Guid.NewGuid().ToString("N");
        var sink = new JournalSink(new SdJournal(), new JournalFallback(new LineWriter())) { MaxEntriesPerInterval = 1 };
        var report = Full(id);
        sink.Publish(report);
        sink.Publish(Small(id + "-2", EIO, 4, new DeviceNumber(8, 17), host: id));
        sink.Flush();
        Journalctl.WaitFor(1, "ERRORWATCH_REPORT_ID=" + id);
        Journalctl.WaitFor(1, "ERRORWATCH_FIRST_REPORT_ID=" + id + "-2");

        var root = Directory.CreateTempSubdirectory("errorwatch-catalog-");
        try
        {
            CatalogTests.CompileCatalog(root.FullName);

            var text = ExplainFor(root.FullName, "ERRORWATCH_REPORT_ID=" + id);
            Assert.Contains("Subject: Filesystem error on /dev/sdb1 (ext4): EUCLEAN", text);
            Assert.Contains("The ext4 filesystem on /dev/sdb1 (device 8:17)", text);
            Assert.Contains("reported 3 error(s): metadata corruption", text);
            Assert.Contains("Severity: critical; learnt from fanotify;", text);
            Assert.Contains($"Report id: {id}.", text);
            Assert.Contains("e2fsck -f /dev/sdb1", text);
            Assert.DoesNotContain("@", text);

            text = ExplainFor(root.FullName, "ERRORWATCH_FIRST_REPORT_ID=" + id + "-2");
            Assert.Contains("Subject: Error storm on /dev/sdb1: 1 more report(s) not logged one by one", text);
            Assert.Contains("1 report(s) standing for 4", text);
            Assert.Contains($"The first was {id}-2, the last {id}-2.", text);
            Assert.DoesNotContain("@", text);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }
}

/// <summary>A hook outcome as journalctl -x shows it, from a real journald.</summary>
[Collection(EndToEnd.ScratchCollection.Name)]
public class HookCatalogRenderingTests(JournaldFixture journald)
{
    [JournaldFact]
    public void JournalctlExplain_FillsInTheHookOutcome()
    {
        Assert.True(journald.Reused || journald.StartedPid is not null);
        var id = "ewhook-" + Guid.NewGuid().ToString("N");
        var hook = new Hook { Name = "corruption-mail", Kind = HookKind.Exec, Executable = "/etc/errorwatch/hooks.d/corruption-mail", Repeat = RepeatPolicy.Always, Timeout = TimeSpan.FromMinutes(5), KillGrace = TimeSpan.FromSeconds(10), Origin = "" };
        var run = new HookRun(id, hook.Name, HookFacts.From(Full("report-" + id)), DateTimeOffset.MinValue);
        var outcome = new HookOutcome { Result = HookOutcome.Failure, Detail = "exited with 2", ExitCode = 2, Duration = TimeSpan.FromSeconds(1.5), OutputBytes = 42, Started = DateTimeOffset.UtcNow };
        new HookJournal(new SdJournal(), new JournalFallback(new LineWriter())).Outcome(hook, run, outcome);
        var entry = Assert.Single(Journalctl.WaitFor(1, "MESSAGE_ID=" + HookJournal.OutcomeMessageId, "ERRORWATCH_RUN_ID=" + id));
        Assert.Equal("3", Journalctl.Text(entry, "PRIORITY"));
        Assert.Equal("2", Journalctl.Text(entry, "ERRORWATCH_EXIT_CODE"));

        var root = Directory.CreateTempSubdirectory("errorwatch-catalog-");
        try
        {
            CatalogTests.CompileCatalog(root.FullName);
            var script = $"mount --bind '{root.FullName}/var/lib/systemd/catalog' /var/lib/systemd/catalog && exec journalctl -x --no-pager -o short 'ERRORWATCH_RUN_ID={id}'";
            var (code, text, error) = Journalctl.Run(["-m", "--propagation", "private", "sh", "-c", script], "unshare");
            Assert.True(code == 0, error);
            Assert.Contains("Subject: Recovery hook corruption-mail for /dev/sdb1: failure", text);
            Assert.Contains("Outcome: failure: exited with 2, after 1.5 s,", text);
            Assert.Contains($"journalctl ERRORWATCH_RUN_ID={id}", text);
            Assert.DoesNotContain("@", text);
        }
        finally
        {
            root.Delete(recursive: true);
        }
    }
}

/// <summary>A fact that needs journalctl (systemd's), offline.</summary>
public sealed class JournalctlFactAttribute : FactAttribute
{
    public JournalctlFactAttribute()
    {
        if (!File.Exists("/usr/bin/journalctl") && !File.Exists("/bin/journalctl"))
            Skip = "journalctl is not installed";
    }
}
