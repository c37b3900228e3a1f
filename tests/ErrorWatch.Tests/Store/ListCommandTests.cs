using ErrorWatch.Cli.Demo;
using ErrorWatch.Store;
using ErrorWatch.Tests.Journal;
using ErrorWatch.Tests.Recovery;

namespace ErrorWatch.Tests.Store;

/// <summary>
/// `errorwatch list` (the shipped binary) where it may not read what it should: it must say so and
/// fail, never print "nothing reported yet" or an incomplete list with exit status 0.
/// </summary>
public sealed class ListCommandTests : IDisposable
{
    private const string Nobody = "65534";
    private readonly string _dir = Directory.CreateTempSubdirectory("errorwatch-list-").FullName;

    public ListCommandTests() => HookDirectory.Chmod(_dir, "755");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static Tool.Result ListAsNobody(string state) =>
        Tool.Run("setpriv", "--reuid", Nobody, "--regid", Nobody, "--clear-groups", ErrorWatchBinary.Path, "list", "--state-dir", state);

    private static void Fill(string state, int reports, int perSegment)
    {
        using var store = ReportStore.Open(state, new StoreOptions { SegmentRecords = perSegment }, Serilog.Core.Logger.None);
        for (var i = 0; i < reports; i++)
            store.Append(JournalTestReports.Full($"01935f2a-0000-7000-8000-{i:D12}") with { Time = DateTimeOffset.UtcNow }); // within MaxAge
    }

    [RootFact("to run errorwatch list as another user")]
    public void A_store_it_may_not_read_is_named_with_the_errno_and_exit_1_not_nothing_reported()
    {
        var state = Path.Combine(_dir, "state");
        Fill(state, 2, 10);
        HookDirectory.Chmod(state, "755");
        HookDirectory.Chmod(Path.Combine(state, ReportStore.DirectoryName), "700"); // as the daemon makes it

        var result = ListAsNobody(state);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"cannot read the report store {Path.Combine(state, ReportStore.DirectoryName)}: EACCES", result.StdErr);
        Assert.DoesNotContain("nothing reported", result.StdErr);
        Assert.Empty(result.StdOut);

        // Where there is truly no store, that is what it says.
        var none = ListAsNobody(Path.Combine(_dir, "nothing-here"));
        Assert.Equal(1, none.ExitCode);
        Assert.Contains("no report store", none.StdErr);
    }

    [RootFact("to run errorwatch list as another user")]
    public void An_unreadable_segment_is_named_and_the_list_it_could_print_ends_in_exit_1()
    {
        var state = Path.Combine(_dir, "state");
        Fill(state, 4, 2); // two segments of two reports
        var reports = Path.Combine(state, ReportStore.DirectoryName);
        HookDirectory.Chmod(state, "755");
        HookDirectory.Chmod(reports, "755");
        var segments = Directory.GetFiles(reports, "*.log").Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(2, segments.Length);
        HookDirectory.Chmod(segments[1], "644");  // the newer one readable, the older not
        HookDirectory.Chmod(segments[0], "600");

        var result = ListAsNobody(state);
        Assert.Equal(1, result.ExitCode);
        Assert.Equal(2, result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains($"{segments[0]}: unreadable", result.StdErr);
        Assert.Contains("the reports above may be incomplete", result.StdErr);

        // Everything readable: every report, exit 0.
        HookDirectory.Chmod(segments[0], "644");
        var whole = ListAsNobody(state);
        Assert.Equal(0, whole.ExitCode);
        Assert.Equal(4, whole.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }
}
