using System.Diagnostics;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests.Install;

/// <summary>
/// The package tests run alone (they build with both cores and boot a whole system) and share one
/// build of the package and one cached Debian root, each made when a test first asks for it.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class InstallCollection : ICollectionFixture<PackageBuild>
{
    public const string Name = "Package and install into systemd";
}

/// <summary>
/// packaging/build-deb.sh run once for the collection (its publish output is what install.sh and the
/// container image ship too), and tests/install/debian-root.sh for the nspawn test. Failures carry
/// the scripts' own output.
/// </summary>
public sealed class PackageBuild
{
    private readonly Lazy<(string Deb, string Dbgsym)> _debs;
    private readonly Lazy<string> _root;

    public PackageBuild()
    {
        _debs = new Lazy<(string, string)>(() =>
        {
            // From the publish the other end-to-end tests ran (ErrorWatchBinary checks it is the tree's):
            // the package holds exactly what was tested, and is not published a second time.
            var (output, elapsed) = Script(TimeSpan.FromMinutes(15), "packaging/build-deb.sh", "--from", Path.GetDirectoryName(ErrorWatchBinary.Path)!);
            BuildTime = elapsed;
            // One path a line: the debug symbol package, then the program's.
            var printed = output.Trim().Split('\n').Select(l => Path.Combine(ServicePaths.RepositoryRoot, l)).ToList();
            Assert.True(printed.Count == 2 && printed.All(File.Exists), $"build-deb.sh printed '{output.Trim()}', not the paths of two packages");
            return (printed[1], printed[0]);
        });
        _root = new Lazy<string>(() =>
        {
            var (output, elapsed) = Script(TimeSpan.FromMinutes(20), "tests/install/debian-root.sh");
            RootTime = elapsed;
            var root = output.Trim().Split('\n')[^1];
            Assert.True(File.Exists(Path.Combine(root, ".errorwatch-root")), $"debian-root.sh printed '{output.Trim()}', which is not a prepared root");
            return root;
        });
    }

    /// <summary>artifacts/errorwatch_&lt;version&gt;_amd64.deb, built on first use.</summary>
    public string Deb => _debs.Value.Deb;

    /// <summary>artifacts/errorwatch-dbgsym_&lt;version&gt;_amd64.deb, built with <see cref="Deb"/>.</summary>
    public string Dbgsym => _debs.Value.Dbgsym;

    /// <summary>The publish output the package was made from (packaging/publish.sh); its symbols are in <c>PublishDirectory.dbg</c>.</summary>
    public string PublishDirectory
    {
        get
        {
            _ = Deb;
            return Path.Combine(ServicePaths.RepositoryRoot, "artifacts", "publish", "linux-x64");
        }
    }

    /// <summary>The cached debootstrap root (read-only lower layer for every boot).</summary>
    public string DebianRoot => _root.Value;

    public TimeSpan? BuildTime { get; private set; }
    public TimeSpan? RootTime { get; private set; }

    public string Version => Path.GetFileName(Deb).Split('_')[1];

    private static (string Output, TimeSpan Elapsed) Script(TimeSpan timeout, string script, params string[] args)
    {
        var clock = Stopwatch.StartNew();
        var r = Tool.RunWithTimeout(timeout, Path.Combine(ServicePaths.RepositoryRoot, script), args);
        Assert.True(r.ExitCode == 0, $"{script} failed ({r.ExitCode}):\n{r.StdOut}{r.StdErr}");
        return (r.StdOut, clock.Elapsed);
    }
}

/// <summary>
/// A test that builds and boots: needs root (mounts, loop devices, nspawn). Skipped only where those
/// cannot work, saying why; missing tools are a failure, since scripts/test.sh installs them.
/// </summary>
public sealed class InstallFactAttribute : FactAttribute
{
    public InstallFactAttribute()
    {
        Skip = Why();
    }

    internal static string? Why()
    {
        if (Interop.Libc.GetEuid() != 0)
            return "needs root: it loop-mounts a scratch filesystem and boots a container with systemd-nspawn";
        if (!File.Exists("/dev/loop-control"))
            return "needs loop devices (/dev/loop-control is missing)";
        if (!File.ReadAllText("/proc/filesystems").Contains("\toverlay\n", StringComparison.Ordinal) && !LoadOverlay())
            return "needs overlayfs for the container's copy of the Debian root (not in /proc/filesystems, modprobe overlay failed)";
        return null;
    }

    private static bool LoadOverlay()
    {
        try
        {
            return Tool.Run("modprobe", "overlay").ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false; // no modprobe
        }
    }
}
