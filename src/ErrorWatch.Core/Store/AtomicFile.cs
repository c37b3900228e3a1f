using ErrorWatch.Interop;

namespace ErrorWatch.Store;

/// <summary>
/// Small state files replaced whole: temporary file, fsync, rename, fsync of the directory. A
/// crash leaves the old or the new content, never a mix.
/// </summary>
public static class AtomicFile
{
    public static void Write(string path, ReadOnlySpan<byte> bytes)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        Directory.CreateDirectory(directory);
        var temporary = path + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.WriteThrough))
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
