using System.Collections.Immutable;
using System.Globalization;
using System.Text;
using System.Text.Json;
using ErrorWatch.Bus;
using ErrorWatch.Filesystems;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Reports;
using ErrorWatch.Tests.Journal;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// ReportAdded's <c>a{sv}</c> is written from the live report; GetReport(s) write the report read back
/// from the store. A subscriber must get the same keys, order, values and D-Bus types from both, for
/// every shape a report takes, and each key the one type docs/dbus-api.md and the interface XML give
/// it. Messages are built on a private bus and read back sealed, not sent.
/// </summary>
public sealed class ReportVariantTests
{
    private static readonly Dictionary<string, CorruptionReport> Reports = Make();

    private static Dictionary<string, CorruptionReport> Make()
    {
        var full = JournalTestReports.Full("01935f2a-0000-7000-8000-000000000010");
        var details = JournalTestReports.Ext4Details();
        details.Section("more")
            .Set("big", ulong.MaxValue).Set("mid", 1UL << 40).Set("small", -5L).Set("i", -7).Set("u", 7u).Set("flag", true)
            .Set("empty_list", Array.Empty<string>()).Set("list", new[] { "a", "b\nc" })
            .Section("nested").Set("deeper", "yes");
        return new()
        {
            ["full, path not text (base64 beside)"] = full,
            ["plain path"] = full with { Object = full.Object with { Path = new FsPath("/srv/data/plain.txt"u8.ToArray()) } },
            ["path withheld"] = ReportPrivacy.Withheld(full),
            ["mount point not text (base64 beside)"] = full with
            {
                Filesystem = full.Filesystem with { Mountpoints = [new FsPath([.. "/mnt/a\t"u8, 0xef, 0xbf, 0xbe]), FsPath.FromString("/srv")] },
            },
            ["whole filesystem, nulls, no mountpoints"] = full with
            {
                Filesystem = full.Filesystem with { Uuid = null, Label = null, Mountpoints = [] },
                Object = new ObjectInfo { HandleType = 0 },
                Finding = "errors_count grew",
            },
            ["small values, parent, path error, alias"] = full with
            {
                Error = full.Error with { Count = 1, Alias = "EFSCORRUPTED" },
                Object = full.Object with { Inode = 12, Generation = 1, ParentInode = 2, Path = null, PathError = "ESTALE" },
                Pid = 1,
                Finding = "found",
            },
            ["folded, deleted, handle problem, parse problem, counts past int64"] = full with
            {
                Error = JournalTestReports.Error(5, ulong.MaxValue, ImmutableDictionary<string, ulong>.Empty.Add("EIO", ulong.MaxValue - 1).Add("EUCLEAN", 1)),
                Object = full.Object with { Deleted = true, HandleProblem = "handle too short", ParentInode = null, Inode = ulong.MaxValue },
                ParseProblem = "record truncated",
                RaisedByErrorWatch = true,
                Details = details,
            },
        };
    }

    [BusFact]
    public void A_report_read_back_from_the_store_gives_the_live_reports_keys_and_types()
    {
        using var daemon = new BusDaemon();
        using var bus = BusConnection.Connect(daemon.Address, "test");
        foreach (var (shape, report) in Reports)
        {
            var typed = Read(bus, m => ReportVariant.Write(m, report));
            var fromJson = Read(bus, m => ReportVariant.Write(m, ReportJson.Read(ReportJson.ToUtf8(report))));
            Assert.True(fromJson == typed, $"{shape}:\n json {fromJson}\ntyped {typed}");
        }
        // What the comparison rests on: the shapes do reach the types and fields in question.
        var folded = Read(bus, m => ReportVariant.Write(m, Reports["folded, deleted, handle problem, parse problem, counts past int64"]));
        Assert.Contains($"count=t:{ulong.MaxValue}", folded);
        Assert.Contains("small=x:-5", folded);
        Assert.Contains("empty_list=as[]", folded);
        Assert.Contains("object=a{sv}{scope=s:inode", folded);
        Assert.Contains("path_base64=s:", Read(bus, m => ReportVariant.Write(m, Reports["full, path not text (base64 beside)"])));
        var withheld = Read(bus, m => ReportVariant.Write(m, Reports["path withheld"]));
        Assert.Contains("path_withheld=b:True", withheld);
        Assert.DoesNotContain("path=", withheld);
    }

