using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.Service;
using Xunit.Abstractions;

namespace ErrorWatch.Tests.Install;

/// <summary>The .deb from packaging/build-deb.sh, and install.sh, as files: layout, control data, man page, lintian.</summary>
[Collection(InstallCollection.Name)]
public sealed class PackageTests(PackageBuild package, ITestOutputHelper output)
{
    private static readonly string[] StandardPlaces =
    [
        "./usr/lib/errorwatch/errorwatch",
        "./usr/bin/errorwatch",
        "./usr/lib/systemd/system/errorwatch.service",
        "./usr/lib/systemd/user/errorwatch-notify.service",
        "./usr/lib/systemd/catalog/errorwatch.catalog",
        "./usr/share/dbus-1/system.d/io.github.errorwatch.ErrorWatch1.conf",
        "./usr/share/dbus-1/system-services/io.github.errorwatch.ErrorWatch1.service",
        "./usr/share/dbus-1/interfaces/io.github.errorwatch.ErrorWatch1.Manager.xml",
        "./usr/share/dbus-1/interfaces/io.github.errorwatch.ErrorWatch1.Filesystem.xml",
        "./usr/share/polkit-1/actions/io.github.errorwatch.ErrorWatch1.policy",
        "./etc/errorwatch/errorwatch.conf",
        "./etc/errorwatch/hooks.d/",
        "./usr/share/man/man8/errorwatch.8.gz",
        "./usr/share/doc/errorwatch/copyright",
        "./usr/share/doc/errorwatch/changelog.gz",
        "./usr/share/doc/errorwatch/README.md",
        "./usr/share/doc/errorwatch/report-schema.md",
        "./usr/share/doc/errorwatch/dbus-api.md",
        "./usr/share/doc/errorwatch/examples/errorwatch.conf.example",
        "./usr/share/doc/errorwatch/examples/prometheus/errorwatch-rules.yml",
    ];

    private string DpkgDeb(params string[] args)
    {
        var r = Tool.RunWithTimeout(TimeSpan.FromMinutes(2), "dpkg-deb", args);
        Assert.True(r.ExitCode == 0, $"dpkg-deb {string.Join(' ', args)}: {r.StdErr}");
        return r.StdOut;
    }

    [Fact]
    public void Every_file_is_where_the_system_looks_for_it_and_the_example_hooks_come_along()
    {
        var listing = DpkgDeb("--contents", package.Deb);
        var paths = listing.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l[(l.IndexOf(" ./", StringComparison.Ordinal) + 1)..].Split(" -> ")[0])
            .ToHashSet();
        foreach (var expected in StandardPlaces)
            Assert.True(paths.Contains(expected), $"{expected} is not in the package:\n{listing}");
        Assert.Contains("./usr/bin/errorwatch -> ../lib/errorwatch/errorwatch", listing);
        // The program is one executable: nothing else in its directory, no runtime beside it.
        Assert.Equal(["./usr/lib/errorwatch/", "./usr/lib/errorwatch/errorwatch"], paths.Where(p => p.StartsWith("./usr/lib/errorwatch/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
        // Every file of deploy/hooks/ ships as an example when the tree has them.
        var hooks = Path.Combine(ServicePaths.RepositoryRoot, "deploy", "hooks");
        if (Directory.Exists(hooks))
        {
            foreach (var hook in Directory.EnumerateFiles(hooks, "*", SearchOption.AllDirectories))
                Assert.Contains("./usr/share/doc/errorwatch/examples/hooks/" + Path.GetRelativePath(hooks, hook), paths);
        }
        // The unit runs what the package installs.
        Assert.Contains("ExecStart=/usr/lib/errorwatch/errorwatch run", File.ReadAllText(Path.Combine(ServicePaths.RepositoryRoot, "deploy", "systemd", "errorwatch.service")));
        output.WriteLine($"{package.Deb}: {new FileInfo(package.Deb).Length / 1e6:0.0} MB; built in {package.BuildTime?.TotalSeconds:0} s");
    }

    [Fact]
    public void It_depends_on_libc6_and_libsystemd0_only_and_keeps_the_configuration_as_a_conffile()
    {
        var depends = DpkgDeb("--field", package.Deb, "Depends").Trim();
        var names = depends.Split(',').Select(d => d.Trim().Split(' ')[0]).ToHashSet();
        // libc6: what the NativeAOT executable links (libc, libm; dpkg-shlibdeps); libsystemd0:
        // journal, sd_notify and sd-bus, loaded at run time. Nothing else.
        Assert.Equal(new HashSet<string> { "libc6", "libsystemd0" }, names);
        Assert.Contains("libsystemd0 (>= 252)", depends);
        var conffiles = Tool.RunWithTimeout(TimeSpan.FromMinutes(1), "sh", "-c", "dpkg-deb --ctrl-tarfile \"$0\" | tar -xOf - ./conffiles", package.Deb);
        Assert.Equal("/etc/errorwatch/errorwatch.conf\n", conffiles.StdOut);
        Assert.Equal("admin", DpkgDeb("--field", package.Deb, "Section").Trim());
    }

    /// <summary>Installed-Size is KiB (dpkg); the goal is 25 MB installed (issue 15), the ReadyToRun build took 110 MB.</summary>
    [Fact]
    public void Installed_it_takes_at_most_25_MB()
    {
        var kib = long.Parse(DpkgDeb("--field", package.Deb, "Installed-Size").Trim(), System.Globalization.CultureInfo.InvariantCulture);
        output.WriteLine($"Installed-Size: {kib} KiB ({kib * 1024 / 1e6:0.0} MB); .deb {new FileInfo(package.Deb).Length / 1e6:0.0} MB, "
            + $"errorwatch-dbgsym {new FileInfo(package.Dbgsym).Length / 1e6:0.0} MB");
        Assert.True(kib * 1024 <= 25_000_000, $"Installed-Size {kib} KiB is more than 25 MB");
        // The field measures what is in the package: the entries' apparent sizes (a directory's is 4 KiB).
        var listing = DpkgDeb("--contents", package.Deb).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        var bytes = listing.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2]).Sum(long.Parse);
        Assert.InRange(kib * 1024, bytes, bytes + listing.Length * 4096L);
    }

