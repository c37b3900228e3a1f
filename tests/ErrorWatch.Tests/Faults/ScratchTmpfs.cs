using ErrorWatch.Cli.Demo;

namespace ErrorWatch.Tests.Faults;

/// <summary>A small tmpfs of the test's own, to run the state directory out of space or make it read-only; unmounted on dispose.</summary>
public sealed class ScratchTmpfs : IDisposable
{
    public ScratchTmpfs(string size = "512k", bool readOnly = false)
    {
        Path = Directory.CreateTempSubdirectory("errorwatch-tmpfs-").FullName;
        var r = Tool.Run("mount", "-t", "tmpfs", "-o", $"size={size},mode=0700{(readOnly ? ",ro" : "")}", "errorwatch-test", Path);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"mount tmpfs on {Path}: {r.StdErr}");
    }

    public string Path { get; }

    private string Filler => System.IO.Path.Combine(Path, "filler");

    /// <summary>Takes every free byte (the next write anywhere on it fails with ENOSPC).</summary>
    public void Fill()
    {
        using var f = new FileStream(Filler, FileMode.Append, FileAccess.Write, FileShare.None, 1, FileOptions.None);
        var block = new byte[4096];
        try
        {
            while (true)
                f.Write(block);
        }
        catch (IOException)
        {
        }
    }

    public void Free() => File.Delete(Filler);

    public void Remount(bool readOnly)
    {
        var r = Tool.Run("mount", "-o", readOnly ? "remount,ro" : "remount,rw", Path);
        if (r.ExitCode != 0)
            throw new InvalidOperationException($"remount {Path}: {r.StdErr}");
    }

    public void Dispose()
    {
        Tool.Run("umount", Path);
        try
        {
            Directory.Delete(Path);
        }
        catch (IOException)
        {
        }
    }
}
