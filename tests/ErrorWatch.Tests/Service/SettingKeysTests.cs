using ErrorWatch.Cli;
using ErrorWatch.Configuration;
using ErrorWatch.Filesystems;
using Serilog.Events;

namespace ErrorWatch.Tests.Service;

/// <summary>The key table (Configuration/SettingKeys.cs) and what is made from it: the docs, the defaults, the command line.</summary>
public sealed class SettingKeysTests
{
    private static readonly string Doc = Path.Combine(ServicePaths.RepositoryRoot, "docs", "configuration.md");

    /// <summary>With ERRORWATCH_WRITE_DOCS=1 the block is written into the doc instead (then review and commit it).</summary>
    [Fact]
    public void The_key_reference_in_the_docs_is_the_table()
    {
        var doc = File.ReadAllText(Doc);
        var begin = doc.IndexOf(SettingKeys.MarkdownBegin, StringComparison.Ordinal);
        var end = doc.IndexOf(SettingKeys.MarkdownEnd, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"docs/configuration.md has no block between '{SettingKeys.MarkdownBegin}' and '{SettingKeys.MarkdownEnd}'");
        var inDoc = doc[begin..(end + SettingKeys.MarkdownEnd.Length + 1)];
        var table = SettingKeys.ToMarkdown();
        if (inDoc != table && Environment.GetEnvironmentVariable("ERRORWATCH_WRITE_DOCS") == "1")
        {
            File.WriteAllText(Doc, doc[..begin] + table + doc[(end + SettingKeys.MarkdownEnd.Length + 1)..]);
            return;
        }
        var at = Enumerable.Range(0, Math.Min(inDoc.Length, table.Length)).FirstOrDefault(i => inDoc[i] != table[i], Math.Min(inDoc.Length, table.Length));
        Assert.True(inDoc == table,
            "docs/configuration.md's key reference differs from SettingKeys; regenerate it with `errorwatch check-config --keys-markdown` "
            + $"or run this test with ERRORWATCH_WRITE_DOCS=1. The table from there on: {table[at..Math.Min(table.Length, at + 200)]}");
    }

    [Fact]
    public void Each_key_is_declared_once_and_the_settings_records_take_its_default()
    {
        Assert.Equal(SettingKeys.All.Count, SettingKeys.All.Select(k => (k.Section, k.Name)).Distinct().Count());
        var defaults = new ErrorWatchSettings();
        // [Store] Directory's default comes from $STATE_DIRECTORY when the record is made.
        foreach (var key in SettingKeys.All.Where(k => k != SettingKeys.StoreDirectory))
            Assert.True(key.Format(defaults) == key.FormattedDefault, $"{key}: the record holds {key.Format(defaults)}, the table says {key.FormattedDefault}");
        Assert.Equal(HealthBaselineDefault(), defaults.Store.Directory);
    }

    private static string HealthBaselineDefault() => ErrorWatch.Health.HealthBaseline.DefaultDirectory();

    [Fact]
    public void Only_the_keys_a_reload_applies_are_reloadable()
    {
        // What RunCommand.Reload applies at once: the log level, the choice of filesystems, the hooks
        // (HookSink.Reload); the bounding set (Capabilities=) can only shrink, so it waits for a restart.
        Assert.Equal(
            ["[Watch] Filesystems", "[Watch] Exclude", "[Watch] Types", "[Hooks] Directory", "[Hooks] MaxConcurrent", "[Hooks] Timeout", "[Hooks] KillGrace", "[Hooks] Repeat", "[Log] Level"],
            SettingKeys.All.Where(k => k.Reloadable).Select(k => k.ToString()));
    }

    [Fact]
    public void Each_key_with_an_option_is_on_the_run_command_once_with_its_name_and_aliases()
    {
        var run = RunCommand.Create();
        var names = run.Options.SelectMany(o => o.Aliases.Append(o.Name)).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        foreach (var key in SettingKeys.All.Where(k => k.Option is not null))
        {
            var option = Assert.Single(run.Options, o => o.Name == key.Option!.Name);
            Assert.Equal(key.Option!.Help, option.Description);
            Assert.Equal(key.Option.Aliases, option.Aliases);
            Assert.Equal(key.Option.FlagSets is not null, key.Kind == SettingKind.Boolean);
        }
        Assert.Equal(
            ["--filesystem", "--exclude", "--fs-type", "--no-paths", "--mount-tracking", "--mount-source", "--check-interval", "--no-kernel-log",
             "--no-xfs-health-monitor", "--state-dir", "--journal", "--bus", "--metrics-listen", "--otlp-endpoint", "--log-level"],
            SettingKeys.All.Where(k => k.Option is not null).Select(k => k.Option!.Name));
    }

