using System.Diagnostics;
using System.Text;

namespace ErrorWatch.Tests;

/// <summary>The errorwatch executable this test build made (beside the test assembly), run as a child process.</summary>
internal static class ErrorWatchBinary
{
    public static string Path => System.IO.Path.Combine(AppContext.BaseDirectory, "errorwatch");

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
}
