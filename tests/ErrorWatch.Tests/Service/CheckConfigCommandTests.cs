using System.Diagnostics;

namespace ErrorWatch.Tests.Service;

/// <summary>errorwatch check-config, run as an admin runs it.</summary>
public sealed class CheckConfigCommandTests : IDisposable
{
    private readonly ConfigDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_good_configuration_prints_ok_with_the_files_read_and_the_effective_settings()
    {
        var main = _dir.Write("errorwatch.conf", "[Watch]\nFilesystems=/srv\n[Health]\nCheckInterval=90\n");
        var dropIn = _dir.Write("errorwatch.conf.d/10-local.conf", "[Watch]\nFilesystems=/data\n[Log]\nLevel=debug\n");
        var (code, stdout, stderr) = Run(null, "check-config", "--config", main);
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n');
        Assert.Equal($"OK: {main} {dropIn}", lines[0]);
        Assert.Contains("[Watch]\nFilesystems=/srv /data\n", stdout);
        Assert.Contains("[Health]\nCheckInterval=1min 30s\n", stdout);
        Assert.Contains("[Log]\nLevel=debug\n", stdout);
        Assert.Contains("MaxAge=90d\n", stdout); // defaults are shown too: the whole effective configuration
        Assert.Equal("", stderr);
    }

    [Fact]
    public void Problems_are_printed_as_file_line_section_key_message_and_exit_1()
    {
        var main = _dir.Write("errorwatch.conf", "[Health]\nCheckInterval=-5s\n[Journal]\nMaxEntriesPerInterval=0\n");
        var dropIn = _dir.Write("errorwatch.conf.d/10.conf", "[Watch]\nFilesystem=/srv\n");
        var (code, stdout, stderr) = Run(null, "check-config", "-c", main);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith($"{main}:2: [Health] CheckInterval: negative time span", lines[0]);
        Assert.StartsWith($"{main}:4: [Journal] MaxEntriesPerInterval: 0 is outside 1..", lines[1]);
        Assert.StartsWith($"{dropIn}:2: [Watch] Filesystem: unknown key", lines[2]);
        Assert.Equal("3 problem(s) in the configuration", lines[3]);
        Assert.DoesNotContain("   at ", stderr);
    }

    [Fact]
    public void A_missing_explicit_file_is_an_error()
    {
        var missing = _dir.File("absent.conf");
        var (code, _, stderr) = Run(null, "check-config", "--config", missing);
        Assert.Equal(1, code);
        Assert.StartsWith($"{missing}: no such file", stderr);
    }

    [Fact]
    public void Without_config_it_reads_the_first_configuration_directory_systemd_names()
    {
        var (code, stdout, _) = Run(_dir.Path + ":/nonexistent", "check-config");
        Assert.Equal(0, code);
        Assert.StartsWith($"OK: no configuration file ({_dir.File("errorwatch.conf")} is absent), defaults apply", stdout);

        var main = _dir.Write("errorwatch.conf", "[Watch]\nTypes=xfs\n");
        (code, stdout, _) = Run(_dir.Path + ":/nonexistent", "check-config");
        Assert.Equal(0, code);
        Assert.StartsWith($"OK: {main}\n", stdout);
        Assert.Contains("Types=xfs\n", stdout);
    }

    [Fact]
    public void Keys_lists_every_key_of_the_table_and_keys_markdown_prints_the_docs_block()
    {
        var (code, stdout, stderr) = Run(null, "check-config", "--keys");
        Assert.True(code == 0, stderr);
        foreach (var key in ErrorWatch.Configuration.SettingKeys.All)
            Assert.Contains($"[{key.Section}] {key.Name}={key.FormattedDefault}  (", stdout);
        (code, stdout, stderr) = Run(null, "check-config", "--keys-markdown");
        Assert.True(code == 0, stderr);
        // The shipped (trimmed, AOT-compiled) binary renders what the table renders in the tests.
        Assert.Equal(ErrorWatch.Configuration.SettingKeys.ToMarkdown(), stdout);
    }

    [Fact]
    public void Garbage_gives_problems_not_a_stack_trace()
    {
        var random = new Random(7);
        var bytes = new byte[64 * 1024];
        random.NextBytes(bytes);
        var main = _dir.WriteBytes("errorwatch.conf", bytes);
        var (code, _, stderr) = Run(null, "check-config", "--config", main);
        Assert.Equal(1, code);
        Assert.StartsWith(main + ":", stderr);
        Assert.DoesNotContain("Unhandled exception", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    private static (int Code, string Stdout, string Stderr) Run(string? configurationDirectory, params string[] args)
    {
        var psi = ErrorWatchBinary.StartInfo(args);
        psi.Environment.Remove("CONFIGURATION_DIRECTORY");
        if (configurationDirectory is not null)
            psi.Environment["CONFIGURATION_DIRECTORY"] = configurationDirectory;
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        Assert.True(process.WaitForExit(TimeSpan.FromSeconds(30)), "check-config did not finish within 30 s");
        return (process.ExitCode, stdout.Result, stderr.Result);
    }
}
