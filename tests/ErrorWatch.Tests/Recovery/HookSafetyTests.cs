using ErrorWatch.Recovery;
using ErrorWatch.Tests.Journal;
using Serilog.Events;

namespace ErrorWatch.Tests.Recovery;

/// <summary>
/// Hooks only root can change: a group- or world-writable hook, one not owned by root, one in such a
/// directory, or behind a link someone else owns is refused with a log line naming the file and the
/// fix, and never runs, not even when it turns unsafe after it was read.
/// </summary>
public sealed class HookSafetyTests : IDisposable
{
    private const uint Nobody = 65534;

    private readonly HookDirectory _dir = new();
    private readonly LogCapture _log = new();

    public void Dispose() => _dir.Dispose();

    private static void Chown(string path, uint uid)
    {
        var result = Cli.Demo.Tool.Run("chown", $"{uid}:{uid}", path);
        Assert.True(result.ExitCode == 0, result.StdErr);
    }

    [RootFact] // only root can give a file away
    public void Unsafe_hooks_are_refused_with_the_file_and_the_fix_and_never_run()
    {
        _dir.Recorder("all-good");
        _dir.Recorder("all-group-writable");
        HookDirectory.Chmod(Path.Combine(_dir.Hooks, "all-group-writable"), "775");
        _dir.Recorder("all-world-writable");
        HookDirectory.Chmod(Path.Combine(_dir.Hooks, "all-world-writable"), "757");
        Chown(_dir.Recorder("all-nobody"), Nobody);
        _dir.Recorder("all-not-executable");
        HookDirectory.Chmod(Path.Combine(_dir.Hooks, "all-not-executable"), "644");
        // A safe file behind a link nobody owns, and a safe file in a directory nobody owns.
        var elsewhere = Directory.CreateDirectory(Path.Combine(_dir.Path, "elsewhere")).FullName;
        var target = _dir.Recorder("target", directory: elsewhere);
        File.CreateSymbolicLink(Path.Combine(_dir.Hooks, "all-link"), target);
        Assert.Equal(0, Cli.Demo.Tool.Run("chown", "-h", $"{Nobody}:{Nobody}", Path.Combine(_dir.Hooks, "all-link")).ExitCode);
        // A link of root's to a target anyone in the group can change: the refusal names the target.
        var writableTarget = _dir.Recorder("writable-target", directory: elsewhere);
        HookDirectory.Chmod(writableTarget, "775");
        var linkToWritable = Path.Combine(_dir.Hooks, "all-link-to-writable");
        File.CreateSymbolicLink(linkToWritable, writableTarget);
        var nobodys = Directory.CreateDirectory(Path.Combine(_dir.Path, "nobodys")).FullName;
        Chown(nobodys, Nobody);
        var inNobodys = _dir.Recorder("in-nobodys", directory: nobodys);
        // A group-writable directory (no sticky bit) above an otherwise safe hook named by a rule.
        var shared = Directory.CreateDirectory(Path.Combine(_dir.Path, "shared")).FullName;
        HookDirectory.Chmod(shared, "775");
        var inShared = _dir.Recorder("in-shared", directory: shared);

        var settings = _dir.Settings(
            HookReports.Rule("rule-in-nobodys", exec: inNobodys),
            HookReports.Rule("rule-in-shared", exec: inShared));
        using var sink = new HookSink(settings, _dir.State, new RecordingJournal(), _log.Logger);

        var refused = sink.Catalog.Refused.ToDictionary(r => r.Name, r => r.Reason);
        Assert.Equal(["all-good"], sink.Catalog.Hooks.Select(h => h.Name));
        Assert.Equal(["all-group-writable", "all-link", "all-link-to-writable", "all-nobody", "all-not-executable", "all-world-writable", "rule-in-nobodys", "rule-in-shared"],
            refused.Keys.Order(StringComparer.Ordinal));
        var groupWritable = Path.Combine(_dir.Hooks, "all-group-writable");
        Assert.Equal($"{groupWritable}: group-writable (mode 0775), so others could change what ErrorWatch runs as root. Fix: chmod go-w {groupWritable}", refused["all-group-writable"]);
        Assert.Contains("world-writable (mode 0757)", refused["all-world-writable"]);
        Assert.Contains($"owned by uid {Nobody}, not root", refused["all-nobody"]);
        Assert.Contains($"Fix: chown root:root {Path.Combine(_dir.Hooks, "all-nobody")}", refused["all-nobody"]);
        Assert.Contains("not executable (mode 0644). Fix: chmod 0755", refused["all-not-executable"]);
        Assert.Contains($"the symbolic link {Path.Combine(_dir.Hooks, "all-link")} is owned by uid {Nobody}", refused["all-link"]);
        Assert.Equal($"{writableTarget} (the target of {linkToWritable}): group-writable (mode 0775), so others could change what ErrorWatch runs as root. Fix: chmod go-w {writableTarget}",
            refused["all-link-to-writable"]);
        Assert.Contains($"the directory {nobodys} is owned by uid {Nobody}, not root", refused["rule-in-nobodys"]);
        Assert.Contains($"Fix: chown root:root {nobodys}", refused["rule-in-nobodys"]);
        Assert.Contains($"the directory {shared} is group-writable (mode 0775)", refused["rule-in-shared"]);
        Assert.Contains($"Fix: chmod go-w {shared}", refused["rule-in-shared"]);

        // One clear error line per refused hook, naming the file and the fix.
        var errors = _log.Messages(LogEventLevel.Error).ToList();
        Assert.Equal(8, errors.Count);
        Assert.Contains(errors, m => m.Contains(groupWritable) && m.Contains("chmod go-w") && m.Contains("will not run"));

        sink.Publish(HookReports.Corruption("r1", DateTimeOffset.UtcNow));
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        Assert.Single(_dir.Runs("all-good"));
        foreach (var name in refused.Keys.Append("target").Append("writable-target").Append("in-nobodys").Append("in-shared"))
            Assert.Empty(_dir.Runs(name));
    }

