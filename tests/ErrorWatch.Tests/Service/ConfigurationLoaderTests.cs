using System.Text;
using ErrorWatch.Configuration;
using ErrorWatch.Filesystems;
using Serilog.Events;

namespace ErrorWatch.Tests.Service;

[Collection(TimingCollection.Name)]
public sealed class ConfigurationLoaderTests : IDisposable
{
    private readonly ConfigDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private ErrorWatchSettings Load(out IReadOnlyList<ConfigurationProblem> problems, string? path = null, string? stateDirectory = null) =>
        ConfigurationLoader.Load(path, _dir.Path, stateDirectory, out problems);

    private ErrorWatchSettings LoadClean(string? path = null)
    {
        var settings = Load(out var problems, path);
        Assert.True(problems.Count == 0, string.Join("\n", problems));
        return settings;
    }

    [Fact]
    public void A_missing_default_file_gives_the_defaults_and_no_problem()
    {
        var settings = Load(out var problems, stateDirectory: "/run/state-a:/run/state-b");
        Assert.Empty(problems);
        Assert.Empty(settings.Files);
        Assert.Empty(settings.Watch.Filesystems);
        Assert.Empty(settings.Watch.Exclude);
        Assert.Equal(["ext4", "ext3", "ext2", "xfs"], settings.Watch.Types);
        Assert.True(settings.Watch.ResolvePaths);
        Assert.Equal(MountTrackingMode.Auto, settings.Watch.MountTracking);
        Assert.Null(settings.Watch.MountSource);
        Assert.Equal(TimeSpan.FromSeconds(30), settings.Watch.RescanInterval);
        Assert.Equal(4, settings.Watch.PriorityBoost);
        Assert.Equal(TimeSpan.FromSeconds(30), settings.Health.CheckInterval);
        Assert.True(settings.Health.KernelLog);
        Assert.True(settings.Health.XfsHealthMonitor);
        Assert.Equal(100_000, settings.Health.XfsScanLimit);
        Assert.Equal("/run/state-a", settings.Store.Directory); // $STATE_DIRECTORY's first entry
        Assert.Equal(100_000, settings.Store.MaxReports);
        Assert.Equal(TimeSpan.FromDays(90), settings.Store.MaxAge);
        Assert.Equal(JournalMode.Auto, settings.Journal.Enabled);
        Assert.Equal(20, settings.Journal.MaxEntriesPerInterval);
        Assert.Equal(TimeSpan.FromSeconds(60), settings.Journal.Interval);
        Assert.Equal(LogEventLevel.Information, settings.Log.Level);
        Assert.Equal("/etc/errorwatch/hooks.d", settings.Hooks.Directory);
        Assert.Equal(4, settings.Hooks.MaxConcurrent);
        Assert.Equal(TimeSpan.FromMinutes(5), settings.Hooks.Timeout);
        Assert.Equal(TimeSpan.FromSeconds(10), settings.Hooks.KillGrace);
        Assert.Equal("interval=1h", settings.Hooks.Repeat.ToString());
        Assert.Empty(settings.Hooks.Rules);

        Assert.Equal("/var/lib/errorwatch", ConfigurationLoader.Load(null, _dir.Path, null, out _).Store.Directory);
    }

    [Fact]
    public void The_default_file_is_in_the_first_configuration_directory_systemd_names()
    {
        Assert.Equal("/etc/errorwatch/errorwatch.conf", ConfigurationLoader.DefaultPath(null));
        Assert.Equal("/etc/errorwatch/errorwatch.conf", ConfigurationLoader.DefaultPath(""));
        Assert.Equal("/etc/errorwatch/errorwatch.conf", ConfigurationLoader.DefaultPath("/etc/errorwatch"));
        Assert.Equal("/a/errorwatch.conf", ConfigurationLoader.DefaultPath("/a:/b"));

        _dir.Write("errorwatch.conf", "[Log]\nLevel=debug\n");
        Assert.Equal(LogEventLevel.Debug, LoadClean().Log.Level);
    }

    [Theory]
    [InlineData("info", LogEventLevel.Information)]
    [InlineData("information", LogEventLevel.Information)]
    [InlineData("warning", LogEventLevel.Warning)]
    public void Log_levels_take_the_words_admins_use_info_included(string word, LogEventLevel level)
    {
        _dir.Write("errorwatch.conf", $"[Log]\nLevel={word}\n");
        Assert.Equal(level, LoadClean().Log.Level);
    }

    [Fact]
    public void A_missing_file_given_explicitly_is_a_problem()
    {
        var missing = System.IO.Path.Combine(_dir.Path, "nope.conf");
        var settings = Load(out var problems, missing);
        var problem = Assert.Single(problems);
        Assert.Equal(missing, problem.File);
        Assert.Equal(0, problem.Line);
        Assert.Equal($"{missing}: no such file", problem.ToString());
        Assert.Empty(settings.Files);
    }

    [Fact]
    public void A_directory_given_as_the_file_is_a_problem_not_an_exception()
    {
        Load(out var problems, _dir.Path);
        Assert.Contains("is a directory", Assert.Single(problems).Message);
    }

