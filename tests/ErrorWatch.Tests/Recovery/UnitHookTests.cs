using System.Collections.Concurrent;
using System.Diagnostics;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Filesystems;
using ErrorWatch.Recovery;
using ErrorWatch.Tests.DBus;
using ErrorWatch.Tests.Journal;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.Recovery;

/// <summary>Unit= specifiers, escaped as systemd-escape --path escapes them.</summary>
public sealed class HookSpecifierTests
{
    [Theory]
    [InlineData("/srv/data")]
    [InlineData("/")]
    [InlineData("/srv//my data/")]
    [InlineData("/media/a-b\\c/.hidden/ü")]
    [InlineData("/mnt/x:y_z.q")]
    public void Mount_points_are_escaped_as_systemd_escape_path_does(string path)
    {
        var expected = Tool.Check("systemd-escape", "--path", path).Trim();
        Assert.Equal(expected, HookSpecifiers.EscapePath(System.Text.Encoding.UTF8.GetBytes(path)));
    }

    [Fact]
    public void Invalid_bytes_and_newlines_are_escaped_byte_by_byte_and_dot_dot_is_refused()
    {
        Assert.Equal("mnt-a\\x0ab\\xff", HookSpecifiers.EscapePath([.. "/mnt/a\nb"u8, 0xff]));
        Assert.Null(HookSpecifiers.EscapePath("/mnt/../etc"u8));
        Assert.Null(HookSpecifiers.EscapePath("relative"u8));
    }

    [Theory]
    [InlineData("xfs_scrub@%m.service", null)]
    [InlineData("e2scrub@%m.service", null)]
    [InlineData("notify@%u-%t.service", null)]
    [InlineData("backup.target", null)]
    [InlineData("xfs_scrub@%m", "is not a unit name: it must end in .service")]
    [InlineData("xfs scrub@%m.service", "may hold only letters")]
    [InlineData("scrub-%m.service", "specifiers belong in a template's instance")]
    [InlineData("xfs_scrub@%x.service", "unknown specifier '%x'")]
    [InlineData("xfs_scrub@.service", "a template needs one @ and an instance")]
    public void Unit_names_are_checked_when_the_configuration_is_read(string unit, string? problem)
    {
        var found = HookSpecifiers.InvalidUnit(unit);
        if (problem is null)
            Assert.Null(found);
        else
            Assert.Contains(problem, found);
    }

    [Fact]
    public void Exec_arguments_get_the_exact_bytes_in_one_argument_each()
    {
        var facts = HookFacts.From(JournalTestReports.Full("r1") with
        {
            Filesystem = JournalTestReports.Filesystem() with { Mountpoints = [new FsPath([.. "/mnt/a b\n"u8, 0xff])] },
        });
        Assert.Equal([.. "--where=/mnt/a b\n"u8, 0xff, .. " 100%"u8], HookSpecifiers.ExpandArgument("--where=%m 100%%", facts));
        Assert.Equal("/dev/sdb1 ext4 r1 corruption"u8.ToArray(), HookSpecifiers.ExpandArgument("%d %t %i %e", facts));
        Assert.Equal("xfs_scrub@mnt-a\\x20b\\x0a\\xff.service", HookSpecifiers.ExpandUnit("xfs_scrub@%m.service", facts, out _));
    }
}

