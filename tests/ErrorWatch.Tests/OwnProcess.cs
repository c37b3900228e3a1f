using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ErrorWatch.Tests;

/// <summary>Ending the processes a test started: by their PID only, never by name.</summary>
internal static partial class OwnProcess
{
    /// <summary>SIGTERM (so daemons close their files and sockets), SIGKILL after <paramref name="grace"/>; then disposes.</summary>
    public static void Stop(Process? process, TimeSpan? grace = null)
    {
        if (process is null)
            return;
        try
        {
            if (!process.HasExited)
            {
                _ = Kill(process.Id, 15);
                if (!process.WaitForExit(grace ?? TimeSpan.FromSeconds(5)))
                    process.Kill(entireProcessTree: false);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException)
        {
            // Never started, or already reaped.
        }
        process.Dispose();
    }

    /// <summary>Alive means not gone and not a zombie (a killed orphan may wait for PID 1 to reap it).</summary>
    public static bool Alive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2] != 'Z';
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>Sends <paramref name="signal"/> to a process this test started.</summary>
    public static bool Signal(int pid, int signal) => Kill(pid, signal) == 0;

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int Kill(int pid, int signal);
}
