using ErrorWatch.Interop;

namespace ErrorWatch;

/// <summary>
/// Small state files replaced whole: temporary file, fsync, rename, fsync of the directory. A
/// crash leaves the old or the new content, never a mix. State names files, so what is made here
/// is private (0600 files, 0700 directories), whatever the umask the daemon was started with.
/// </summary>
public static class AtomicFile
{
    public const UnixFileMode PrivateFile = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    public const UnixFileMode PrivateDirectory = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    /// <summary>Makes <paramref name="path"/> and any missing parent 0700; one that exists keeps its mode.</summary>
    public static void CreateDirectory(string path)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("ErrorWatch's state is kept on Linux only");
        Directory.CreateDirectory(path, PrivateDirectory);
    }

    public static void Write(string path, ReadOnlySpan<byte> bytes)
    {
        if (!OperatingSystem.IsLinux())
            throw new PlatformNotSupportedException("ErrorWatch's state is kept on Linux only");
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        CreateDirectory(directory);
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, new FileStreamOptions
        {
            Mode = FileMode.Create, Access = FileAccess.Write, Share = FileShare.None, Options = FileOptions.WriteThrough,
            UnixCreateMode = PrivateFile,
        }))
        {
            stream.Write(bytes);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
        SyncDirectory(directory);
    }

    /// <summary>fsync of the directory makes the rename itself durable.</summary>
    private static void SyncDirectory(string directory)
    {
        var fd = Libc.Open(directory, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        if (fd < 0)
            return;
        using var _ = new FileDescriptor(fd);
        Libc.FSync(fd);
    }
}
