using System.Collections.Immutable;
using System.Globalization;
using System.Text.Json;
using ErrorWatch.Filesystems;
using ErrorWatch.Reports;
using ErrorWatch.Tests.Kernel;
using static ErrorWatch.Tests.Decoding.TestEvents;

namespace ErrorWatch.Tests.Reports;

/// <summary>
/// Reports as JSON and as one text line. Paths are untrusted bytes (kernel-abi.md §4.5: "treat paths as
/// untrusted strings (may contain newlines/escape sequences)"), possibly not UTF-8: JSON must stay valid
/// and keep the exact bytes, the text line must stay one line with no terminal escapes.
/// </summary>
public class ReportJsonTests
{
    /// <summary>newline, tab, ESC, quote, backslash, CR, NEL (U+0085), and a byte that is never UTF-8.</summary>
    private static readonly byte[] HostilePathBytes =
        [.. "/srv/data/a\nb\tc\x1b[2Jd\"e\\f\rg\u0085h"u8, 0xff, (byte)'i'];

    /// <summary>Valid UTF-8 but hostile: a forged second log line and a colour escape.</summary>
    private const string HostileMountPoint = "/mnt/evil\nFAKE 2026-01-01 all clear\r\x1b[31m";

    private static readonly Guid Uuid = Guid.Parse("11111111-2222-3333-4444-555555555555");

    private static CorruptionReport HostileReport()
    {
        var sb = Ext4(P(HostileMountPoint), uuid: Uuid, label: "lbl");
        var ev = FsError(sb, EUCLEAN, 3, EventBuilder.FileIdIno32Gen, EventBuilder.Ino32Gen(12, 0x1234));
        var report = Decoder().Decode(ev);
        // Pretend resolution found the hostile name (offline tests cannot call open_by_handle_at).
        return report with { Object = report.Object with { Path = new FsPath(HostilePathBytes), PathError = null } };
    }

    private static JsonElement Parse(CorruptionReport report, out JsonDocument document)
    {
        document = JsonDocument.Parse(ReportJson.ToUtf8(report));
        return document.RootElement;
    }

    private static JsonElement Get(JsonElement element, string dottedPath)
    {
        foreach (var name in dottedPath.Split('.'))
        {
            Assert.Equal(JsonValueKind.Object, element.ValueKind);
            Assert.True(element.TryGetProperty(name, out element), $"missing '{dottedPath}'");
        }
        return element;
    }

    [Fact]
    public void HostilePath_IsValidJsonAndKeepsTheExactBytes()
    {
        var bytes = ReportJson.ToUtf8(HostileReport());

        using var document = JsonDocument.Parse(bytes); // throws on invalid JSON
        var root = document.RootElement;

        Assert.Equal(HostilePathBytes, Convert.FromBase64String(Get(root, "object.path_base64").GetString()!));
        // Not UTF-8, so the readable form is the escaped one: no raw control characters left in it.
        var path = Get(root, "object.path").GetString()!;
        Assert.Contains("\\n", path);
        Assert.Contains("\\xff", path);
        Assert.DoesNotContain('\n', path);
        Assert.DoesNotContain('\x1b', path);
        Assert.DoesNotContain('\r', path);
        // One report is one line of JSON (JSON lines output).
        Assert.DoesNotContain((byte)'\n', bytes);
        Assert.DoesNotContain((byte)'\r', bytes);
        Assert.DoesNotContain((byte)0x1b, bytes);
    }

    [Fact]
    public void HostileMountPoint_RoundTripsThroughJson()
    {
        using var document = JsonDocument.Parse(ReportJson.ToUtf8(HostileReport()));
        var root = document.RootElement;

        var mountpoints = Get(root, "filesystem.mountpoints");
        Assert.Equal(JsonValueKind.Array, mountpoints.ValueKind);
        Assert.Equal(HostileMountPoint, Assert.Single(mountpoints.EnumerateArray()).GetString());
    }

