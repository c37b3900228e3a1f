using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.Build;

/// <summary>
/// scripts/check-skips.sh, which scripts/test.sh runs where every test can run (root and loop devices):
/// a skip passes only for a kernel feature tests/skip-allowlist.txt names. Fed the lines xUnit prints.
/// </summary>
public sealed class SkipGateTests : IDisposable
{
    private static readonly string Script = Path.Combine(ServicePaths.RepositoryRoot, "scripts", "check-skips.sh");
    private static readonly string AllowList = Path.Combine(ServicePaths.RepositoryRoot, "tests", "skip-allowlist.txt");
    private readonly string _log = Path.GetTempFileName();

    public void Dispose() => File.Delete(_log);

    private Tool.Result Check(params string[] lines)
    {
        File.WriteAllLines(_log, lines);
        return Tool.Run("bash", Script, _log, AllowList);
    }

    private static string[] Skipped(string name, string reason) =>
        [$"[xUnit.net 00:00:12.58]     {name} [SKIP]", $"[xUnit.net 00:00:12.58]       {reason}", $"  Skipped {name} [1 ms]"];

    [Fact]
    public void A_skip_for_a_missing_tool_or_privilege_fails_the_run_naming_the_test_and_its_reason()
    {
        var result = Check([.. Skipped("ErrorWatch.Tests.A.Uses_a_bus", "needs dbus-daemon (package dbus)"),
            .. Skipped("ErrorWatch.Tests.B.Xfs_monitor", "needs the XFS health monitor (kernel 7.0)")]);
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("NOT ALLOWED: ErrorWatch.Tests.A.Uses_a_bus: needs dbus-daemon (package dbus)", result.StdOut);
        Assert.Contains("allowed:   ErrorWatch.Tests.B.Xfs_monitor", result.StdOut);
        Assert.Contains("1 of 2 skipped", result.StdOut);
    }

    [Fact]
    public void Skips_only_for_allow_listed_kernel_features_and_no_skips_pass()
    {
        var allowed = Check([.. Skipped("ErrorWatch.Tests.B.Xfs_fanotify", "XFS FAN_FS_ERROR (kernel 7.0) is missing on this kernel")]);
        Assert.Equal(0, allowed.ExitCode);
        Assert.Contains("1 skipped test(s), each for an allow-listed kernel feature", allowed.StdOut);

        var none = Check("[xUnit.net 00:00:00.54]   Starting:    ErrorWatch.Tests", "  Passed ErrorWatch.Tests.C.D [3 ms]");
        Assert.Equal(0, none.ExitCode);
        Assert.Contains("nothing skipped", none.StdOut);
    }

    [Fact]
    public void The_allow_list_names_kernel_features_only()
    {
        // Each entry is a kernel feature with the version that brings it, never a tool or a privilege.
        var entries = File.ReadAllLines(AllowList).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.NotEmpty(entries);
        Assert.All(entries, e => Assert.Matches(@"\(kernel \d+\.\d+\)$", e));
    }
}
