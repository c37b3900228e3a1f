using ErrorWatch.Filesystems;
using ErrorWatch.Kernel;

namespace ErrorWatch.Watching;

/// <summary>A watched superblock: its own fanotify group holding its one FAN_FS_ERROR mark.</summary>
public sealed class SuperblockWatch : IDisposable
{
    internal SuperblockWatch(Superblock superblock, FanotifyGroup group)
    {
        Superblock = superblock;
        Group = group;
        Since = DateTimeOffset.UtcNow;
    }

    public Superblock Superblock { get; }
    internal FanotifyGroup Group { get; }
    public DateTimeOffset Since { get; }

    /// <summary>Kernel events read from this group (overflows included).</summary>
    public long EventsRead => Interlocked.Read(ref _eventsRead);
    /// <summary>Sum of error_count over those events.</summary>
    public long ErrorsRead => Interlocked.Read(ref _errorsRead);

    internal long _eventsRead;
    internal long _errorsRead;

    /// <summary>True while the kernel still holds our mark, i.e. the superblock still exists.</summary>
    internal bool MarkAlive() => Group.MarkedSuperblocks().Contains(Superblock.Device);

    public void Dispose() => Group.Dispose();
}