    [Fact]
    public void Every_key_is_read()
    {
        _dir.Write("errorwatch.conf", """
            # every key, none at its default
            [Watch]
            Filesystems=/srv /dev/sdb1 8:17
            Filesystems=0b1c6a3e-8a3d-4b52-9f34-3c6f0f3f2b7a data-label
            Exclude=/srv/scratch
            Types=xfs
            ResolvePaths=no
            MountTracking=mountinfo
            MountSource=statmount
            RescanInterval=5min
            PriorityBoost=0

            ; health
            [Health]
            CheckInterval=500ms
            KernelLog=off
            XfsHealthMonitor=false
            XfsScanLimit=0

            [Store]
            Directory=/srv/errorwatch
            MaxReports=5000
            MaxAge=1w

            [Journal]
            Enabled=no
            MaxEntriesPerInterval=3
            Interval=10s

            [Log]
            Level=warning
            """);
        var s = LoadClean();
        Assert.Equal(["/srv", "/dev/sdb1", "8:17", "0b1c6a3e-8a3d-4b52-9f34-3c6f0f3f2b7a", "data-label"], s.Watch.Filesystems);
        Assert.Equal(["/srv/scratch"], s.Watch.Exclude);
        Assert.Equal(["xfs"], s.Watch.Types);
        Assert.False(s.Watch.ResolvePaths);
        Assert.Equal(MountTrackingMode.Mountinfo, s.Watch.MountTracking);
        Assert.Equal(MountSource.Statmount, s.Watch.MountSource);
        Assert.Equal(TimeSpan.FromMinutes(5), s.Watch.RescanInterval);
        Assert.Equal(0, s.Watch.PriorityBoost);
        Assert.Equal(TimeSpan.FromMilliseconds(500), s.Health.CheckInterval);
        Assert.False(s.Health.KernelLog);
        Assert.False(s.Health.XfsHealthMonitor);
        Assert.Equal(0, s.Health.XfsScanLimit);
        Assert.Equal("/srv/errorwatch", s.Store.Directory);
        Assert.Equal(5000, s.Store.MaxReports);
        Assert.Equal(TimeSpan.FromDays(7), s.Store.MaxAge);
        Assert.Equal(JournalMode.No, s.Journal.Enabled);
        Assert.Equal(3, s.Journal.MaxEntriesPerInterval);
        Assert.Equal(TimeSpan.FromSeconds(10), s.Journal.Interval);
        Assert.Equal(LogEventLevel.Warning, s.Log.Level);
        Assert.Equal([_dir.File("errorwatch.conf")], s.Files);
    }

    [Theory]
    [InlineData("mountinfo", MountSource.Mountinfo)]
    [InlineData("auto", null)]
    public void Mount_source_choices(string value, MountSource? expected)
    {
        _dir.Write("errorwatch.conf", $"[Watch]\nMountSource={value}\n");
        Assert.Equal(expected, LoadClean().Watch.MountSource);
    }

    [Theory]
    [InlineData("auto", JournalMode.Auto)]
    [InlineData("yes", JournalMode.Yes)]
    [InlineData("on", JournalMode.Yes)]
    [InlineData("0", JournalMode.No)]
    public void Journal_enabled_takes_auto_or_a_boolean(string value, JournalMode expected)
    {
        _dir.Write("errorwatch.conf", $"[Journal]\nEnabled={value}\n");
        Assert.Equal(expected, LoadClean().Journal.Enabled);
    }

    [Theory]
    [InlineData("debug", LogEventLevel.Debug)]
    [InlineData("information", LogEventLevel.Information)]
    [InlineData("error", LogEventLevel.Error)]
    public void Log_levels(string value, LogEventLevel expected)
    {
        _dir.Write("errorwatch.conf", $"[Log]\nLevel={value}\n");
        Assert.Equal(expected, LoadClean().Log.Level);
    }

    [Fact]
    public void Drop_ins_are_read_in_lexical_order_after_the_main_file_and_later_ones_win()
    {
        _dir.Write("errorwatch.conf", "[Health]\nCheckInterval=10s\n[Log]\nLevel=debug\n");
        _dir.Write("errorwatch.conf.d/50-site.conf", "[Health]\nCheckInterval=20s\n");
        _dir.Write("errorwatch.conf.d/10-vendor.conf", "[Health]\nCheckInterval=15s\nKernelLog=no\n");
        _dir.Write("errorwatch.conf.d/9-late.conf", "[Health]\nCheckInterval=40s\n"); // '9' sorts after '5': byte order, not numeric
        _dir.Write("errorwatch.conf.d/README", "not a drop-in");
        _dir.Write("errorwatch.conf.d/60.conf.bak", "[Log]\nLevel=error\n");
        _dir.Write("errorwatch.conf.d/70.CONF", "[Log]\nLevel=error\n");
        _dir.Write("errorwatch.conf.d/.75-hidden.conf", "[Log]\nLevel=error\n");
        Directory.CreateDirectory(_dir.File("errorwatch.conf.d/80-dir.conf"));

        var s = LoadClean();
        Assert.Equal(TimeSpan.FromSeconds(40), s.Health.CheckInterval);
        Assert.False(s.Health.KernelLog);
        Assert.Equal(LogEventLevel.Debug, s.Log.Level);
        Assert.Equal(
            ["errorwatch.conf", "errorwatch.conf.d/10-vendor.conf", "errorwatch.conf.d/50-site.conf", "errorwatch.conf.d/9-late.conf"],
            s.Files.Select(f => System.IO.Path.GetRelativePath(_dir.Path, f)));
    }

