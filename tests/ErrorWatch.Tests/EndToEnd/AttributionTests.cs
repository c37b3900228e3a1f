using System.Diagnostics;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Modules;
using ErrorWatch.Modules.Xfs;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>Blaming the right filesystem: cloned images, filesystems that come and go, XFS.</summary>
[Collection(ScratchCollection.Name)]
public sealed class AttributionTests
{
    [LoopFact]
    public void Error_on_the_second_of_two_cloned_images_is_attributed_to_the_second()
    {
        using var scratch = new ScratchDirectory();
        var (original, clone) = scratch.Ext4Twins("original");

        using var daemon = DaemonHarness.Watching(original.MountPoint, clone.MountPoint);
        var watched = daemon.Daemon.Inventory.Watches.Select(w => w.Superblock).ToList();
        var a = Assert.Single(watched, s => s.Device == original.Device);
        var b = Assert.Single(watched, s => s.Device == clone.Device);
        // The premise: same UUID, so the kernel gives both the same fsid.
        Assert.Equal(a.Uuid, b.Uuid);
        Assert.Equal(a.Fsid, b.Fsid);

        var baselineOriginal = original.ErrorsCount;
        var baselineClone = clone.ErrorsCount;
        clone.TriggerFsError();

        var reports = daemon.CollectMatchingErrorsCount(clone, baselineClone, atLeast: 1);
        var report = Assert.Single(reports);
        Assert.Equal(clone.LoopDevice, report.Filesystem.Device);
        Assert.Equal(clone.Device, report.Filesystem.MajorMinor);
        Assert.Equal([clone.MountPoint], report.Filesystem.Mountpoints.Select(m => m.Text));
        Assert.Equal(baselineOriginal, original.ErrorsCount);
        Assert.False(daemon.Reports.TryTake(out _, 500), "the original filesystem must not get a report");
    }

    public static TheoryData<string> TrackingModes => new() { "fanotify", "mountinfo" };

    [LoopFact]
    public unsafe void A_filesystem_left_alone_by_configuration_is_never_opened_so_its_umount_never_fails()
    {
        using var scratch = new ScratchDirectory();
        var watched = scratch.Ext4("selected");
        var other = scratch.Ext4("left-alone");
        // Our own fanotify group sees every open(2) under the other mount (O_PATH opens would not
        // pin it either way; a plain open does, and is what identification uses first).
        var group = Interop.Fanotify.Init(Interop.Fanotify.FAN_CLASS_NOTIF | 0x1 /* FAN_CLOEXEC */ | 0x2 /* FAN_NONBLOCK */, 0);
        Assert.True(group >= 0, "fanotify_init");
        try
        {
            var path = System.Text.Encoding.UTF8.GetBytes(other.MountPoint + "\0");
            fixed (byte* p = path)
                Assert.Equal(0, Interop.Fanotify.Mark(group, Interop.Fanotify.FAN_MARK_ADD | Interop.Fanotify.FAN_MARK_MOUNT, 0x20 /* FAN_OPEN */ | 0x40000000 /* FAN_ONDIR: the mount root is a directory */, -100, p));
            using var daemon = new DaemonHarness(new DaemonOptions
            {
                Watch = new WatchOptions { Include = [watched.MountPoint] },
                RescanInterval = TimeSpan.FromMilliseconds(200),
            });
            Thread.Sleep(1000); // five rescans, each of which used to identify it again
            Assert.Single(daemon.Daemon.Inventory.Watches);
            Assert.Equal(0, OpensBy(group, Environment.ProcessId));
            Assert.True(Tool.RunWithTimeout(TimeSpan.FromSeconds(10), "umount", other.MountPoint).ExitCode == 0);
            other.Mount(other.MountOptions);
        }
        finally
        {
            Interop.Libc.Close(group);
        }
    }

