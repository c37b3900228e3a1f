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
/// ReportAdded's <c>a{sv}</c> is written from the typed report; GetReport(s) write the stored JSON's.
/// A subscriber must get the same keys, order, values and D-Bus types from both, for every shape a
/// report takes. Messages are built on a private bus and read back sealed, not sent.
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
            ["whole filesystem, nulls, no mountpoints"] = full with
            {
                Filesystem = full.Filesystem with { Uuid = null, Label = null, Mountpoints = [] },
                Object = new ObjectInfo { HandleType = 0 },
                Finding = "errors_count grew",
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
    public void Written_from_the_report_it_is_what_the_stored_json_gives()
    {
        using var daemon = new BusDaemon();
        using var bus = BusConnection.Connect(daemon.Address, "test");
        foreach (var (shape, report) in Reports)
        {
            var typed = Read(bus, m => ReportVariant.Write(m, report));
            var fromJson = Read(bus, m =>
            {
                using var doc = JsonDocument.Parse(ReportJson.ToUtf8(report));
                JsonVariant.WriteDictionary(m, doc.RootElement);
            });
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
