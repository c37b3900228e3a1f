using System.Text;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Configuration;
using ErrorWatch.Recovery;
using ErrorWatch.Tests.EndToEnd;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.Recovery;

/// <summary>
/// The examples in deploy/hooks/ do what their comments say, run as ErrorWatch runs them (execve,
/// the fixed environment and ERRORWATCH_* variables), on scratch filesystems of the test's own.
/// Tools that would reach outside the test (sendmail, wall) are replaced through the variable the
/// script reads them from; ErrorWatch never passes such a variable, so installed hooks use the real ones.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class ExampleHookTests : IDisposable
{
    private readonly HookDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private string Install(string name)
    {
        var target = Path.Combine(_dir.Hooks, name);
        File.Copy(Path.Combine(ServicePaths.RepositoryRoot, "deploy", "hooks", name), target);
        HookDirectory.Chmod(target, "755");
        Assert.Null(HookPermissions.Refusal(target));
        return target;
    }

    private static (HookOutcome Outcome, string Output) Run(string hook, Dictionary<string, string> env)
    {
        var output = new StringBuilder();
        var outcome = HookProcess.Run(new HookCommand
        {
            Executable = hook,
            Arguments = [Encoding.UTF8.GetBytes(hook)],
            Environment = [.. HookLauncher.FixedEnvironment.Concat(env.Select(kv => $"{kv.Key}={kv.Value}")).Select(Encoding.UTF8.GetBytes)],
            Timeout = TimeSpan.FromSeconds(30),
            KillGrace = TimeSpan.FromSeconds(1),
        }, line => { lock (output) output.AppendLine(Encoding.UTF8.GetString(line.Text)); }, CancellationToken.None, TimeSpan.FromSeconds(1));
        return (outcome, output.ToString());
    }

    private static Dictionary<string, string> Env(ScratchFilesystem fs, string eventWord) => new()
    {
        ["ERRORWATCH_EVENT"] = eventWord,
        ["ERRORWATCH_DEVICE"] = fs.LoopDevice,
        ["ERRORWATCH_MOUNTPOINT"] = fs.MountPoint,
        ["ERRORWATCH_UUID"] = Tool.Check("blkid", "-p", "-s", "UUID", "-o", "value", fs.Image).Trim(),
        ["ERRORWATCH_FSTYPE"] = fs.Type,
        ["ERRORWATCH_ERROR_COUNT"] = "1",
        ["ERRORWATCH_REPORT_ID"] = "01936a3e-7b2c-7000-8000-000000000001",
        ["ERRORWATCH_MESSAGE"] = $"ext4 {fs.LoopDevice} ({fs.MountPoint}) reports metadata corruption (EUCLEAN/EFSCORRUPTED) (whole filesystem), 1 error",
    };

    private static string Header(ScratchFilesystem fs, string field) =>
        Tool.Check("dumpe2fs", "-h", fs.LoopDevice).Split('\n').Single(l => l.StartsWith(field + ":", StringComparison.Ordinal))[(field.Length + 1)..].Trim();

    [LoopFact]
    public void Ext4_fsck_at_boot_leaves_errors_ext4_recorded_to_the_boot_check_and_marks_others_by_mount_count()
    {
        var hook = Install("ext4-fsck-at-boot");
        using var scratch = new ScratchDirectory();

        // An error ext4 recorded itself: the superblock says so, and survives the unmount.
        var recorded = scratch.Ext4("recorded");
        recorded.TriggerFsError();
        var (outcome, output) = Run(hook, Env(recorded, "corruption"));
        Assert.Equal(HookOutcome.Success, outcome.Result);
        Assert.Contains("its superblock records the error", output);
        Assert.Contains("is not in /etc/fstab: nothing checks it at boot", output);

        // An error ext4 did not record (a clean superblock), with a maximum mount count: the count is set to it.
        var counted = scratch.Ext4("counted");
        Tool.Check("tune2fs", "-c", "30", counted.LoopDevice);
        (outcome, output) = Run(hook, Env(counted, "test"));
        Assert.Equal(HookOutcome.Success, outcome.Result);
        Assert.Contains($"test: errors ext4 records itself need nothing; for others it would run: tune2fs -C 30 {counted.LoopDevice}", output);
        Assert.NotEqual("30", Header(counted, "Mount count"));
        (outcome, output) = Run(hook, Env(counted, "io"));
        Assert.Equal(HookOutcome.Success, outcome.Result);
        Assert.Contains("mount count set to its maximum (30): e2fsck -p checks it fully at the next boot", output);
        counted.Unmount();
        Assert.Equal("30", Header(counted, "Mount count"));
        var fsck = Tool.Run("e2fsck", "-p", counted.LoopDevice);
        Assert.Contains("check forced", fsck.StdOut + fsck.StdErr);

        // Without a maximum mount count it cannot mark it, and says what to do.
        var unmarkable = scratch.Ext4("unmarkable");
        (outcome, output) = Run(hook, Env(unmarkable, "io"));
        Assert.Equal(HookOutcome.Failure, outcome.Result);
        Assert.Contains($"cannot mark it for a check at boot (state: clean, no maximum mount count); run e2fsck -f {unmarkable.LoopDevice}", output);
    }

    [LoopFact]
    public void All_mail_sends_the_report_with_a_subject_free_of_paths_and_succeeds_without_a_mailer()
    {
        var hook = Install("all-mail");
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("mail");
        var mailbox = Path.Combine(_dir.Out, "mailbox");
        var sendmail = _dir.Write("fake-sendmail", $"#!/bin/sh\necho \"args: $*\" > '{mailbox}'\ncat >> '{mailbox}'\n", directory: _dir.Out);
        var report = Path.Combine(_dir.Out, "report.json");
        File.WriteAllText(report, "{\"type\":\"report\",\"object\":{\"path\":\"/srv/a\\nb\"}}\n");
        var env = Env(fs, "corruption");
        env["ERRORWATCH_REPORT_JSON"] = report;
        env["SENDMAIL"] = sendmail;

        var (outcome, output) = Run(hook, env);
        Assert.Equal(HookOutcome.Success, outcome.Result);
        Assert.Contains("mailed to root", output);
        var mail = File.ReadAllText(mailbox);
        Assert.StartsWith("args: -t -oi\nTo: root\nSubject: ErrorWatch on ", mail);
        Assert.Contains($": corruption on {fs.LoopDevice} (ext4), 1 error(s)\n", mail);
        Assert.Contains("{\"type\":\"report\",\"object\":{\"path\":\"/srv/a\\nb\"}}", mail);

        env["ERRORWATCH_EVENT"] = "test";
        Run(hook, env);
        Assert.Contains("Subject: [test] ErrorWatch on ", File.ReadAllText(mailbox));

        env["SENDMAIL"] = "/nonexistent/sendmail";
        (outcome, output) = Run(hook, env);
        Assert.Equal(HookOutcome.Success, outcome.Result);
        Assert.Contains("no mailer (/nonexistent/sendmail is not installed)", output);
    }

    [LoopFact]
    public void Corruption_wall_tells_everyone_and_says_when_it_is_a_test()
    {
        var hook = Install("corruption-wall");
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("wall");
        var said = Path.Combine(_dir.Out, "said");
        var env = Env(fs, "corruption");
        env["WALL"] = _dir.Write("fake-wall", $"#!/bin/sh\ncat > '{said}'\n", directory: _dir.Out);
        Assert.Equal(HookOutcome.Success, Run(hook, env).Outcome.Result);
        Assert.StartsWith($"ErrorWatch: filesystem corruption on {fs.LoopDevice} ({fs.MountPoint}).\next4 {fs.LoopDevice}", File.ReadAllText(said));
        env["ERRORWATCH_EVENT"] = "test";
        Run(hook, env);
        Assert.Contains("a TEST of ErrorWatch's wall message", File.ReadAllText(said));
    }

    [SystemdAnalyzeFact]
    public void The_sandbox_drop_in_for_the_examples_is_valid_and_keeps_the_exposure_score()
    {
        var dir = Directory.CreateTempSubdirectory("errorwatch-unit-");
        try
        {
            var unit = File.ReadAllText(Path.Combine(ServicePaths.RepositoryRoot, "deploy", "systemd", "errorwatch.service"))
                .Replace("ExecStart=/usr/lib/errorwatch/errorwatch ", "ExecStart=/bin/true ", StringComparison.Ordinal);
            File.WriteAllText(Path.Combine(dir.FullName, "errorwatch.service"), unit);
            var dropIns = Directory.CreateDirectory(Path.Combine(dir.FullName, "errorwatch.service.d")).FullName;
            File.Copy(Path.Combine(ServicePaths.RepositoryRoot, "deploy", "hooks", "errorwatch-hooks.conf"), Path.Combine(dropIns, "hooks.conf"));
            // The unit is looked up by name in SYSTEMD_UNIT_PATH, drop-in directory included.
            var env = new Dictionary<string, string> { ["SYSTEMD_UNIT_PATH"] = dir.FullName + ":", ["SYSTEMD_COLORS"] = "0" };
            var (code, output) = Analyze(env, "verify", "--man=no", "--no-pager", "errorwatch.service"); // the man page exists once the package is installed
            Assert.True(code == 0 && output.Length == 0, output);
            (_, output) = Analyze(env, "security", "--offline=true", "--no-pager", "errorwatch.service");
            Assert.Matches(@"Overall exposure level for errorwatch\.service: (2\.\d|3\.0) ", output);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    private static (int Code, string Output) Analyze(Dictionary<string, string> env, params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("systemd-analyze") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        foreach (var (k, v) in env)
            psi.Environment[k] = v;
        using var process = System.Diagnostics.Process.Start(psi)!;
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(60)));
        return (process.ExitCode, output + error.Result);
    }

    [Fact]
    public void The_xfs_scrub_drop_in_is_a_valid_rule_for_xfs_corruption()
    {
        var etc = Directory.CreateDirectory(Path.Combine(_dir.Path, "etc")).FullName;
        var conf = Path.Combine(etc, "errorwatch.conf");
        File.WriteAllText(conf, "");
        Directory.CreateDirectory(conf + ".d");
        File.Copy(Path.Combine(ServicePaths.RepositoryRoot, "deploy", "hooks", "xfs-scrub.conf"), Path.Combine(conf + ".d", "50-xfs-scrub.conf"));
        var settings = ConfigurationLoader.Load(conf, null, null, out var problems);
        Assert.Empty(problems);
        var rule = Assert.Single(settings.Hooks.Rules);
        Assert.Equal(("xfs-scrub", "xfs_scrub@%m.service"), (rule.Name, rule.Unit));
        Assert.Equal(["xfs"], rule.Types);
        Assert.Equal(["corruption"], rule.Events);
        Assert.Equal("interval=1d", rule.Repeat!.ToString());
    }
}