    /// <summary>Reads the group's queue: how many FAN_OPEN events came from <paramref name="pid"/> (closing each event's fd).</summary>
    private static unsafe int OpensBy(int group, int pid)
    {
        var buffer = new byte[64 * 1024];
        var opens = 0;
        fixed (byte* b = buffer)
        {
            while (true)
            {
                var n = (int)Interop.Libc.Read(group, b, buffer.Length);
                if (n <= 0)
                    return opens;
                for (var off = 0; off + 24 <= n;)
                {
                    // struct fanotify_event_metadata { u32 event_len; u8 vers, reserved; u16 metadata_len; u64 mask; s32 fd; s32 pid; }
                    var length = *(uint*)(b + off);
                    var fd = *(int*)(b + off + 16);
                    if (*(int*)(b + off + 20) == pid)
                        opens++;
                    if (fd >= 0)
                        Interop.Libc.Close(fd);
                    off += (int)length;
                }
            }
        }
    }

    [LoopTheory]
    [MemberData(nameof(TrackingModes))]
    public void A_filesystem_mounted_after_start_is_watched_within_a_second_and_reports(string tracking)
    {
        using var scratch = new ScratchDirectory();
        var mountPoint = Path.Combine(scratch.Path, "late");
        using var daemon = new DaemonHarness(new DaemonOptions
        {
            Watch = new WatchOptions { Include = [mountPoint] },
            FanotifyMountEvents = tracking == "fanotify",
            MountSource = tracking == "fanotify" ? null : MountSource.Mountinfo,
        });
        Assert.Equal(tracking == "fanotify" ? MountTracking.FanotifyMountNamespace : MountTracking.MountinfoPoll, daemon.Daemon.MountTracker.Mode);
        Assert.Empty(daemon.Daemon.Inventory.Watches);

        var fs = scratch.Ext4("late");
        var clock = Stopwatch.StartNew();
        while (!daemon.Daemon.Inventory.Watches.Any(w => w.Superblock.Device == fs.Device) && clock.Elapsed < TimeSpan.FromSeconds(5))
            Thread.Sleep(10);
        var markedAfter = clock.Elapsed;
        Assert.True(markedAfter < TimeSpan.FromSeconds(1), $"marked after {markedAfter.TotalMilliseconds:0} ms");

        var baseline = fs.ErrorsCount;
        fs.TriggerFsError();
        var reports = daemon.CollectMatchingErrorsCount(fs, baseline, atLeast: 1);
        Assert.Equal(fs.LoopDevice, Assert.Single(reports).Filesystem.Device);
    }

    [LoopFact]
    public void A_filesystem_selected_by_mount_point_stays_watched_after_a_lazy_umount_while_a_bind_mount_keeps_it()
    {
        // umount -l of the selected path while a bind mount holds the filesystem: the filesystem lives
        // on, and it is still the one the admin chose. It used to be dropped as "not selected".
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("bound");
        var bind = Directory.CreateDirectory(Path.Combine(scratch.Path, "bind")).FullName;
        Tool.Check("mount", "--bind", fs.MountPoint, bind);
        try
        {
            using var daemon = new DaemonHarness(new DaemonOptions
            {
                Watch = new WatchOptions { Include = [fs.MountPoint] },
                RescanInterval = TimeSpan.FromMilliseconds(200),
            });
            var watch = Assert.Single(daemon.Daemon.Inventory.Watches, w => w.Superblock.Device == fs.Device);

            Tool.Check("umount", "-l", fs.MountPoint);
            var clock = Stopwatch.StartNew();
            while (watch.Superblock.Mounts.Any(m => m.MountPoint.Text == fs.MountPoint) && clock.Elapsed < TimeSpan.FromSeconds(5))
                Thread.Sleep(20);
            Thread.Sleep(600); // three rescans more
            Assert.Contains(daemon.Daemon.Inventory.Watches, w => w.Superblock.Device == fs.Device);

            var before = fs.ErrorsCount;
            fs.TriggerFsError("after the lazy umount");
            var report = Assert.Single(daemon.CollectMatchingErrorsCount(fs, before, atLeast: 1));
            Assert.Equal(fs.Device, report.Filesystem.MajorMinor);
            Assert.Equal([bind], report.Filesystem.Mountpoints.Select(m => m.Text));
        }
        finally
        {
            Tool.Run("umount", bind);
        }
    }