    [BusFact]
    public void Each_key_has_the_one_type_the_docs_and_the_interface_xml_give_it_whatever_its_value()
    {
        var documented = DocumentedTypes();
        Assert.True(documented.Count > 40, $"docs/dbus-api.md's report-keys table has {documented.Count} rows");
        Assert.Equal(documented, InterfaceXmlTypes());

        using var daemon = new BusDaemon();
        using var bus = BusConnection.Connect(daemon.Address, "test");
        var written = new HashSet<string>();
        foreach (var (shape, report) in Reports)
        {
            foreach (var (way, sent) in new[] { ("live", report), ("stored", ReportJson.Read(ReportJson.ToUtf8(report))) })
            {
                foreach (var (key, type, value) in Types(bus, m => ReportVariant.Write(m, sent)))
                {
                    var where = $"{shape}, {way}: {key}";
                    if (key.StartsWith("details.", StringComparison.Ordinal))
                    {
                        // Integers in details are x; only a value past the int64 range is t.
                        if (type is "i" or "u" or "t" or "y" or "n" or "q")
                            Assert.True(type == "t" && value is ulong big && big > long.MaxValue, $"{where} is {type}");
                        continue;
                    }
                    if (key.StartsWith("error.folded.", StringComparison.Ordinal))
                    {
                        Assert.True(type == "t", $"{where} is {type}");
                        continue;
                    }
                    Assert.True(documented.TryGetValue(key, out var expected), $"{where} is not in docs/dbus-api.md's table");
                    Assert.True(expected == type, $"{where} is {type}, documented {expected}");
                    written.Add(key);
                }
            }
        }
        // Every documented key was written by some shape, so every row was checked.
        Assert.Equal(documented.Keys.Order(StringComparer.Ordinal), written.Order(StringComparer.Ordinal));
    }

    private static Dictionary<string, string> DocumentedTypes()
    {
        var doc = File.ReadAllText(Path.Combine(ErrorWatch.Tests.Service.ServicePaths.RepositoryRoot, "docs", "dbus-api.md"));
        var begin = doc.IndexOf("<!-- report-keys: begin -->", StringComparison.Ordinal);
        var end = doc.IndexOf("<!-- report-keys: end -->", StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, "docs/dbus-api.md has no report-keys table");
        return System.Text.RegularExpressions.Regex.Matches(doc[begin..end], @"^\| `([^`]+)` \| `([^`]+)` \|", System.Text.RegularExpressions.RegexOptions.Multiline)
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
    }

    private static Dictionary<string, string> InterfaceXmlTypes()
    {
        var xml = File.ReadAllText(PolicyFiles.ManagerXml);
        var list = xml[(xml.IndexOf("report keys:", StringComparison.Ordinal) + "report keys:".Length)..xml.IndexOf("-->", StringComparison.Ordinal)];
        return list.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(line => line.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .ToDictionary(parts => parts[0], parts => parts[1]);
    }

    /// <summary>Each entry of the a{sv} (nested ones by dotted key) with its D-Bus type and, for a basic type, its value.</summary>
    private static List<(string Key, string Type, object? Value)> Types(BusConnection bus, Action<BusMessage> write)
    {
        var m = bus.NewSignal(BusNames.RootPath, BusNames.ManagerInterface, "ReportAdded");
        try
        {
            write(m);
            m.SealForReading();
            var found = new List<(string, string, object?)>();
            Walk(m, "", found);
            return found;
        }
        finally
        {
            BusConnection.Release(m);
        }

        static void Walk(BusMessage m, string prefix, List<(string, string, object?)> found)
        {
            m.Enter('a', "{sv}");
            while (m.Peek() is not null)
            {
                m.Enter('e', "sv");
                var key = prefix + m.ReadString();
                var contents = m.Peek()!.Value.Contents!;
                m.Enter('v', contents);
                if (contents == "a{sv}")
                {
                    found.Add((key, contents, null));
                    Walk(m, key + ".", found);
                }
                else
                    found.Add((key, contents, m.ReadValue()));
                m.Exit();
                m.Exit();
            }
            m.Exit();
        }
    }

    /// <summary>The a{sv} a writer makes, as text with each value's D-Bus type, in message order.</summary>
    private static string Read(BusConnection bus, Action<BusMessage> write)
    {
        var m = bus.NewSignal(BusNames.RootPath, BusNames.ManagerInterface, "ReportAdded");
        try
        {
            write(m);
            m.SealForReading();
            var text = new StringBuilder();
            Describe(m, text);
            return text.ToString();
        }
        finally
        {
            BusConnection.Release(m);
        }
    }

    private static void Describe(BusMessage m, StringBuilder text)
    {
        var (type, contents) = m.Peek() ?? throw new InvalidOperationException("message ended early");
        switch (type)
        {
            case 'v':
                m.Enter('v', contents);
                Describe(m, text);
                m.Exit();
                return;
            case 'a' when contents == "{sv}":
                text.Append("a{sv}{");
                m.Enter('a', contents);
                while (m.Peek() is not null)
                {
                    m.Enter('e', "sv");
                    text.Append(m.ReadString()).Append('=');
                    Describe(m, text);
                    text.Append(',');
                    m.Exit();
                }
                m.Exit();
                text.Append('}');
                return;
            case 'a':
                text.Append('a').Append(contents).Append('[');
                m.Enter('a', contents);
                while (m.Peek() is not null)
                {
                    Describe(m, text);
                    text.Append(',');
                }
                m.Exit();
                text.Append(']');
                return;
            default:
                text.Append(type).Append(':').Append(Convert.ToString(m.ReadValue(), CultureInfo.InvariantCulture));
                return;
        }
    }
}
