using ErrorWatch.Filesystems;
using ErrorWatch.Kernel;

namespace ErrorWatch.Watching;

/// <summary>
/// A watched superblock and the fanotify group holding its FAN_FS_ERROR mark: its own group, so the group
/// an event is read from names its superblock; or, once the kernel's group limit is reached, the
/// inventory's one shared spill group, whose events are told apart by fsid (unique within it).
/// </summary>
public sealed class SuperblockWatch : IDisposable
{
    internal SuperblockWatch(Superblock superblock, FanotifyGroup group, bool sharesGroup = false)
    {
        Superblock = superblock;
        Group = group;
        SharesGroup = sharesGroup;
        Since = DateTimeOffset.UtcNow;
    }

    public Superblock Superblock { get; }
    internal FanotifyGroup Group { get; }
    /// <summary>In the shared spill group (the group limit was reached): its events are matched by fsid, and the group outlives it.</summary>
    public bool SharesGroup { get; }
    public DateTimeOffset Since { get; }

    /// <summary>Kernel events read from this group (overflows included).</summary>
    public long EventsRead => Interlocked.Read(ref _eventsRead);
    /// <summary>Sum of error_count over those events.</summary>
    public long ErrorsRead => Interlocked.Read(ref _errorsRead);

    internal long _eventsRead;
    internal long _errorsRead;

    /// <summary>True while the kernel still holds our mark, i.e. the superblock still exists.</summary>
    internal bool MarkAlive() => Group.MarkedSuperblocks().Contains(Superblock.Device);

    /// <summary>Closes its own group; a shared group belongs to the inventory.</summary>
    public void Dispose()
    {
        if (!SharesGroup)
            Group.Dispose();
    }
}
