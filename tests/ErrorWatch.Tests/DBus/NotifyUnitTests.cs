using System.Diagnostics;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.DBus;

/// <summary>deploy/systemd/user/errorwatch-notify.service, the user unit of the desktop notification agent.</summary>
public sealed class NotifyUnitTests
{
    private static string UnitFile => Path.Combine(ServicePaths.RepositoryRoot, "deploy", "systemd", "user", "errorwatch-notify.service");

    [SystemdAnalyzeFact]
    public void Systemd_analyze_verify_user_finds_nothing_but_the_binary_that_is_not_installed_here()
    {
        // Without a user manager, --user verify only needs an XDG_RUNTIME_DIR of its own.
        var runtime = Directory.CreateTempSubdirectory("errorwatch-user-runtime-");
        try
        {
            var (code, output) = VerifyUser(runtime.FullName, UnitFile);
            var findings = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            if (File.Exists("/usr/bin/errorwatch"))
            {
                Assert.True(code == 0 && findings.Length == 0, output);
            }
            else
            {
                var finding = Assert.Single(findings);
                Assert.Contains("/usr/bin/errorwatch is not executable: No such file or directory", finding);
            }

            // Every other directive must pass cleanly (an unknown key is only a warning, so the
            // output has to be empty, not just the exit code 0).
            var copy = Path.Combine(runtime.FullName, "errorwatch-notify.service");
            File.WriteAllText(copy, File.ReadAllText(UnitFile).Replace("ExecStart=/usr/bin/errorwatch ", "ExecStart=/bin/true "));
            (code, output) = VerifyUser(runtime.FullName, copy);
            Assert.True(code == 0 && output.Length == 0, output);
        }
        finally
        {
            runtime.Delete(recursive: true);
        }
    }

    [Fact]
    public void The_agent_lives_and_dies_with_the_graphical_session()
    {
        var directives = File.ReadAllLines(UnitFile)
            .Where(l => l.Length > 0 && l[0] is not ('#' or ';' or '['))
            .Select(l => l.Split('=', 2))
            .ToDictionary(kv => kv[0], kv => kv[1]);
        Assert.Equal("/usr/bin/errorwatch notify", directives["ExecStart"]);
        Assert.Equal("graphical-session.target", directives["After"]);
        Assert.Equal("graphical-session.target", directives["PartOf"]);
        Assert.Equal("graphical-session.target", directives["WantedBy"]);
        Assert.Equal("on-failure", directives["Restart"]);
    }

    private static (int Code, string Output) VerifyUser(string runtimeDirectory, string unit)
    {
        var start = new ProcessStartInfo(ServiceUnitTests.SystemdAnalyze!) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in new[] { "verify", "--user", "--no-pager", unit })
            start.ArgumentList.Add(argument);
        start.Environment["XDG_RUNTIME_DIR"] = runtimeDirectory;
        start.Environment["SYSTEMD_COLORS"] = "0";
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)), "systemd-analyze did not finish within 60 s");
        return (process.ExitCode, stdout.Result + stderr.Result);
    }
}