    [Fact]
    public void Options_given_override_the_file_and_options_not_given_leave_it()
    {
        var file = new ErrorWatchSettings
        {
            Watch = new WatchSettings { Filesystems = ["/from-file"], Types = ["xfs"] },
            Journal = new JournalSettings { Enabled = JournalMode.No },
        };
        var parse = RunCommand.Create().Parse([
            "-f", "/srv", "--filesystem", "/data", "--no-paths", "--mount-source", "statmount", "--check-interval", "2.5",
            "--no-kernel-log", "--state-dir", "relative/state", "--bus", "unix:path=/run/x/bus", "--metrics-listen", "none",
            "--otlp-endpoint", "http://collector:4317", "--log-level", "Warning"]);
        Assert.Empty(parse.Errors);
        var s = SettingOptions.Override(file, parse);
        Assert.Equal(["/srv", "/data"], s.Watch.Filesystems);
        Assert.Equal(["xfs"], s.Watch.Types); // not given: the file's
        Assert.False(s.Watch.ResolvePaths);
        Assert.Equal(MountSource.Statmount, s.Watch.MountSource);
        Assert.Equal(TimeSpan.FromSeconds(2.5), s.Health.CheckInterval);
        Assert.False(s.Health.KernelLog);
        Assert.True(s.Health.XfsHealthMonitor);
        Assert.Equal(Path.GetFullPath("relative/state"), s.Store.Directory);
        Assert.Equal(JournalMode.No, s.Journal.Enabled);
        Assert.Equal("unix:path=/run/x/bus", s.DBus.Bus);
        Assert.Empty(s.Metrics.Listen);
        Assert.Equal("http://collector:4317", s.OpenTelemetry.Endpoint);
        Assert.Equal(LogEventLevel.Warning, s.Log.Level);

        Assert.Equal(file, SettingOptions.Override(file, RunCommand.Create().Parse([])));
    }

    [Theory]
    [InlineData("--check-interval must be between 0.1 and 86400 seconds, not 0", "--check-interval", "0")]
    [InlineData("--mount-tracking: 'sometimes' is not one of auto, mountinfo", "--mount-tracking", "sometimes")]
    [InlineData("--log-level: 'loud' is not one of debug, information, warning, error", "--log-level", "loud")]
    [InlineData("--bus: 'session' is not system, none or a D-Bus address", "--bus", "session")]
    [InlineData("--metrics-listen: 'localhost' is not host:port", "--metrics-listen", "localhost")]
    [InlineData("--otlp-endpoint: 'collector:4317' is not an http:// or https:// URL", "--otlp-endpoint", "collector:4317")]
    [InlineData("--fs-type: 'ext4;' is not a filesystem type name", "--fs-type", "ext4;")]
    public void A_bad_option_value_is_refused_with_the_key_s_own_message(string message, params string[] args)
    {
        var parse = RunCommand.Create().Parse(args);
        Assert.Contains(parse.Errors, e => e.Message.StartsWith(message, StringComparison.Ordinal));
    }

    [Fact]
    public void A_change_is_found_key_by_key_for_the_reload_to_name_what_waits_for_a_restart()
    {
        var current = new ErrorWatchSettings();
        var fresh = current with
        {
            Watch = current.Watch with { RescanInterval = TimeSpan.FromMinutes(1), Filesystems = ["/srv"] },
            Health = current.Health with { CheckInterval = TimeSpan.FromMinutes(1) },
            Log = current.Log with { Level = LogEventLevel.Debug },
        };
        Assert.Equal(["[Watch] RescanInterval", "[Health] CheckInterval"],
            SettingKeys.All.Where(k => !k.Reloadable && k.Differs(fresh, current)).Select(k => k.ToString()));
    }
}
