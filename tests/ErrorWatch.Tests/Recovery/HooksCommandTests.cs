using System.Diagnostics;
using ErrorWatch.Recovery;

namespace ErrorWatch.Tests.Recovery;

/// <summary>errorwatch hooks list and errorwatch hooks test, as an admin runs them.</summary>
public sealed class HooksCommandTests : IDisposable
{
    private readonly HookDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Config(string extra = "")
    {
        var file = Path.Combine(_dir.Path, "errorwatch.conf");
        File.WriteAllText(file, $"[Hooks]\nDirectory={_dir.Hooks}\n{extra}");
        return file;
    }

    private static (int Code, string Out, string Err) Errorwatch(params string[] args)
    {
        using var process = Process.Start(ErrorWatchBinary.StartInfo(args))!;
        var err = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)));
        return (process.ExitCode, output, err.Result);
    }

    [RootFact]
    public void List_shows_what_runs_for_which_event_what_is_refused_and_why_and_what_is_not_a_hook()
    {
        _dir.Recorder("ext4-fsck");
        _dir.Recorder("corruption-mail");
        _dir.Recorder("io-unsafe");
        HookDirectory.Chmod(Path.Combine(_dir.Hooks, "io-unsafe"), "775");
        File.WriteAllText(Path.Combine(_dir.Hooks, "README"), "not a hook");
        var config = Config("""
            [Hook "xfs-scrub"]
            Unit=xfs_scrub@%m.service
            Types=xfs
            Events=corruption
            Repeat=interval=1d
            [Hook "corruption-mail"]
            Repeat=once
            """);

        var (code, output, _) = Errorwatch("hooks", "list", "--config", config, "--state-dir", _dir.State);
        Assert.Equal(1, code); // something is refused
        Assert.Contains($"Hooks directory {_dir.Hooks}; at most 4 at once; default Timeout=5min, KillGrace=10s, Repeat=interval=1h", output);
        Assert.Contains("  xfs-scrub\n      runs     unit xfs_scrub@%m.service\n      for      type xfs, event corruption\n      repeat   interval=1d; timeout 5min", output);
        Assert.Contains("      repeat   once; timeout 5min\n      from     " + Path.Combine(_dir.Hooks, "corruption-mail") + ", adjusted by [Hook \"corruption-mail\"]", output);
        Assert.Contains("  corruption  corruption-mail, ext4-fsck (ext4), xfs-scrub (type xfs)\n", output);
        Assert.Contains("  io          ext4-fsck (ext4)\n", output);
        Assert.Contains("  history     ext4-fsck (ext4)\n", output);
        Assert.Contains($"Refused (these never run):\n  io-unsafe: {Path.Combine(_dir.Hooks, "io-unsafe")}: group-writable (mode 0775)", output);
        Assert.Contains($"Fix: chmod go-w {Path.Combine(_dir.Hooks, "io-unsafe")}", output);
        Assert.Contains($"  {Path.Combine(_dir.Hooks, "README")}: its name has none of the prefixes", output);

        HookDirectory.Chmod(Path.Combine(_dir.Hooks, "io-unsafe"), "755");
        Assert.Equal(0, Errorwatch("hooks", "list", "--config", config, "--state-dir", _dir.State).Code);
    }

    [RootFact]
    public void Test_runs_the_matching_hooks_with_event_test_and_a_synthetic_report_on_a_real_filesystem()
    {
        _dir.Recorder("all-rec");
        _dir.Recorder("io-rec");
        _dir.Write("corruption-fails", "#!/bin/sh\necho \"dry run for $ERRORWATCH_DEVICE\"\nexit 4\n");
        var config = Config("""
            [Hook "scrub"]
            Unit=scrub@%m.service
            """);

        var (code, output, _) = Errorwatch("hooks", "test", "--config", config, "--filesystem", "/");
        Assert.Equal(1, code); // corruption-fails failed
        Assert.Matches("Test report [0-9a-f-]{36}: corruption on \\S+ \\S+ \\(/\\); ERRORWATCH_EVENT=test", output);
        Assert.Contains("all-rec: ok: exited with 0", output);
        Assert.Contains("  | dry run for /", output);
        Assert.Contains("corruption-fails: failure: Hook corruption-fails for", output);
        Assert.Contains("scrub: would start scrub@-.service (add --start-units to start it)", output);
        Assert.DoesNotContain("io-rec", output);
        var env = Assert.Single(_dir.Runs("all-rec"));
        Assert.Equal("test", System.Text.Encoding.UTF8.GetString(env["ERRORWATCH_EVENT"]));
        Assert.Equal("/", System.Text.Encoding.UTF8.GetString(env["ERRORWATCH_MOUNTPOINT"]));
        Assert.Equal("1", System.Text.Encoding.UTF8.GetString(env["ERRORWATCH_ERROR_COUNT"]));
        // The report file's directory is gone once the test is over.
        Assert.DoesNotContain(Directory.EnumerateDirectories(Path.GetTempPath(), "errorwatch-hooks-test-*"), d => Directory.GetCreationTimeUtc(d) > DateTime.UtcNow.AddMinutes(-1));

        var (ioCode, ioOutput, _) = Errorwatch("hooks", "test", "--config", config, "--event", "io", "--hook", "io-rec");
        Assert.Equal(0, ioCode);
        Assert.Contains("io-rec: ok: exited with 0", ioOutput);
        Assert.DoesNotContain("all-rec", ioOutput);
        Assert.Equal("test", System.Text.Encoding.UTF8.GetString(Assert.Single(_dir.Runs("io-rec"))["ERRORWATCH_EVENT"]));

        var (missingCode, _, missingErr) = Errorwatch("hooks", "test", "--config", config, "--hook", "nope");
        Assert.Equal(1, missingCode);
        Assert.Contains("nope: no such hook", missingErr);
        var (noFs, _, noFsErr) = Errorwatch("hooks", "test", "--config", config, "--filesystem", "/no/such/mount");
        Assert.Equal(2, noFs);
        Assert.Contains("no mounted filesystem matches '/no/such/mount'", noFsErr);
    }

    [Fact]
    public void A_bad_configuration_is_reported_before_anything_runs()
    {
        var config = Config("[Hook \"x\"]\nExec=relative/path\n");
        var (code, _, err) = Errorwatch("hooks", "list", "--config", config);
        Assert.Equal(1, code);
        Assert.Contains($"{config}:4: [Hook \"x\"] Exec: 'relative/path' is not an absolute path", err);
    }
}
