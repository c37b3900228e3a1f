using System.Diagnostics;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>`errorwatch decode /dev/stdin --output json`: alive, and known by its PID, before it has read its input.</summary>
internal sealed class DecodeStandardInput : IDisposable
{
    private DecodeStandardInput(Process process) => Process = process;

    public Process Process { get; }

    public static DecodeStandardInput Start()
    {
        var psi = ErrorWatchBinary.StartInfo(["decode", "/dev/stdin", "--output", "json"]);
        psi.RedirectStandardInput = true;
        return new(Process.Start(psi)!);
    }

    /// <summary>Until its main thread is blocked in read(2) on its standard input: started in full, everything it loads loaded.</summary>
    public void WaitUntilReading()
    {
        var pid = Process.Id;
        var stdin = new FileInfo($"/proc/{pid}/fd/0").LinkTarget;
        var clock = Stopwatch.StartNew();
        string? syscall = null;
        while (clock.Elapsed < TimeSpan.FromSeconds(30) && !Process.HasExited)
        {
            try
            {
                // "0 0x<fd> ..." while in read(2); the file it opened, /dev/stdin, is the same pipe as fd 0.
                syscall = File.ReadAllText($"/proc/{pid}/syscall");
                var fields = syscall.Split(' ');
                if (fields.Length > 1 && fields[0] == "0" && new FileInfo($"/proc/{pid}/fd/{Convert.ToInt32(fields[1], 16)}").LinkTarget == stdin)
                    return;
            }
            catch (IOException)
            {
                // The fd read from went away between the two reads: look again.
            }
            Thread.Sleep(20);
        }
        Assert.Fail($"errorwatch decode did not block reading its standard input within 30 s (exited: {Process.HasExited}; last /proc/{pid}/syscall: {syscall?.Trim()})");
    }

    public (int ExitCode, string Stdout, string Stderr) Finish(byte[] input)
    {
        var stderr = Process.StandardError.ReadToEndAsync();
        var stdout = Process.StandardOutput.ReadToEndAsync();
        Process.StandardInput.BaseStream.Write(input);
        Process.StandardInput.Close();
        Assert.True(Process.WaitForExit(TimeSpan.FromSeconds(30)), "errorwatch decode did not exit within 30 s of the end of its input");
        return (Process.ExitCode, stdout.Result, stderr.Result);
    }

    public void Dispose()
    {
        if (!Process.HasExited)
            Process.StandardInput.Close(); // end of input: it decodes nothing and exits
        OwnProcess.Stop(Process);
    }
}