    [Fact]
    public void Drop_ins_apply_without_a_main_file()
    {
        _dir.Write("errorwatch.conf.d/10.conf", "[Watch]\nExclude=/boot\n");
        var s = LoadClean();
        Assert.Equal(["/boot"], s.Watch.Exclude);
        Assert.Single(s.Files);
    }

    [Fact]
    public void An_explicit_file_brings_its_own_drop_ins()
    {
        var file = _dir.Write("elsewhere/test.conf", "[Watch]\nFilesystems=/a\n");
        _dir.Write("elsewhere/test.conf.d/1.conf", "[Watch]\nFilesystems=/b\n");
        _dir.Write("errorwatch.conf", "[Watch]\nFilesystems=/not-read\n");
        Assert.Equal(["/a", "/b"], LoadClean(file).Watch.Filesystems);
    }

    [Fact]
    public void List_keys_append_and_an_empty_assignment_resets_them()
    {
        _dir.Write("errorwatch.conf", """
            [Watch]
            Filesystems=/a /b
            Filesystems=/c
            Exclude=/x
            Types=xfs
            """);
        _dir.Write("errorwatch.conf.d/10.conf", """
            [Watch]
            Filesystems=
            Filesystems=/d /d /e
            Exclude=/y
            Types=ext4
            """);
        _dir.Write("errorwatch.conf.d/20.conf", "[Watch]\nExclude=\n");
        var s = LoadClean();
        Assert.Equal(["/d", "/e"], s.Watch.Filesystems);
        Assert.Empty(s.Watch.Exclude);
        Assert.Equal(["xfs", "ext4"], s.Watch.Types);
    }

    [Fact]
    public void Types_replaces_the_default_and_resets_to_it()
    {
        _dir.Write("errorwatch.conf", "[Watch]\nTypes=xfs btrfs\n");
        Assert.Equal(["xfs", "btrfs"], LoadClean().Watch.Types);
        _dir.Write("errorwatch.conf.d/10.conf", "[Watch]\nTypes=\n");
        Assert.Equal(["ext4", "ext3", "ext2", "xfs"], LoadClean().Watch.Types);
    }

    [Fact]
    public void A_repeated_scalar_key_takes_its_last_value_and_an_empty_one_restores_the_default()
    {
        _dir.Write("errorwatch.conf", """
            [Health]
            CheckInterval=10s
            CheckInterval=20s
            XfsScanLimit=5
            [Health]
            XfsScanLimit=
            [Store]
            Directory=/srv/ew
            Directory=
            """);
        var s = Load(out var problems, stateDirectory: "/var/lib/from-systemd");
        Assert.Empty(problems);
        Assert.Equal(TimeSpan.FromSeconds(20), s.Health.CheckInterval);
        Assert.Equal(100_000, s.Health.XfsScanLimit);
        Assert.Equal("/var/lib/from-systemd", s.Store.Directory);
    }

    [Fact]
    public void Whitespace_comments_line_endings_and_a_byte_order_mark_are_what_systemd_accepts()
    {
        _dir.WriteBytes("errorwatch.conf", [0xEF, 0xBB, 0xBF, .. "  [Watch]  \r\n# comment\r\n   ; another\r\n\r\n  Filesystems  =  /srv   /data  \r\nTypes=ext4\t\r\n"u8.ToArray()]);
        var s = LoadClean();
        Assert.Equal(["/srv", "/data"], s.Watch.Filesystems);
        Assert.Equal(["ext4"], s.Watch.Types);
    }

    [Fact]
    public void A_space_in_a_list_item_is_written_as_in_mountinfo_and_written_back_the_same_way()
    {
        _dir.Write("errorwatch.conf", "[Watch]\nFilesystems=/media/My\\040Disk /a\\134b\n");
        var s = LoadClean();
        Assert.Equal(["/media/My Disk", "/a\\b"], s.Watch.Filesystems);
        Assert.Contains("Filesystems=/media/My\\040Disk /a\\134b\n", s.ToConfigurationText());
    }

    [Fact]
    public void Unknown_keys_name_file_line_section_and_key_and_hint_at_case()
    {
        var file = _dir.Write("errorwatch.conf", "[Watch]\nFilesystems=/srv\nfilesystems=/data\nColour=blue\n");
        var s = Load(out var problems);
        Assert.Equal(2, problems.Count);
        Assert.Equal(new ConfigurationProblem(file, 3, "filesystems", problems[0].Message) { Section = "Watch" }, problems[0]);
        Assert.Contains("did you mean Filesystems=?", problems[0].Message);
        Assert.StartsWith($"{file}:3: [Watch] filesystems: unknown key", problems[0].ToString());
        Assert.Equal(4, problems[1].Line);
        Assert.Equal("Colour", problems[1].Key);
        Assert.Equal(["/srv"], s.Watch.Filesystems);
    }

    [Fact]
    public void An_unknown_section_is_one_problem_at_its_header_whatever_is_under_it()
    {
        var file = _dir.Write("errorwatch.conf.d/10.conf", "[Watch]\nTypes=xfs\n\n[Prometheus]\nListen=:9090\nPath=/metrics\n[watch]\n");
        Load(out var problems);
        Assert.Equal(2, problems.Count);
        Assert.Equal($"{file}:4: [Prometheus] unknown section (known: [Watch], [Health], [Store], [Journal], [DBus], [Metrics], [OpenTelemetry], [Hooks], [Hook \"NAME\"], [Log])", problems[0].ToString());
        Assert.Equal(7, problems[1].Line); // sections are case-sensitive too
    }

