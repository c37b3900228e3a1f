using System.Text.Json;
using ErrorWatch.Filesystems;
using ErrorWatch.Tests.Journal;
using ErrorWatch.Publishing.DBus;
using ErrorWatch.Reports;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// A live signal's report is withheld from the typed report, a stored one by taking its JSON apart:
/// subscribers and GetReport(s) callers must get the same thing from both, and no path at all.
/// </summary>
public sealed class ReportPrivacyTests
{
    /// <summary>The JSON as D-Bus carries it: nulls left out (a{sv} has none), members in any order.</summary>
    private static SortedDictionary<string, string> Flattened(ReadOnlySpan<byte> json)
    {
        var flat = new SortedDictionary<string, string>(StringComparer.Ordinal);
        using var doc = JsonDocument.Parse(json.ToArray());
        void Walk(JsonElement e, string prefix)
        {
            if (e.ValueKind == JsonValueKind.Object)
                foreach (var p in e.EnumerateObject())
                    Walk(p.Value, prefix.Length == 0 ? p.Name : prefix + "." + p.Name);
            else if (e.ValueKind != JsonValueKind.Null)
                flat[prefix] = e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
        }
        Walk(doc.RootElement, "");
        return flat;
    }

    [Theory]
    [InlineData("/srv/data/plain.txt")]
    [InlineData("/srv/data/a\nb\tc\x1b")] // escaped in the summary, and bytes in path_base64
    public void Withholding_a_stored_report_gives_what_withholding_the_live_one_gives(string path)
    {
        var report = JournalTestReports.Full("01935f2a-0000-7000-8000-000000000001", path: [.. System.Text.Encoding.UTF8.GetBytes(path), 0xff]);
        Assert.NotNull(report.Object.Path);
        var stored = ReportJson.ToUtf8(report);

        var live = Flattened(ReportJson.ToUtf8(ReportPrivacy.Withheld(report)));
        var fromJson = Flattened(ReportJson.ToUtf8(ReportPrivacy.Withheld(ReportJson.Read(stored))));

        Assert.Equal(fromJson, live);
        Assert.DoesNotContain("object.path", live.Keys);
        Assert.DoesNotContain("object.path_base64", live.Keys);
        Assert.Equal("true", live["object.path_withheld"]);
        Assert.DoesNotContain(report.Object.Path!.Escaped, live["summary"]);
        Assert.Contains(report.Object.Path!.Escaped, Flattened(stored)["summary"]);
    }

    [Fact]
    public void A_report_without_a_path_is_signalled_as_it_is()
    {
        var report = JournalTestReports.Full("01935f2a-0000-7000-8000-000000000002");
        var bare = report with { Object = report.Object with { Path = null } };
        Assert.Same(bare, ReportPrivacy.Withheld(bare));
        Assert.DoesNotContain("object.path_withheld", Flattened(ReportJson.ToUtf8(bare)).Keys);
    }
}