    [RootFact]
    public void A_hook_that_becomes_unsafe_after_it_was_read_does_not_run()
    {
        _dir.Recorder("all-later-writable");
        var settings = _dir.Settings();
        using var sink = new HookSink(settings, _dir.State, new RecordingJournal(), _log.Logger);
        var outcomes = new List<HookOutcome>();
        sink.Finished += (_, _, o) => { lock (outcomes) outcomes.Add(o); };
        Assert.Single(sink.Catalog.Hooks);

        // chmod does not change the directory, so the catalog still has it: the check right before the run refuses it.
        HookDirectory.Chmod(Path.Combine(_dir.Hooks, "all-later-writable"), "777");
        sink.Publish(HookReports.Corruption("r1", DateTimeOffset.UtcNow));
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        Assert.Empty(_dir.Runs("all-later-writable"));
        var outcome = Assert.Single(outcomes);
        Assert.Equal(HookOutcome.Skipped, outcome.Result);
        Assert.Contains("group- and world-writable (mode 0777)", outcome.Detail);
        Assert.Contains(_log.Messages(LogEventLevel.Error), m => m.Contains("all-later-writable") && m.Contains("Fix: chmod go-w"));
    }

    [Fact]
    public void The_sticky_world_writable_tmp_may_hold_hooks_directories_but_a_plain_world_writable_one_may_not()
    {
        // Our own directory lies in /tmp (root, 1777): only root can rename or remove root's entries there.
        Assert.True(OperatingSystem.IsLinux() && (File.GetUnixFileMode("/tmp") & UnixFileMode.StickyBit) != 0);
        var hook = _dir.Recorder("all-in-tmp");
        Assert.Null(HookPermissions.Refusal(hook));

        var open = Directory.CreateDirectory(Path.Combine(_dir.Path, "open")).FullName;
        HookDirectory.Chmod(open, "777");
        Assert.Contains("is group- and world-writable (mode 0777)", HookPermissions.Refusal(_dir.Recorder("x", directory: open)));
        HookDirectory.Chmod(open, "1777");
        Assert.Null(HookPermissions.Refusal(Path.Combine(open, "x")));

        Assert.Equal("relative: not an absolute path", HookPermissions.Refusal("relative"));
        Assert.Contains("cannot be examined (ENOENT)", HookPermissions.Refusal(Path.Combine(_dir.Hooks, "absent")));
    }

    [Fact]
    public void Backup_copies_hidden_files_directories_and_names_without_a_prefix_are_not_hooks()
    {
        _dir.Recorder("all-real");
        _dir.Recorder("all-real~");
        _dir.Recorder("all-real.dpkg-old");
        _dir.Recorder(".all-hidden");
        _dir.Recorder("notify");
        Directory.CreateDirectory(Path.Combine(_dir.Hooks, "all-dir"));
        var catalog = new HookCatalog(_dir.Settings(), HookReports.Quiet);
        Assert.Equal(["all-real"], catalog.Hooks.Select(h => h.Name));
        Assert.Empty(catalog.Refused);
        Assert.Equal(["all-dir", "all-real.dpkg-old", "all-real~", "notify"], catalog.Ignored.Select(i => Path.GetFileName(i.Path)).Order(StringComparer.Ordinal));
        Assert.Contains(catalog.Ignored, i => i.Reason.Contains("none of the prefixes all-, ext4-, xfs-, corruption-, io-, shutdown-, readonly-, history-"));
    }
}