    [Fact]
    public void A_trailing_backslash_continues_a_line_as_in_systemd_comments_inside_left_out_to_the_end_of_the_file()
    {
        var file = _dir.Write("errorwatch.conf",
            "[Hooks]\n" +
            "MaxConcurrent=\\\n" +
            "   4\n" +
            "Capabilities=CAP_KILL \\\n" +
            "# a comment inside the continuation is left out\n" +
            "  CAP_NET_ADMIN\n" +
            "Timeout=\\\n" +
            "  forever\n" +
            "[Health]\n" +
            "XfsScanLimit=5\\");
        var settings = Load(out var problems);
        Assert.Equal(4, settings.Hooks.MaxConcurrent);
        Assert.Equal(["CAP_KILL", "CAP_NET_ADMIN"], settings.Hooks.Capabilities);
        Assert.Equal(5, settings.Health.XfsScanLimit);
        // A problem in a continued line names the line it starts on.
        var problem = Assert.Single(problems);
        Assert.Equal((file, 7, "Timeout"), (problem.File, problem.Line, problem.Key));
        Assert.Contains("'forever' is not a time span", problem.Message);
    }

    [Theory]
    [InlineData("Watch", "RescanInterval", "-30s", "negative time span")]
    [InlineData("DBus", "Bus", "sessionbus", "'sessionbus' is not system, none or a D-Bus address")]
    [InlineData("DBus", "SignalPaths", "sometimes", "'sometimes' is not a boolean")]
    [InlineData("Metrics", "Listen", "9464", "'9464' is not host:port, [address]:port or unix:/path")]
    [InlineData("Metrics", "Listen", "127.0.0.1:0", "'127.0.0.1:0' is not host:port")]
    [InlineData("Metrics", "Listen", "::1:9464", "write IPv6 addresses in brackets")]
    [InlineData("Metrics", "Listen", "unix:metrics.sock", "a unix socket needs an absolute path")]
    [InlineData("OpenTelemetry", "Endpoint", "collector:4317", "is not an http:// or https:// URL")]
    [InlineData("OpenTelemetry", "Protocol", "udp", "'udp' is not one of grpc, http/protobuf")]
    [InlineData("OpenTelemetry", "Headers", "x-tenant=ops,Authorization Bearer s3cret", "header 2 is not name=value")]
    [InlineData("Watch", "RescanInterval", "50ms", "50ms is outside 100ms..1d")]
    [InlineData("Watch", "PriorityBoost", "20", "outside 0..19")]
    [InlineData("Watch", "PriorityBoost", "-4", "'-4' is not a whole number")]
    [InlineData("Watch", "RescanInterval", "2d", "2d is outside 100ms..1d")]
    [InlineData("Watch", "ResolvePaths", "maybe", "'maybe' is not a boolean")]
    [InlineData("Watch", "MountTracking", "fanotify", "'fanotify' is not one of auto, mountinfo")]
    [InlineData("Watch", "MountTracking", "Auto", "'Auto' is not one of auto, mountinfo")]
    [InlineData("Watch", "MountSource", "proc", "'proc' is not one of auto, statmount, mountinfo")]
    [InlineData("Watch", "Types", "ext4 ../xfs", "'../xfs' is not a filesystem type name")]
    [InlineData("Health", "CheckInterval", "0", "0 is outside 100ms..1d")]
    [InlineData("Health", "CheckInterval", "0.05", "50ms is outside 100ms..1d")]
    [InlineData("Health", "CheckInterval", "thirty", "is not a time span")]
    [InlineData("Health", "KernelLog", "2", "'2' is not a boolean")]
    [InlineData("Health", "XfsScanLimit", "-1", "'-1' is not a whole number")]
    [InlineData("Health", "XfsScanLimit", "1e5", "'1e5' is not a whole number")]
    [InlineData("Health", "XfsScanLimit", "99999999999", "99999999999 is outside 0..")]
    [InlineData("Health", "XfsScanLimit", "123456789012345678901234567890", "'123456789012345678901234567890' is outside 0..")]
    [InlineData("Hooks", "MaxConcurrent", "100000000000", "100000000000 is outside 1..64")]
    [InlineData("Store", "Directory", "var/lib/x", "'var/lib/x' is not an absolute path")]
    [InlineData("Store", "MaxReports", "0", "0 is outside 1..2147483647")]
    [InlineData("Store", "MaxAge", "0", "0 is outside 1s..")]
    [InlineData("Store", "MaxAge", "infinity", "infinity is not allowed")]
    [InlineData("Journal", "Enabled", "sometimes", "'sometimes' is not one of auto, yes, no")]
    [InlineData("Journal", "MaxEntriesPerInterval", "0", "0 is outside 1..1000000")]
    [InlineData("Journal", "Interval", "-1min", "negative time span")]
    [InlineData("Log", "Level", "verbose", "'verbose' is not one of debug, information, warning, error")]
    [InlineData("Log", "Level", "Debug", "'Debug' is not one of debug, information, warning, error")]
    [InlineData("Hooks", "Directory", "hooks.d", "'hooks.d' is not an absolute path")]
    [InlineData("Hooks", "MaxConcurrent", "0", "0 is outside 1..64")]
    [InlineData("Hooks", "MaxConcurrent", "65", "65 is outside 1..64")]
    [InlineData("Hooks", "Timeout", "0", "0 is outside 1s..7d")]
    [InlineData("Hooks", "Timeout", "8d", "8d is outside 1s..7d")]
    [InlineData("Hooks", "KillGrace", "2h", "2h is outside 100ms..1h")]
    [InlineData("Hooks", "Repeat", "daily", "'daily' is not one of always, once, interval=DURATION, diminishing[=DURATION]")]
    [InlineData("Hooks", "Repeat", "interval=0", "shorter than 1s")]
    [InlineData("Hooks", "Capabilities", "CAP_KILL CAP_NET_ADMN", "'CAP_NET_ADMN' is not a capability name (as in capabilities(7): CAP_KILL, CAP_NET_ADMIN, CAP_SYS_RESOURCE, ...)")]
    [InlineData("Hooks", "Capabilities", "cap_kill", "'cap_kill' is not a capability name; did you mean CAP_KILL?")]
    [InlineData("Hooks", "Capabilities", "NET_ADMIN", "'NET_ADMIN' is not a capability name; did you mean CAP_NET_ADMIN?")]
    [InlineData("Hook \"fsck\"", "Exec", "fsck-at-boot --quiet", "'fsck-at-boot' is not an absolute path (hooks are executed directly, without a shell or PATH search)")]
    [InlineData("Hook \"fsck\"", "Exec", "/usr/lib/%t/fsck", "the executable's path cannot contain specifiers")]
    [InlineData("Hook \"fsck\"", "Exec", "/usr/bin/fsck %q", "unknown specifier '%q'")]
    [InlineData("Hook \"scrub\"", "Unit", "xfs_scrub@%m", "is not a unit name: it must end in .service")]
    [InlineData("Hook \"scrub\"", "Events", "corruption explosion", "'explosion' is not an event (known: corruption, io, shutdown, readonly, history, resource, other, events-lost)")]
    [InlineData("Hook \"scrub\"", "Errnos", "EUCLEAN EWHATEVER", "'EWHATEVER' is not an errno name")]
    [InlineData("Hook \"scrub\"", "Sources", "dmesg", "'dmesg' is not a source (known: fanotify, ext4-sysfs, ext4-superblock, ext4-state, xfs-health, xfs-health-monitor)")]
    [InlineData("Hook \"scrub\"", "Severities", "fatal", "'fatal' is not a severity (critical, error, warning)")]
    [InlineData("Hook \"scrub\"", "Types", "xfs/", "'xfs/' is not a filesystem type name")]
    [InlineData("Hook \"scrub\"", "Repeat", "twice", "'twice' is not one of always, once")]
    [InlineData("Hook \"scrub\"", "Timeout", "forever", "is not a time span")]
    public void Values_that_make_no_sense_are_problems_naming_file_line_and_key_and_leave_the_default(string section, string key, string value, string message)
    {
        var file = _dir.Write("errorwatch.conf", $"# line 1\n[{section}]\n{key}={value}\n");
        var settings = Load(out var problems);
        var problem = Assert.Single(problems);
        Assert.Equal(file, problem.File);
        Assert.Equal(3, problem.Line);
        Assert.Equal(section, problem.Section);
        Assert.Equal(key, problem.Key);
        Assert.Contains(message, problem.Message);
        Assert.StartsWith($"{file}:3: [{section}] {key}: ", problem.ToString());
        // A rule section's header alone is a (harmless, empty) rule; everything else stays at its default.
        Assert.Equal(Defaults(), Dump(settings with { Hooks = settings.Hooks with { Rules = [] } }));
    }