    [Fact]
    public void ValidUtf8Path_HasNoBase64Twin()
    {
        var report = HostileReport();
        report = report with { Object = report.Object with { Path = P("/srv/data/naïve\nname") } };

        var root = Parse(report, out var document);
        using (document)
        {
            Assert.Equal("/srv/data/naïve\nname", Get(root, "object.path").GetString());
            Assert.False(Get(root, "object").TryGetProperty("path_base64", out _));
        }
    }

    [Fact]
    public void Noncharacters_are_valid_UTF8_but_written_escaped_with_the_exact_bytes_because_sd_bus_refuses_them()
    {
        var bytes = "/srv/a\uFFFEb\uFDD0c\U0010FFFF"u8.ToArray();
        var report = HostileReport();
        report = report with { Object = report.Object with { Path = new FsPath(bytes) } };

        var root = Parse(report, out var document);
        using (document)
        {
            Assert.Equal(@"/srv/a\xef\xbf\xbeb\xef\xb7\x90c\xf4\x8f\xbf\xbf", Get(root, "object.path").GetString());
            Assert.Equal(bytes, Get(root, "object.path_base64").GetBytesFromBase64());
        }
    }

    [Fact]
    public void TextLine_IsOneLineWithoutTerminalEscapes()
    {
        var line = ReportText.Format(HostileReport());

        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\r', line);
        Assert.DoesNotContain('\x1b', line);
        Assert.DoesNotContain('\u0085', line);
        // Still says where and what, escaped.
        Assert.Contains("/mnt/evil\\nFAKE", line);
        Assert.Contains("/srv/data/a\\nb\\tc\\x1b[2Jd", line);
        Assert.Contains("\\xff", line);
        Assert.Contains("EUCLEAN", line);
        Assert.Contains("3 errors", line);
    }

    [Fact]
    public void TextLine_WithoutPath_GivesThePathErrorOnOneLine()
    {
        var report = HostileReport();
        report = report with { Object = report.Object with { Path = null, PathError = DisabledReason } };

        var line = ReportText.Format(report);

        Assert.Contains(DisabledReason, line);
        Assert.DoesNotContain('\n', line);
        Assert.DoesNotContain('\x1b', line);
    }

    [Fact]
    public void RequiredFields_ArePresentWithTheirJsonTypes()
    {
        var report = HostileReport();
        var root = Parse(report, out var document);
        using (document)
        {
            Assert.Equal(JsonValueKind.Object, root.ValueKind);
            Assert.Equal(report.Id, Get(root, "id").GetString());
            Assert.True(Guid.TryParse(Get(root, "id").GetString(), out _));
            Assert.Equal("fanotify", Get(root, "source").GetString());

            var time = Get(root, "time").GetString()!;
            Assert.EndsWith("Z", time);
            Assert.Equal(Time, DateTimeOffset.Parse(time, CultureInfo.InvariantCulture, DateTimeStyles.RoundtripKind));

            Assert.Equal("/dev/loop0", Get(root, "filesystem.device").GetString());
            Assert.Equal(Uuid, Guid.Parse(Get(root, "filesystem.uuid").GetString()!));
            Assert.Equal("ext4", Get(root, "filesystem.type").GetString());
            Assert.Equal(JsonValueKind.Array, Get(root, "filesystem.mountpoints").ValueKind);

            Assert.Equal(JsonValueKind.Number, Get(root, "error.errno").ValueKind);
            Assert.Equal(EUCLEAN, Get(root, "error.errno").GetInt32());
            Assert.Equal("EUCLEAN", Get(root, "error.name").GetString());
            Assert.Equal(JsonValueKind.Number, Get(root, "error.count").ValueKind);
            Assert.Equal(3ul, Get(root, "error.count").GetUInt64());

            Assert.Equal(JsonValueKind.Number, Get(root, "object.inode").ValueKind);
            Assert.Equal(12ul, Get(root, "object.inode").GetUInt64());
            Assert.Equal(JsonValueKind.Number, Get(root, "object.generation").ValueKind);
            Assert.Equal(0x1234u, Get(root, "object.generation").GetUInt32());
            Assert.Equal(JsonValueKind.String, Get(root, "object.path").ValueKind);

            Assert.Equal(JsonValueKind.Object, Get(root, "details").ValueKind);
        }
    }