/// <summary>
/// Unit= hooks against a stand-in for systemd (tests/ErrorWatch.Tests/Recovery/systemd-stand-in.py on a
/// private system-like bus with systemd's own bus policy): StartUnit with the escaped instance and mode
/// "replace", the JobRemoved result recorded as the outcome. A stand-in: the real systemd is tested in
/// the nspawn install test.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class UnitHookTests : IDisposable
{
    private const string SystemdPolicy = "/usr/share/dbus-1/system.d/org.freedesktop.systemd1.conf";

    private readonly HookDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [BusFact]
    public void Unit_hooks_start_the_unit_through_the_bus_and_record_the_job_result()
    {
        using var bus = new BusDaemon(extraPolicies: [SystemdPolicy]);
        using var systemd = new SystemdStandIn(bus);
        var settings = _dir.Settings(
            HookReports.Rule("xfs-scrub") with { Exec = [], Unit = "xfs_scrub@%m.service", Types = ["xfs"] },
            HookReports.Rule("failing") with { Exec = [], Unit = "fail@%d.service" },
            HookReports.Rule("slow") with { Exec = [], Unit = "slow@%u.service", Timeout = TimeSpan.FromSeconds(2) },
            HookReports.Rule("ext4-only") with { Exec = [], Unit = "e2scrub@%m.service", Types = ["ext4"] });
        var journal = new RecordingJournal();
        var outcomes = new ConcurrentDictionary<string, HookOutcome>();
        using var sink = new HookSink(settings, _dir.State, journal, HookReports.Quiet, unitBus: bus.Address);
        sink.Finished += (hook, _, outcome) => outcomes[hook!.Name] = outcome;

        var report = JournalTestReports.Full("r1") with
        {
            Filesystem = JournalTestReports.Filesystem(null, "/srv/my data") with { Type = "xfs", Device = "/dev/mapper/vg-data" },
        };
        var clock = Stopwatch.StartNew();
        sink.Publish(report);
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10));

        var instance = Tool.Check("systemd-escape", "--path", "/srv/my data").Trim();
        Assert.Equal("srv-my\\x20data", instance);
        Assert.Equal($"xfs_scrub@{instance}.service", outcomes["xfs-scrub"].Unit);
        Assert.Equal((HookOutcome.Success, "done"), (outcomes["xfs-scrub"].Result, outcomes["xfs-scrub"].JobResult));
        Assert.StartsWith("/org/freedesktop/systemd1/job/", outcomes["xfs-scrub"].Job);
        Assert.Equal((HookOutcome.Failure, "failed"), (outcomes["failing"].Result, outcomes["failing"].JobResult));
        Assert.Equal("fail@dev-mapper-vg\\x2ddata.service", outcomes["failing"].Unit);
        Assert.Equal(HookOutcome.TimedOut, outcomes["slow"].Result);
        Assert.Contains("still running at the 2s timeout; systemd keeps it", outcomes["slow"].Detail);
        Assert.False(outcomes.ContainsKey("ext4-only"));

        Assert.Equal(
            [$"StartUnit fail@dev-mapper-vg\\x2ddata.service replace", $"StartUnit slow@{Tool.Check("systemd-escape", JournalTestReports.Uuid.ToString()).Trim()}.service replace", $"StartUnit xfs_scrub@{instance}.service replace"],
            systemd.Calls.Order(StringComparer.Ordinal));
        var entry = journal.WithMessageId(HookJournal.OutcomeMessageId).Single(e => e.GetText("ERRORWATCH_HOOK") == "xfs-scrub");
        Assert.Equal("unit", entry.GetText("ERRORWATCH_HOOK_KIND"));
        Assert.Equal("done", entry.GetText("ERRORWATCH_JOB_RESULT"));
        Assert.Equal($"xfs_scrub@{instance}.service", entry.GetText("ERRORWATCH_UNIT"));
    }

    [Fact]
    public void Without_a_bus_a_unit_hook_fails_with_the_reason_instead_of_hanging()
    {
        var settings = _dir.Settings(HookReports.Rule("scrub") with { Exec = [], Unit = "xfs_scrub@%m.service", Timeout = TimeSpan.FromSeconds(3) });
        var outcomes = new ConcurrentBag<HookOutcome>();
        using var sink = new HookSink(settings, _dir.State, new RecordingJournal(), HookReports.Quiet, unitBus: $"unix:path={_dir.Path}/no-bus");
        sink.Finished += (_, _, o) => outcomes.Add(o);
        sink.Publish(JournalTestReports.Full("r1"));
        Assert.True(sink.WaitIdle(TimeSpan.FromSeconds(20)));
        var outcome = Assert.Single(outcomes);
        Assert.Equal(HookOutcome.Failure, outcome.Result);
        Assert.Contains("the system bus is not reachable", outcome.Detail);
    }
}

/// <summary>systemd-stand-in.py on a test bus, owning org.freedesktop.systemd1; stopped by its PID on dispose.</summary>
internal sealed class SystemdStandIn : IDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _calls = new();
    private readonly Task? _reader;

    public SystemdStandIn(BusDaemon bus)
    {
        var script = Path.Combine(ServicePaths.RepositoryRoot, "tests", "ErrorWatch.Tests", "Recovery", "systemd-stand-in.py");
        _process = BusCaller.Root.Start(null, BusCaller.Python, script, bus.Address);
        try
        {
            var line = _process.StandardOutput.ReadLineAsync();
            if (!line.Wait(TimeSpan.FromSeconds(15)) || line.Result != "owned")
                throw new InvalidOperationException($"the systemd stand-in did not take its name: {(line.IsCompleted ? line.Result : "no answer")}");
            _reader = Task.Run(() =>
            {
                while (_process.StandardOutput.ReadLine() is { } l)
                    _calls.Enqueue(l);
            });
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public IReadOnlyList<string> Calls => [.. _calls];

    public void Dispose()
    {
        if (!_process.HasExited)
            _process.Kill();
        _process.WaitForExit(5000);
        _reader?.Wait(5000);
        _process.Dispose();
    }
}