    [LoopFact]
    public void Events_read_before_an_unmount_are_reported_and_the_filesystem_is_dropped()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("leaving");
        var device = fs.Device;
        using var daemon = DaemonHarness.Watching(fs.MountPoint);
        Assert.Contains(daemon.Daemon.Inventory.Watches, w => w.Superblock.Device == device);

        fs.TriggerFsError();
        fs.TriggerFsError();
        fs.Unmount(); // the daemon holds no fd on the mount, so this must not be EBUSY

        var reports = daemon.Collect(r => r.Aggregate(0UL, (s, x) => s + x.Error.Count) >= 2);
        Assert.Equal(2UL, reports.Aggregate(0UL, (s, r) => s + r.Error.Count));
        Assert.All(reports, r => Assert.Equal(device, r.Filesystem.MajorMinor));

        var clock = Stopwatch.StartNew();
        while (daemon.Daemon.Inventory.Watches.Any(w => w.Superblock.Device == device) && clock.Elapsed < TimeSpan.FromSeconds(5))
            Thread.Sleep(10);
        Assert.DoesNotContain(daemon.Daemon.Inventory.Watches, w => w.Superblock.Device == device);
    }

    [LoopFact]
    public void Xfs_is_watched_with_the_xfs_decoder_and_a_note_that_this_kernel_cannot_report_it()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("xfs");
        var uuid = Guid.Parse(Tool.Check("blkid", "-p", "-s", "UUID", "-o", "value", fs.Image).Trim());
        using var daemon = DaemonHarness.Watching(fs.MountPoint);

        var watch = Assert.Single(daemon.Daemon.Inventory.Watches);
        Assert.Equal("xfs", watch.Superblock.FsType);
        Assert.Equal(XfsModule.SuperMagic, watch.Superblock.Magic);
        Assert.Equal(uuid, watch.Superblock.Uuid);
        // XFS's fsid is its device number (huge_encode_dev), unlike ext4's UUID-derived one.
        var dev = fs.Device;
        Assert.Equal((int)((dev.Minor & 0xff) | (dev.Major << 8) | ((dev.Minor & ~0xffu) << 12)), watch.Superblock.Fsid.Val0);
        Assert.Equal("xfs", FilesystemModules.CreateDefault().For(watch.Superblock.Magic).Decoder.Name);
        if (daemon.Capabilities.KernelVersion < new Version(7, 0))
            Assert.Contains(daemon.Capabilities.Notes, n => n.Contains("XFS") && n.Contains("7.0"));
    }

    [LoopFact]
    public void The_root_filesystem_and_every_other_ext4_or_xfs_filesystem_are_watched_by_default()
    {
        using var scratch = new ScratchDirectory();
        var ext4 = scratch.Ext4("one");
        var xfs = scratch.Xfs("two");
        using var daemon = new DaemonHarness(new DaemonOptions());

        var expected = MountTable.Read(MountTable.Detect())
            .Where(m => WatchOptions.DefaultTypes.Contains(m.FsType))
            .Select(m => m.Device).Distinct().ToHashSet();
        var watched = daemon.Daemon.Inventory.Watches.Select(w => w.Superblock.Device).ToHashSet();
        var skipped = daemon.Daemon.Inventory.Skipped.Select(s => s.Device).ToHashSet();
        Assert.Contains(ext4.Device, watched);
        Assert.Contains(xfs.Device, watched);
        // Every ext4/XFS superblock is either watched or listed as skipped with a reason.
        Assert.Empty(expected.Except(watched).Except(skipped));
        Assert.Equal("accepted", daemon.Capabilities.FsErrorMarks);
    }
}

/// <summary>A theory that needs root and loop devices (see <see cref="LoopFactAttribute"/>).</summary>
public sealed class LoopTheoryAttribute : TheoryAttribute
{
    public LoopTheoryAttribute() => Skip = new LoopFactAttribute().Skip;
}