    [Fact]
    public void EveryObject_HasUniquePropertyNames()
    {
        var root = Parse(HostileReport(), out var document);
        using (document)
            AssertUniqueNames(root, "$");
    }

    private static void AssertUniqueNames(JsonElement element, string where)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            var names = element.EnumerateObject().Select(p => p.Name).ToList();
            Assert.True(names.Count == names.Distinct().Count(), $"duplicate property names in {where}: {string.Join(",", names)}");
            foreach (var p in element.EnumerateObject())
                AssertUniqueNames(p.Value, where + "." + p.Name);
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray())
                AssertUniqueNames(item, where + "[]");
        }
    }

    [Fact]
    public void WholeFilesystemReport_HasNullInodeGenerationAndPath()
    {
        var report = Decoder().Decode(FsError(Ext4(P("/mnt/scratch")), ESHUTDOWN));

        var root = Parse(report, out var document);
        using (document)
        {
            Assert.Equal("filesystem", Get(root, "object.scope").GetString());
            Assert.Equal(JsonValueKind.Null, Get(root, "object.inode").ValueKind);
            Assert.Equal(JsonValueKind.Null, Get(root, "object.generation").ValueKind);
            Assert.Equal(JsonValueKind.Null, Get(root, "object.path").ValueKind);
            Assert.Equal(JsonValueKind.Null, Get(root, "filesystem.uuid").ValueKind);
            Assert.Equal("/mnt/scratch", Assert.Single(Get(root, "filesystem.mountpoints").EnumerateArray()).GetString());
        }
    }

    [Fact]
    public void NestedDetails_SerializeAsNestedObjects()
    {
        var report = HostileReport();
        var inner = new ReportDetails().Set("depth", 2L).Set("flag", true);
        report.Details.Section("acme")
            .Set("name", "tree\nroot")
            .Set("big", ulong.MaxValue)
            .Set("negative", -7L)
            .Set("small", 42)
            .Set("list", new[] { "a", "b\"c" })
            .Set("inner", inner);

        var root = Parse(report, out var document);
        using (document)
        {
            var acme = Get(root, "details.acme");
            Assert.Equal(JsonValueKind.Object, acme.ValueKind);
            Assert.Equal("tree\nroot", Get(acme, "name").GetString());
            Assert.Equal(ulong.MaxValue, Get(acme, "big").GetUInt64());
            Assert.Equal(-7L, Get(acme, "negative").GetInt64());
            Assert.Equal(42, Get(acme, "small").GetInt32());
            Assert.Equal(new[] { "a", "b\"c" }, Get(acme, "list").EnumerateArray().Select(e => e.GetString()));
            Assert.Equal(JsonValueKind.Object, Get(acme, "inner").ValueKind);
            Assert.Equal(2L, Get(root, "details.acme.inner.depth").GetInt64());
            Assert.Equal(JsonValueKind.True, Get(root, "details.acme.inner.flag").ValueKind);

            // The ext4 decoder's own section is nested the same way.
            Assert.Equal(JsonValueKind.Object, Get(root, "details.ext4").ValueKind);
            Assert.Equal(JsonValueKind.String, Get(root, "details.ext4.sysfs_error").ValueKind);

            // Order of insertion is kept (stable output).
            Assert.Equal(new[] { "name", "big", "negative", "small", "list", "inner" }, acme.EnumerateObject().Select(p => p.Name));
        }
    }

    /// <summary>A report with every optional part: folded errnos, nested details of each type, a finding, a parse problem.</summary>
    private static CorruptionReport EveryPartReport()
    {
        var report = HostileReport();
        return report with
        {
            Finding = "errors_count grew by 2 more than fanotify announced",
            ParseProblem = "record 2 at offset 48: length 3 is below the header",
            KernelEvents = 7,
            Pid = 4242,
            RaisedByErrorWatch = true,
            Error = report.Error with
            {
                Count = ulong.MaxValue - 1,
                Alias = "EFSCORRUPTED",
                Folded = new Dictionary<string, ulong> { ["EUCLEAN"] = 5, ["EIO"] = ulong.MaxValue - 6 }.ToImmutableDictionary(),
            },
            Object = report.Object with { ParentInode = 2, Deleted = true, HandleProblem = "handle too short", PathWithheld = true, PathError = "ESTALE" },
            Details = new ReportDetails()
                .Set("text", "é\n\"quoted\"")
                .Set("negative", -3L)
                .Set("huge", ulong.MaxValue)
                .Set("small", 7)
                .Set("flag", false)
                .Set("list", new[] { "a", "", "c" })
                .Set("ext4", new ReportDetails().Set("errors_count", 9L).Set("last_error", new ReportDetails().Set("func", "ext4_lookup"))),
        };
    }

    public static TheoryData<string> ReportsToRoundTrip() => ["hostile", "every part", "whole filesystem", "test report"];

    private static CorruptionReport Named(string name) => name switch
    {
        "hostile" => HostileReport(),
        "every part" => EveryPartReport(),
        "whole filesystem" => Decoder().Decode(FsError(Ext4(), EIO, 1)),
        _ => ErrorWatch.Recovery.TestReport.For(HostileReport().Filesystem, "readonly", DateTimeOffset.UnixEpoch.AddTicks(1234567)),
    };

    [Theory]
    [MemberData(nameof(ReportsToRoundTrip))]
    public void A_report_read_back_from_its_JSON_writes_the_same_JSON(string name)
    {
        var report = Named(name);
        var json = ReportJson.ToUtf8(report);

        var read = ReportJson.Read(json);

        Assert.Equal(System.Text.Encoding.UTF8.GetString(json), System.Text.Encoding.UTF8.GetString(ReportJson.ToUtf8(read)));
        // The typed values themselves, not only their text.
        Assert.Equal((report.Id, report.Category, report.Severity, report.Error.Count, report.Error.Errno, report.Object.Inode, report.Object.Generation),
            (read.Id, read.Category, read.Severity, read.Error.Count, read.Error.Errno, read.Object.Inode, read.Object.Generation));
        Assert.Equal(report.Filesystem.MajorMinor, read.Filesystem.MajorMinor);
        Assert.Equal(report.Filesystem.Uuid, read.Filesystem.Uuid);
        Assert.Equal(report.Object.Path, read.Object.Path); // the exact bytes, hostile or not
        Assert.Equal(report.Object.WholeFilesystem || report.Object.Inode is not null ? report.Object.Scope : "unknown", read.Object.Scope);
        Assert.Equal(report.Error.Folded.OrderBy(kv => kv.Key), read.Error.Folded.OrderBy(kv => kv.Key));
        Assert.Equal(report.Summary, read.Summary);
    }

    [Theory]
    [InlineData("", "not JSON")]
    [InlineData("[1]", "not a report")]
    [InlineData("{\"type\":\"summary\"}", "not a report")]
    [InlineData("{\"type\":\"report\",\"id\":\"x\"}", "\"filesystem\" is missing")]
    public void JSON_that_is_not_a_report_is_refused_naming_what_is_wrong(string json, string named)
    {
        var e = Assert.Throws<ReportFormatException>(() => ReportJson.Read(System.Text.Encoding.UTF8.GetBytes(json)));
        Assert.Contains(named, e.Message);
    }

    [Fact]
    public void A_field_of_the_wrong_type_is_refused_naming_the_problem()
    {
        var json = System.Text.Encoding.UTF8.GetString(ReportJson.ToUtf8(HostileReport()));
        var broken = json.Replace("\"count\":3", "\"count\":\"three\"", StringComparison.Ordinal);
        Assert.NotEqual(json, broken);
        Assert.Throws<ReportFormatException>(() => ReportJson.Read(System.Text.Encoding.UTF8.GetBytes(broken)));
    }
}
