using ErrorWatch.Filesystems;

namespace ErrorWatch.Cli.Demo;

/// <summary>
/// A filesystem image of our own, loop-mounted in a directory of our own: the only kind of
/// filesystem the demo and the tests ever corrupt. Every destructive method checks that the
/// loop device still backs our image and is mounted where we mounted it.
/// Dispose unmounts and detaches even after failures.
/// </summary>
public sealed class ScratchFilesystem : IDisposable
{
    private bool _mounted;
    private bool _disposed;

    private ScratchFilesystem(string type, string image, string loopDevice, string mountPoint)
    {
        Type = type;
        Image = image;
        LoopDevice = loopDevice;
        MountPoint = mountPoint;
    }

    public string Type { get; }
    public string Image { get; }
    public string LoopDevice { get; }
    public string MountPoint { get; }
    public string MountOptions { get; private set; } = "";
    public string KernelName => Path.GetFileName(LoopDevice);

    /// <summary>Why scratch filesystems cannot be made here (not root, no loop devices, missing tools), or null.</summary>
    public static string? Unavailable(string type = "ext4")
    {
        if (Environment.UserName != "root" && Interop_GetEuid() != 0)
            return "needs root (loop devices and mounts)";
        if (!File.Exists("/dev/loop-control"))
            return "no loop devices (/dev/loop-control missing)";
        var mkfs = type == "xfs" ? "mkfs.xfs" : "mkfs.ext4";
        if (!Tool.Exists(mkfs) || !Tool.Exists("losetup"))
            return $"{mkfs} or losetup not installed";
        return null;
    }

    private static uint Interop_GetEuid() => ErrorWatch.Interop.Libc.GetEuid();

    /// <summary>
    /// Makes an image in <paramref name="directory"/>, formats it, lets <paramref name="prepare"/>
    /// populate it while mounted, then mounts it with <paramref name="mountOptions"/>.
    /// </summary>
    public static ScratchFilesystem Create(string directory, string name, string type, int sizeMiB,
        string[] mkfsOptions, string mountOptions, Action<string>? prepare = null)
    {
        Directory.CreateDirectory(directory);
        var image = Path.Combine(directory, name + ".img");
        using (var f = File.Create(image))
            f.SetLength((long)sizeMiB << 20);
        var mkfs = type == "xfs" ? "mkfs.xfs" : "mkfs." + type;
        Tool.Check(mkfs, [.. (type == "xfs" ? new[] { "-q", "-f" } : ["-q", "-F"]), .. mkfsOptions, image]);
        return Attach(image, Path.Combine(directory, name), type, mountOptions, prepare);
    }

    /// <summary>Loop-attaches an image of ours (e.g. a copy of another scratch image) and mounts it.</summary>
    public static ScratchFilesystem Attach(string image, string mountPoint, string type, string mountOptions, Action<string>? prepare = null)
    {
        var loop = Tool.Check("losetup", "--find", "--show", image).Trim();
        Directory.CreateDirectory(mountPoint);
        var fs = new ScratchFilesystem(type, image, loop, mountPoint);
        try
        {
            if (prepare is not null)
            {
                fs.Mount("");
                prepare(mountPoint);
                fs.Unmount();
            }
            fs.Mount(mountOptions);
        }
        catch
        {
            fs.Dispose();
            throw;
        }
        return fs;
    }

    public DeviceNumber Device
    {
        get
        {
            var text = File.ReadAllText($"/sys/block/{KernelName}/dev").Trim();
            return DeviceNumber.TryParse(text, out var d) ? d : throw new InvalidOperationException($"bad dev '{text}'");
        }
    }

    public void Mount(string options)
    {
        var args = new List<string> { "-t", Type };
        if (options.Length > 0)
            args.AddRange(["-o", options]);
        args.AddRange([LoopDevice, MountPoint]);
        Tool.Check("mount", [.. args]);
        MountOptions = options;
        _mounted = true;
    }

    public void Unmount()
    {
        if (!_mounted)
            return;
        Tool.Check("umount", MountPoint);
        _mounted = false;
    }

    /// <summary>mount -o remount,OPTIONS (remount,abort shuts ext4 down with ESHUTDOWN).</summary>
    public void Remount(string options)
    {
        EnsureOurs();
        Tool.Check("mount", "-o", "remount," + options, MountPoint);
    }

