using System.Diagnostics;
using System.Text;
using ErrorWatch.Tests.Service;

namespace ErrorWatch.Tests;

/// <summary>
/// The errorwatch executable that ships, run as a child process: what ships is what is tested. That is
/// packaging/publish.sh's NativeAOT output in the repository (scripts/test.sh publishes it before the
/// tests), or another publish output's executable named by <see cref="Variable"/>. Never the JIT
/// build's apphost that `dotnet build` leaves beside the test assembly: a missing or stale shipped
/// binary fails the test that needs it, saying how to make it.
/// </summary>
internal static class ErrorWatchBinary
{
    public const string Variable = "ERRORWATCH_BINARY";

    private static readonly Lazy<string> Resolved = new(Resolve);

    public static string Path => Resolved.Value;

    /// <summary>Where publish.sh puts the executable's symbols: OUTPUT_DIR.dbg/errorwatch.dbg.</summary>
    public static string SymbolsPath => System.IO.Path.GetDirectoryName(Path) + ".dbg/errorwatch.dbg";

    /// <summary>How to start it with <paramref name="args"/>: stdout and stderr redirected, nothing through a shell.</summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(Path)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
            psi.ArgumentList.Add(a);
        return psi;
    }

    /// <summary>Starts it with its stderr appended to <paramref name="stderr"/> (under that builder's lock) and its stdout drained, so neither pipe fills.</summary>
    public static Process StartCollecting(ProcessStartInfo psi, StringBuilder stderr)
    {
        var process = Process.Start(psi)!;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (stderr)
                    stderr.AppendLine(e.Data);
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        return process;
    }

    private static string Resolve()
    {
        const string make = "make it with packaging/publish.sh (scripts/test.sh does before it runs the tests)";
        var named = Environment.GetEnvironmentVariable(Variable);
        if (!string.IsNullOrEmpty(named))
            return File.Exists(named)
                ? System.IO.Path.GetFullPath(named)
                : throw new FileNotFoundException($"{Variable}={named} names no file; unset it to test the repository's publish, or {make}", named);

        var shipped = System.IO.Path.Combine(ServicePaths.RepositoryRoot, "artifacts", "publish", "linux-x64", "errorwatch");
        if (!File.Exists(shipped))
            throw new FileNotFoundException(
                $"The shipped errorwatch is missing: {shipped}. The end-to-end tests run the NativeAOT executable that ships, " +
                $"never the JIT build: {make}, or name one with {Variable}=PATH.", shipped);
        var built = File.GetLastWriteTimeUtc(shipped);
        if (NewestSource() is (string source, DateTime changed) && changed > built)
            throw new InvalidOperationException(
                $"The shipped errorwatch ({shipped}, published {built:u}) is older than {source} (changed {changed:u}): " +
                $"the tests would run an older product than this tree: publish it again with packaging/publish.sh.");
        return shipped;
    }

    /// <summary>The product's most recently changed source (src/ and the shared build properties; build outputs aside).</summary>
    private static (string Path, DateTime Changed)? NewestSource()
    {
        var root = ServicePaths.RepositoryRoot;
        return Directory.EnumerateFiles(System.IO.Path.Combine(root, "src"), "*", SearchOption.AllDirectories)
            .Select(f => System.IO.Path.GetRelativePath(root, f))
            .Where(f => !f.Split('/').Any(part => part is "bin" or "obj"))
            .Append("Directory.Build.props")
            .Where(f => File.Exists(System.IO.Path.Combine(root, f)))
            .Select(f => ((string Path, DateTime Changed)?)(f, File.GetLastWriteTimeUtc(System.IO.Path.Combine(root, f))))
            .MaxBy(s => s!.Value.Changed);
    }
}