    [Theory]
    [InlineData("Filesystems=/srv\n[Watch]\n", 1, "assignment before the first [Section] header")]
    [InlineData("[Watch]\nFilesystems /srv\n", 2, "expected Key=Value, found 'Filesystems /srv'")]
    [InlineData("[Watch\nFilesystems=/srv\n", 1, "malformed section header '[Watch'")]
    [InlineData("[]\n", 1, "malformed section header")]
    [InlineData("[Watch]\n=/srv\n", 2, "assignment without a key")]
    [InlineData("[Watch]\nFilesystems=/srv\u0007\n", 2, "control characters")]
    public void Syntax_errors_name_their_line(string text, int line, string message)
    {
        _dir.Write("errorwatch.conf", text);
        Load(out var problems);
        var problem = Assert.Single(problems);
        Assert.Equal(line, problem.Line);
        Assert.Contains(message, problem.Message);
    }

    [Fact]
    public void Keys_under_a_malformed_header_are_not_applied_or_reported_again()
    {
        _dir.Write("errorwatch.conf", "[Health\nCheckInterval=1s\n");
        var s = Load(out var problems);
        Assert.Single(problems);
        Assert.Equal(TimeSpan.FromSeconds(30), s.Health.CheckInterval);
    }

    [Fact]
    public void Binary_garbage_gives_a_bounded_number_of_problems_and_no_exception()
    {
        var random = new Random(1234);
        var garbage = new byte[256 * 1024];
        random.NextBytes(garbage);
        _dir.WriteBytes("errorwatch.conf", garbage);
        var s = Load(out var problems);
        Assert.NotEmpty(problems);
        Assert.True(problems.Count <= SettingsFile.MaxProblemsPerFile + 1, $"{problems.Count} problems");
        Assert.Contains("the rest of the file was not read", problems[^1].Message);
        Assert.Equal(Defaults(), Dump(s));
    }