    /// <summary>Runs a debugfs write request on the unmounted image (ext4 only).</summary>
    public void Debugfs(string request)
    {
        if (_mounted)
            throw new InvalidOperationException("debugfs -w runs on the unmounted image only");
        EnsureOurs();
        var result = Tool.Run("debugfs", "-w", "-R", request, LoopDevice);
        // debugfs exits 0 even when a request fails; anything on stderr besides its banner is a failure.
        var complaints = result.StdErr.Split('\n').Where(l => l.Length > 0 && !l.StartsWith("debugfs ", StringComparison.Ordinal)).ToList();
        if (result.ExitCode != 0 || complaints.Count > 0)
            throw new InvalidOperationException($"debugfs '{request}' failed: {string.Join("; ", complaints)}");
    }

    /// <summary>Unmounts, applies debugfs write requests to the image, and mounts again with the same options.</summary>
    public void CorruptOffline(params string[] debugfsRequests)
    {
        var options = MountOptions;
        Unmount();
        foreach (var request in debugfsRequests)
            Debugfs(request);
        Mount(options);
    }

    /// <summary>Writes /sys/fs/ext4/&lt;dev&gt;/trigger_fs_error: only on our own ext4 mounted errors=continue.</summary>
    /// <param name="mayShutDown">Allow errors=remount-ro/panic mounts (the filesystem goes read-only; never use with panic).</param>
    public void TriggerFsError(string message = "errorwatch test", bool mayShutDown = false)
    {
        EnsureOurs();
        var options = MountOptions.Split(',');
        if (Type != "ext4" || !(options.Contains("errors=continue") || (mayShutDown && options.Contains("errors=remount-ro"))))
            throw new InvalidOperationException("trigger_fs_error only on an ext4 scratch filesystem mounted errors=continue (or errors=remount-ro when asked to shut it down)");
        // From a child process, as a real error would come from some other process (the report's pid).
        var result = Tool.RunWithInput(message, TimeSpan.FromSeconds(10), "tee", $"/sys/fs/ext4/{KernelName}/trigger_fs_error");
        if (result.ExitCode != 0)
            throw new InvalidOperationException($"trigger_fs_error failed: {result.StdErr.Trim()}");
    }

    /// <summary>An error storm: <paramref name="count"/> writes to trigger_fs_error from this process (errors=continue only).</summary>
    public void TriggerFsErrors(int count, CancellationToken cancel = default)
    {
        EnsureOurs();
        if (Type != "ext4" || !MountOptions.Split(',').Contains("errors=continue"))
            throw new InvalidOperationException("trigger_fs_error storms only on an ext4 scratch filesystem mounted errors=continue");
        var trigger = $"/sys/fs/ext4/{KernelName}/trigger_fs_error";
        for (var i = 0; i < count && !cancel.IsCancellationRequested; i++)
            File.WriteAllText(trigger, "errorwatch storm");
    }

    /// <summary>FS_IOC_SHUTDOWN through xfs_io (works on ext4 and XFS): our own scratch filesystem only.</summary>
    public void ShutDown()
    {
        EnsureOurs();
        Tool.Check("xfs_io", "-x", "-c", "shutdown", MountPoint);
    }

    public ulong ErrorsCount => ulong.Parse(File.ReadAllText($"/sys/fs/ext4/{KernelName}/errors_count").Trim());

    /// <summary>
    /// errors_count once it reaches <paramref name="atLeast"/>, or as it is after <paramref name="within"/>.
    /// ext4 (errors=continue) copies its error count into the superblock that sysfs reads from deferred
    /// work after each error, so right after an error the count can still be one short.
    /// </summary>
    public ulong ErrorsCountReaching(ulong atLeast, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        ulong count;
        while ((count = ErrorsCount) < atLeast && DateTime.UtcNow < deadline)
            Thread.Sleep(20);
        return count;
    }

    /// <summary>Refuses to act unless our loop device still backs our image.</summary>
    private void EnsureOurs()
    {
        var backing = File.ReadAllText($"/sys/block/{KernelName}/loop/backing_file").Trim();
        if (Path.GetFullPath(backing) != Path.GetFullPath(Image))
            throw new InvalidOperationException($"{LoopDevice} now backs {backing}, not our {Image}; refusing");
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_mounted)
        {
            var r = Tool.Run("umount", MountPoint);
            if (r.ExitCode != 0)
                Tool.Run("umount", "-l", MountPoint); // last resort: detach now, release when unused
            _mounted = false;
        }
        Tool.Run("losetup", "-d", LoopDevice);
        try
        {
            File.Delete(Image);
            Directory.Delete(MountPoint);
        }
        catch (IOException)
        {
        }
    }
}