    /// <summary>
    /// errorwatch-dbgsym as dh_strip and dh_gencontrol make one: the symbols at the executable's
    /// build id path (where gdb, systemd-coredump and perf look), nothing else but the doc link.
    /// </summary>
    [Fact]
    public void The_debug_symbols_are_a_dbgsym_package_at_the_executables_build_id()
    {
        var dir = Directory.CreateTempSubdirectory("errorwatch-dbgsym-").FullName;
        try
        {
            DpkgDeb("-x", package.Deb, Path.Combine(dir, "program"));
            DpkgDeb("-x", package.Dbgsym, Path.Combine(dir, "symbols"));
            var executable = Path.Combine(dir, "program", "usr", "lib", "errorwatch", "errorwatch");
            var id = BuildId(executable);
            var debug = $"./usr/lib/debug/.build-id/{id[..2]}/{id[2..]}.debug";
            var files = DpkgDeb("--contents", package.Dbgsym).Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l[(l.IndexOf(" ./", StringComparison.Ordinal) + 1)..]).Where(p => !p.EndsWith('/')).ToList();
            Assert.Equal([debug, "./usr/share/doc/errorwatch-dbgsym -> errorwatch"], files);

            string Field(string name) => DpkgDeb("--field", package.Dbgsym, name).Trim();
            Assert.Equal("errorwatch-dbgsym", Field("Package"));
            Assert.Equal("errorwatch", Field("Source"));
            Assert.Equal(package.Version, Field("Version"));
            Assert.Equal($"errorwatch (= {package.Version})", Field("Depends"));
            Assert.Equal("debug", Field("Section"));
            Assert.Equal("optional", Field("Priority"));
            Assert.Equal("debug-symbols", Field("Auto-Built-Package"));
            Assert.Equal(id, Field("Build-Ids"));
            Assert.Equal("amd64", Field("Architecture"));

            // The executable is stripped (its own symbol table is gone); the file holds its DWARF
            // and symbol table, with the managed methods under their ILC names.
            var symbols = Path.Combine(dir, "symbols", debug[2..]);
            Assert.Equal(id, BuildId(symbols));
            Assert.DoesNotContain(".symtab", Tool.Run("readelf", "-S", "-W", executable).StdOut);
            var sections = Tool.Run("readelf", "-S", "-W", symbols).StdOut;
            Assert.Contains(".debug_info", sections);
            Assert.Contains(".symtab", sections);
            var nm = Tool.RunWithTimeout(TimeSpan.FromMinutes(1), "sh", "-c", "nm \"$0\" | grep -c ' ErrorWatch_Core_'", symbols);
            Assert.True(int.Parse(nm.StdOut.Trim(), System.Globalization.CultureInfo.InvariantCulture) > 1000, "no ErrorWatch_Core_ symbols in " + debug);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string BuildId(string elf)
    {
        var notes = Tool.Run("readelf", "-n", elf).StdOut;
        var id = System.Text.RegularExpressions.Regex.Match(notes, @"Build ID: ([0-9a-f]{40})").Groups[1].Value;
        Assert.True(id.Length == 40, $"{elf} has no GNU build id:\n{notes}");
        return id;
    }

    [Fact]
    public void The_man_page_renders_with_man_and_names_every_command()
    {
        var dir = Directory.CreateTempSubdirectory("errorwatch-man-").FullName;
        try
        {
            var page = Path.Combine(dir, "errorwatch.8.gz");
            var extract = Tool.RunWithTimeout(TimeSpan.FromMinutes(1), "sh", "-c",
                "dpkg-deb --fsys-tarfile \"$0\" | tar -xOf - ./usr/share/man/man8/errorwatch.8.gz > \"$1\"", package.Deb, page);
            Assert.True(extract.ExitCode == 0, extract.StdErr);
            var man = Tool.RunWithTimeout(TimeSpan.FromSeconds(30), "env", "MANWIDTH=100", "LANG=C.UTF-8", "man", "--warnings", "-l", page);
            Assert.Equal(0, man.ExitCode);
            Assert.Equal("", man.StdErr);
            var rendered = System.Text.RegularExpressions.Regex.Replace(man.StdOut, ".\b", "");
            Assert.StartsWith("ERRORWATCH(8)", rendered.TrimStart());
            foreach (var section in new[] { "NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "CONFIGURATION", "FILES", "WHY IS NOTHING REPORTED?", "SEE ALSO" })
                Assert.Contains("\n" + section + "\n", rendered);
            foreach (var command in new[] { "run", "list", "status", "watch", "notify", "check-config", "decode", "demo" })
                Assert.Contains("errorwatch " + command, rendered);
            Assert.Contains("ErrorWatch " + package.Version, rendered);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Lintian_reports_no_errors_or_warnings_for_either_package()
    {
        var r = Tool.RunWithTimeout(TimeSpan.FromMinutes(5), "lintian", "--tag-display-limit", "0", package.Deb, package.Dbgsym);
        var tags = r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
        output.WriteLine(string.Join('\n', tags));
        Assert.DoesNotContain(tags, t => t.StartsWith("E: ", StringComparison.Ordinal) || t.StartsWith("W: ", StringComparison.Ordinal));
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
    }

    [Fact]
    public void Install_sh_stages_the_same_layout_under_another_prefix_and_uninstall_keeps_the_configuration()
    {
        var dest = Directory.CreateTempSubdirectory("errorwatch-destdir-").FullName;
        try
        {
            var script = Path.Combine(ServicePaths.RepositoryRoot, "packaging", "install.sh");
            var r = Tool.RunWithTimeout(TimeSpan.FromMinutes(2), script, "--prefix", "/opt/errorwatch", "--destdir", dest, "--from", package.PublishDirectory, "--debug-symbols");
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            string At(string path) => dest + path;
            Assert.Equal(["errorwatch"], Directory.EnumerateFileSystemEntries(At("/opt/errorwatch/lib/errorwatch")).Select(Path.GetFileName));
            // --debug-symbols: where gdb looks whatever the prefix, under the executable's build id.
            var id = BuildId(At("/opt/errorwatch/lib/errorwatch/errorwatch"));
            Assert.Equal(id, BuildId(At($"/usr/lib/debug/.build-id/{id[..2]}/{id[2..]}.debug")));
            Assert.Equal("../lib/errorwatch/errorwatch", new FileInfo(At("/opt/errorwatch/bin/errorwatch")).LinkTarget);
            // systemd, journald, D-Bus and polkit do not look under /opt: their files go where they do.
            var unit = File.ReadAllText(At("/usr/local/lib/systemd/system/errorwatch.service"));
            Assert.Contains("ExecStart=/opt/errorwatch/lib/errorwatch/errorwatch run --output none", unit);
            Assert.Contains("ExecStart=/opt/errorwatch/bin/errorwatch notify", File.ReadAllText(At("/usr/local/lib/systemd/user/errorwatch-notify.service")));
            Assert.Contains("file:///opt/errorwatch/share/doc/errorwatch/report-schema.md", File.ReadAllText(At("/usr/local/lib/systemd/catalog/errorwatch.catalog")));
            Assert.True(File.Exists(At("/etc/dbus-1/system.d/io.github.errorwatch.ErrorWatch1.conf")));
            Assert.True(File.Exists(At("/usr/local/share/dbus-1/system-services/io.github.errorwatch.ErrorWatch1.service")));
            Assert.True(File.Exists(At("/usr/share/polkit-1/actions/io.github.errorwatch.ErrorWatch1.policy")));
            Assert.True(File.Exists(At("/opt/errorwatch/share/man/man8/errorwatch.8.gz")));
            Assert.True(Directory.Exists(At("/etc/errorwatch/hooks.d")));
            var version = Tool.Run(At("/opt/errorwatch/bin/errorwatch"), "--version");
            Assert.StartsWith(package.Version, version.StdOut);

            // An administrator's configuration is never overwritten.
            File.WriteAllText(At("/etc/errorwatch/errorwatch.conf"), "[Log]\nLevel=debug\n");
            r = Tool.RunWithTimeout(TimeSpan.FromMinutes(2), script, "--prefix", "/opt/errorwatch", "--destdir", dest, "--from", package.PublishDirectory);
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            Assert.Equal("[Log]\nLevel=debug\n", File.ReadAllText(At("/etc/errorwatch/errorwatch.conf")));

            r = Tool.RunWithTimeout(TimeSpan.FromMinutes(1), script, "--prefix", "/opt/errorwatch", "--destdir", dest, "--uninstall");
            Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
            var left = Directory.EnumerateFiles(dest, "*", SearchOption.AllDirectories).Select(f => f[dest.Length..]).ToList();
            Assert.Equal(["/etc/errorwatch/errorwatch.conf"], left);
        }
        finally
        {
            Directory.Delete(dest, recursive: true);
        }
    }
}