    [Fact]
    public void A_ten_megabyte_line_is_one_problem_and_the_lines_after_it_still_count()
    {
        using (var stream = File.Create(_dir.File("errorwatch.conf")))
        {
            stream.Write("[Watch]\nFilesystems="u8);
            var chunk = Encoding.ASCII.GetBytes(new string('a', 1024 * 1024));
            for (var i = 0; i < 10; i++)
                stream.Write(chunk);
            stream.Write("\n[Log]\nLevel=debug\n"u8);
        }
        var before = GC.GetAllocatedBytesForCurrentThread();
        var s = Load(out var problems);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        var problem = Assert.Single(problems);
        Assert.Equal(2, problem.Line);
        Assert.Contains("line longer than 65536 bytes", problem.Message);
        Assert.Equal(LogEventLevel.Debug, s.Log.Level);
        Assert.Empty(s.Watch.Filesystems);
        Assert.True(allocated < 4 * 1024 * 1024, $"reading a 10 MB line allocated {allocated} bytes: it must not be buffered");
    }

    [Fact]
    public void An_endless_file_is_read_only_so_far()
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        ConfigurationLoader.Load("/dev/zero", null, null, out var problems);
        Assert.Contains(problems, p => p.Message.Contains("larger than 16 MiB"));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"took {clock.Elapsed}");
    }

    [Fact]
    public void Dev_null_is_an_empty_configuration()
    {
        var s = ConfigurationLoader.Load("/dev/null", null, null, out var problems);
        Assert.Empty(problems);
        Assert.Equal(["/dev/null"], s.Files);
    }

    [Fact]
    public void Nul_bytes_and_invalid_utf8_are_problems_on_their_lines()
    {
        _dir.WriteBytes("errorwatch.conf", [.. "[Watch]\nFilesystems=/a"u8.ToArray(), 0, .. "b\nExclude="u8.ToArray(), 0xFF, 0xFE, .. "\nTypes=xfs\n"u8.ToArray()]);
        var s = Load(out var problems);
        Assert.Equal(2, problems.Count);
        Assert.Equal((2, "line contains a NUL byte"), (problems[0].Line, problems[0].Message));
        Assert.Equal((3, "line is not valid UTF-8"), (problems[1].Line, problems[1].Message));
        Assert.Equal(["xfs"], s.Watch.Types);
    }

    [Fact]
    public void The_dump_names_every_key_and_parses_back_to_the_same_settings()
    {
        _dir.Write("errorwatch.conf", """
            [Watch]
            Filesystems=/srv /media/a\040b
            Exclude=8:1
            Types=xfs
            ResolvePaths=no
            MountTracking=mountinfo
            MountSource=mountinfo
            RescanInterval=1.5min
            PriorityBoost=7
            [Health]
            CheckInterval=250ms
            KernelLog=no
            XfsHealthMonitor=no
            XfsScanLimit=7
            [Store]
            Directory=/srv/state dir
            MaxReports=9
            MaxAge=36h
            [Journal]
            Enabled=yes
            MaxEntriesPerInterval=2
            Interval=1h 1s
            [DBus]
            Bus=unix:path=/run/test/bus
            SignalPaths=yes
            [Metrics]
            Listen=[::1]:9464
            Listen=unix:/run/errorwatch/metrics.sock
            [OpenTelemetry]
            Endpoint=http://collector:4318
            Protocol=http/protobuf
            Headers=api-key=secret
            Interval=15s
            [Hooks]
            Directory=/srv/hooks
            MaxConcurrent=2
            Timeout=1h
            KillGrace=30s
            Repeat=diminishing
            Capabilities=CAP_KILL CAP_SYS_RESOURCE
            [Hook "fsck"]
            Exec=/usr/lib/errorwatch/fsck-at-boot --device %d /media/My\040Disk
            Types=ext4 ext3
            Events=corruption history
            Errnos=EUCLEAN 74
            Repeat=once
            [Hook "scrub"]
            Unit=xfs_scrub@%m.service
            Filesystems=/srv
            Sources=fanotify xfs-health
            Severities=critical
            Timeout=2d
            [Log]
            Level=error
            """);
        var dump = LoadClean().ToConfigurationText();
        Assert.Equal("""
            [Watch]
            Filesystems=/srv /media/a\040b
            Exclude=8:1
            Types=xfs
            ResolvePaths=no
            MountTracking=mountinfo
            MountSource=mountinfo
            RescanInterval=1min 30s
            PriorityBoost=7

            [Health]
            CheckInterval=250ms
            KernelLog=no
            XfsHealthMonitor=no
            XfsScanLimit=7

            [Store]
            Directory=/srv/state dir
            MaxReports=9
            MaxAge=1d 12h

            [Journal]
            Enabled=yes
            MaxEntriesPerInterval=2
            Interval=1h 1s

            [DBus]
            Bus=unix:path=/run/test/bus
            SignalPaths=yes

            [Metrics]
            Listen=[::1]:9464 unix:/run/errorwatch/metrics.sock

            [OpenTelemetry]
            Endpoint=http://collector:4318
            Protocol=http/protobuf
            Headers=api-key=secret
            Interval=15s

            [Hooks]
            Directory=/srv/hooks
            MaxConcurrent=2
            Timeout=1h
            KillGrace=30s
            Repeat=diminishing
            Capabilities=CAP_KILL CAP_SYS_RESOURCE

            [Hook "fsck"]
            Exec=/usr/lib/errorwatch/fsck-at-boot --device %d /media/My\040Disk
            Unit=
            Filesystems=
            Types=ext4 ext3
            Events=corruption history
            Errnos=EUCLEAN 74
            Sources=
            Severities=
            Repeat=once
            Timeout=

            [Hook "scrub"]
            Exec=
            Unit=xfs_scrub@%m.service
            Filesystems=/srv
            Types=
            Events=
            Errnos=
            Sources=fanotify xfs-health
            Severities=critical
            Repeat=
            Timeout=2d

            [Log]
            Level=error

            """.ReplaceLineEndings("\n"), dump);
        var again = _dir.Write("again.conf", dump);
        Assert.Equal(dump, LoadClean(again).ToConfigurationText());
    }

    [Fact]
    public void Hook_capabilities_are_a_list_of_capability_names_that_drop_ins_extend_and_an_empty_assignment_resets()
    {
        _dir.Write("errorwatch.conf", "[Hooks]\nCapabilities=CAP_KILL\nCapabilities=CAP_NET_ADMIN CAP_KILL\n");
        _dir.Write("errorwatch.conf.d/10-more.conf", "[Hooks]\nCapabilities=CAP_SYS_RESOURCE\n");
        var s = LoadClean();
        Assert.Equal(["CAP_KILL", "CAP_NET_ADMIN", "CAP_SYS_RESOURCE"], s.Hooks.Capabilities);
        Assert.Equal(Daemon.CapabilitySet.Of(5, 12, 24), Daemon.CapabilitySet.Named(s.Hooks.Capabilities));
        // The daemon keeps them on top of its own (CAP_SYSLOG for /dev/kmsg while KernelLog=yes, CAP_SYS_NICE for PriorityBoost).
        Assert.Equal("CAP_DAC_READ_SEARCH CAP_KILL CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYS_NICE CAP_SYS_RESOURCE CAP_SYSLOG", Daemon.Privileges.Needed(s with { Metrics = new() { Listen = [] } }).ToString());

        _dir.Write("errorwatch.conf.d/20-reset.conf", "[Hooks]\nCapabilities=\n");
        Assert.Empty(LoadClean().Hooks.Capabilities);
        Assert.Empty(new ErrorWatchSettings().Hooks.Capabilities);
    }

    [Theory]
    [InlineData("127.0.0.1:9464", false)]
    [InlineData("127.0.0.1:443", true)]
    [InlineData("[::1]:80", true)]
    [InlineData("unix:/run/errorwatch/metrics.sock", false)]
    public void A_metrics_port_below_the_unprivileged_start_keeps_CAP_NET_BIND_SERVICE(string listen, bool bindService)
    {
        var start = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim());
        var needed = Daemon.Privileges.Needed(new ErrorWatchSettings { Metrics = new() { Listen = [listen] } });
        Assert.Equal(bindService && Daemon.Privileges.Port(listen) < start, needed.Contains(10));
        Assert.Equal(Daemon.Privileges.Daemon | Daemon.Privileges.KernelLog | Daemon.Privileges.PriorityBoost, needed.Except(Daemon.CapabilitySet.Of(10)));
    }

    [Fact]
    public void CAP_SYSLOG_is_kept_only_while_the_kernel_log_is_read()
    {
        var settings = new ErrorWatchSettings { Metrics = new() { Listen = [] } };
        Assert.Equal("CAP_DAC_READ_SEARCH CAP_SYS_ADMIN CAP_SYS_NICE CAP_SYSLOG", Daemon.Privileges.Needed(settings).ToString());
        _dir.Write("errorwatch.conf", "[Health]\nKernelLog=no\n");
        Assert.Equal("CAP_DAC_READ_SEARCH CAP_SYS_ADMIN CAP_SYS_NICE", Daemon.Privileges.Needed(LoadClean() with { Metrics = new() { Listen = [] } }).ToString());
    }

    [Fact]
    public void CAP_SYS_NICE_is_kept_only_while_the_event_threads_are_boosted()
    {
        _dir.Write("errorwatch.conf", "[Watch]\nPriorityBoost=0\n[Health]\nKernelLog=no\n");
        Assert.Equal("CAP_DAC_READ_SEARCH CAP_SYS_ADMIN", Daemon.Privileges.Needed(LoadClean() with { Metrics = new() { Listen = [] } }).ToString());
    }

    [Fact]
    public void Hook_rules_are_named_sections_that_drop_ins_adjust_key_by_key()
    {
        var main = _dir.Write("errorwatch.conf", """
            [Hooks]
            Repeat=always
            [Hook "fsck"]
            Exec=/usr/lib/errorwatch/fsck-at-boot %d
            Types=ext4
            Repeat=once
            [Hook "mail"]
            Exec=/usr/local/bin/mail-report
            """);
        _dir.Write("errorwatch.conf.d/50-site.conf", """
            [Hook "fsck"]
            Types=ext3
            Repeat=
            [Hook "scrub"]
            Unit=xfs_scrub@%m.service
            [Hook "mail"]
            Exec=
            Unit=mail-report@%i.service
            """);
        var s = LoadClean();
        Assert.Equal(["fsck", "mail", "scrub"], s.Hooks.Rules.Select(r => r.Name));
        var fsck = s.Hooks.Rules[0];
        Assert.Equal(["/usr/lib/errorwatch/fsck-at-boot", "%d"], fsck.Exec);
        Assert.Equal(["ext4", "ext3"], fsck.Types);
        Assert.Null(fsck.Repeat); // reset: [Hooks] Repeat= applies
        Assert.Equal($"{main}:3", fsck.Origin);
        Assert.Empty(s.Hooks.Rules[1].Exec);
        Assert.Equal("mail-report@%i.service", s.Hooks.Rules[1].Unit);
        Assert.Equal("xfs_scrub@%m.service", s.Hooks.Rules[2].Unit);
        Assert.Equal(RepeatKindOf("always"), s.Hooks.Repeat);
    }

    private static ErrorWatch.Recovery.RepeatPolicy RepeatKindOf(string text) =>
        ErrorWatch.Recovery.RepeatPolicy.TryParse(text, out var policy, out _) ? policy : throw new ArgumentException(text);

    [Fact]
    public void A_rule_with_both_Exec_and_Unit_is_a_problem_where_the_second_was_set()
    {
        _dir.Write("errorwatch.conf", "[Hook \"x\"]\nUnit=a@%m.service\n");
        var dropIn = _dir.Write("errorwatch.conf.d/10.conf", "# comment\n[Hook \"x\"]\nExec=/bin/true\n");
        Load(out var problems);
        var problem = Assert.Single(problems);
        Assert.Equal((dropIn, 3, "Exec", "Hook \"x\""), (problem.File, problem.Line, problem.Key, problem.Section));
        Assert.Contains("either runs Exec= or starts Unit=, not both (Unit= is set at", problem.Message);
    }

    [Theory]
    [InlineData("[Hook fsck]", "a hook rule's header is [Hook \"NAME\"], the name in double quotes")]
    [InlineData("[Hook \"\"]", "a hook rule's header is [Hook \"NAME\"]")]
    [InlineData("[Hook \"a b\"]", "'a b' is not a hook name")]
    [InlineData("[Hook \"-x\"]", "'-x' is not a hook name")]
    public void Malformed_rule_headers_are_problems_at_their_line(string header, string message)
    {
        var file = _dir.Write("errorwatch.conf", $"[Log]\n{header}\nExec=/bin/true\n");
        Load(out var problems);
        var problem = Assert.Single(problems);
        Assert.Equal((file, 2), (problem.File, problem.Line));
        Assert.Contains(message, problem.Message);
    }

    [Fact]
    public void Unknown_keys_in_a_rule_name_the_rule_and_hint_at_case()
    {
        var file = _dir.Write("errorwatch.conf", "[Hook \"x\"]\nexec=/bin/true\nCommand=/bin/true\n");
        Load(out var problems);
        Assert.Equal(2, problems.Count);
        Assert.StartsWith($"{file}:2: [Hook \"x\"] exec: unknown key; did you mean Exec=?", problems[0].ToString());
        Assert.Contains("known in [Hook \"NAME\"]: Exec, Unit, Filesystems, Types, Events, Errnos, Sources, Severities, Repeat, Timeout", problems[1].Message);
    }

    [Fact]
    public void The_example_file_documents_every_key_with_its_default()
    {
        var example = File.ReadAllText(System.IO.Path.Combine(ServicePaths.RepositoryRoot, "deploy", "errorwatch.conf.example"));
        // Uncommenting every "#Key=value" line must change nothing.
        var uncommented = string.Join('\n', example.Split('\n').Select(l => System.Text.RegularExpressions.Regex.IsMatch(l, "^#[A-Z][A-Za-z]*=") ? l[1..] : l));
        var file = _dir.Write("example.conf", uncommented);
        var settings = ConfigurationLoader.Load(file, null, null, out var problems);
        Assert.Empty(problems);
        Assert.Equal(Defaults(), Dump(settings));
        foreach (var line in Defaults().Split('\n').Where(l => l.Contains('=')))
            Assert.Contains(line.Split('=')[0] + "=", uncommented);
        Assert.Contains("errorwatch check-config", example);
    }

    private static string Dump(ErrorWatchSettings settings) => settings.ToConfigurationText();

    private static string Defaults() => ConfigurationLoader.Load(null, "/nonexistent-errorwatch-test", null, out _).ToConfigurationText();
}

/// <summary>A temporary configuration directory.</summary>
internal sealed class ConfigDirectory : IDisposable
{
    public ConfigDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"errorwatch-config-{Environment.ProcessId}-{Guid.NewGuid():N}");

    public string File(string relative) => System.IO.Path.Combine(Path, relative);

    public string Write(string relative, string text) => WriteBytes(relative, Encoding.UTF8.GetBytes(text.ReplaceLineEndings("\n")));

    public string WriteBytes(string relative, byte[] bytes)
    {
        var file = File(relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(file)!);
        System.IO.File.WriteAllBytes(file, bytes);
        return file;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>Where the repository's own files are, found from the test binaries upwards.</summary>
internal static class ServicePaths
{
    public static string RepositoryRoot { get; } = Find();

    private static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "ErrorWatch.sln")))
                return dir.FullName;
        }
        throw new DirectoryNotFoundException("ErrorWatch.sln not found above " + AppContext.BaseDirectory);
    }
}
