using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace ErrorWatch.Tests.Service;

/// <summary>A fact that runs systemd-analyze; skipped only where systemd is not installed, saying so.</summary>
public sealed class SystemdAnalyzeFactAttribute : FactAttribute
{
    public SystemdAnalyzeFactAttribute()
    {
        if (ServiceUnitTests.SystemdAnalyze is null)
            Skip = "needs systemd-analyze (package systemd)";
    }
}

/// <summary>deploy/systemd/errorwatch.service as systemd itself judges it.</summary>
public sealed partial class ServiceUnitTests
{
    public static readonly string? SystemdAnalyze =
        new[] { "/usr/bin/systemd-analyze", "/bin/systemd-analyze" }.FirstOrDefault(File.Exists);

    private static string UnitFile => Path.Combine(ServicePaths.RepositoryRoot, "deploy", "systemd", "errorwatch.service");

    [SystemdAnalyzeFact]
    public void The_exposure_score_is_at_most_2_5()
    {
        var (code, stdout, stderr) = Analyze("security", "--offline=true", "--no-pager", UnitFile);
        Assert.True(code == 0, stderr);
        var match = OverallExposure().Match(stdout);
        Assert.True(match.Success, "no 'Overall exposure level' line in:\n" + stdout + stderr);
        var score = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(score <= 2.5, $"exposure {score} > 2.5:\n{stdout}");
    }

    [SystemdAnalyzeFact]
    public void Systemd_analyze_verify_finds_nothing_but_the_binary_that_is_not_installed_here()
    {
        // Offline, verify checks every directive and that ExecStart= exists. The binary is only
        // there once installed, so: the real file may fail for exactly that reason and no other,
        // and the same unit with an ExecStart= that exists must pass cleanly. --man=no: the
        // Documentation= man page comes with the package (Install/PackageTests render it).
        var (code, stdout, stderr) = Analyze("verify", "--man=no", "--no-pager", UnitFile);
        var findings = (stdout + stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (File.Exists("/usr/lib/errorwatch/errorwatch"))
        {
            Assert.True(code == 0, string.Join('\n', findings));
        }
        else
        {
            var finding = Assert.Single(findings);
            Assert.Contains("/usr/lib/errorwatch/errorwatch is not executable: No such file or directory", finding);
        }

        var dir = Directory.CreateTempSubdirectory("errorwatch-unit-");
        try
        {
            var copy = Path.Combine(dir.FullName, "errorwatch.service");
            File.WriteAllText(copy, File.ReadAllText(UnitFile).Replace("ExecStart=/usr/lib/errorwatch/errorwatch ", "ExecStart=/bin/true "));
            (code, stdout, stderr) = Analyze("verify", "--man=no", "--no-pager", copy);
            Assert.True(code == 0 && stdout.Length == 0 && stderr.Length == 0, stdout + stderr);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_unit_keeps_what_the_daemon_needs_and_hides_no_mount_point()
    {
        var directives = File.ReadAllLines(UnitFile)
            .Where(l => l.Length > 0 && l[0] is not ('#' or ';' or '['))
            .Select(l => l.Split('=', 2))
            .GroupBy(kv => kv[0], kv => kv[1])
            .ToDictionary(g => g.Key, g => g.ToList());

        Assert.Equal(["notify"], directives["Type"]);
        Assert.Equal(["CAP_SYS_ADMIN CAP_DAC_READ_SEARCH"], directives["CapabilityBoundingSet"]);
        Assert.Equal(["block-* r"], directives["DeviceAllow"]);
        Assert.Contains("fanotify_init fanotify_mark open_by_handle_at", directives["SystemCallFilter"]);
        // No /dev/kmsg and no CAP_SYSLOG: the kernel's lines come from the journal.
        Assert.Equal(["yes"], directives["ProtectKernelLogs"]);
        // Each of these would mount over a place where filesystems are mounted, or take away block devices or /proc/fs.
        Assert.Equal(["read-only"], directives["ProtectHome"]);
        Assert.Equal(["no"], directives["PrivateTmp"]);
        Assert.Equal(["no"], directives["PrivateDevices"]);
        Assert.Equal(["all"], directives["ProcSubset"]);
        foreach (var absent in new[] { "InaccessiblePaths", "TemporaryFileSystem", "PrivateUsers", "DynamicUser" })
            Assert.False(directives.ContainsKey(absent), absent + "= must not be set");
        // NativeAOT: no JIT, so no memory is ever both writable and executable.
        Assert.Equal(["yes"], directives["MemoryDenyWriteExecute"]);
    }

    private static (int Code, string Stdout, string Stderr) Analyze(params string[] args)
    {
        var psi = new ProcessStartInfo(SystemdAnalyze!)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        psi.Environment["SYSTEMD_COLORS"] = "0";
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "systemd-analyze did not finish within 60 s");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }

    [GeneratedRegex(@"Overall exposure level for errorwatch\.service: (\d+\.\d+)")]
    private static partial Regex OverallExposure();
}
