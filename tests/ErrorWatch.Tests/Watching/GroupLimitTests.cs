using ErrorWatch.Kernel;
using ErrorWatch.Tests.EndToEnd;

namespace ErrorWatch.Tests.Watching;

/// <summary>
/// Past fs.fanotify.max_user_groups (128 by default, for every process of the user together), the
/// filesystems that get no group of their own are marked in the shared spill group and their errors
/// still reach the right filesystem. The limit is lowered for the test to what root already uses plus
/// three, and set back afterwards, even after a failure.
/// </summary>
[Collection(ScratchCollection.Name)]
public class GroupLimitTests
{
    private const string Limit = "/proc/sys/fs/fanotify/max_user_groups";

    [LoopFact]
    public void Past_the_group_limit_filesystems_share_the_spill_group_and_each_error_is_reported_on_its_own_filesystem()
    {
        using var scratch = new ScratchDirectory();
        var filesystems = Enumerable.Range(1, 4).Select(i => scratch.Ext4($"limit{i}")).ToList();
        var before = File.ReadAllText(Limit).Trim();
        try
        {
            // Room for three more groups: the spill group, and two of: an own group each, the mount tracker's.
            File.WriteAllText(Limit, (GroupsInUse(int.Parse(before)) + 3).ToString());
            using var daemon = DaemonHarness.Watching([.. filesystems.Select(f => f.MountPoint)]);

            var watches = daemon.Daemon.Inventory.Watches;
            Assert.DoesNotContain(daemon.Daemon.Inventory.Skipped, s => filesystems.Any(f => s.MountPoint == f.MountPoint));
            Assert.Equal(filesystems.Select(f => f.LoopDevice).Order(), watches.Select(w => w.Superblock.DevicePath).Order());
            var shared = watches.Where(w => w.SharesGroup).ToList();
            Assert.InRange(shared.Count, 2, 3);
            Assert.Single(shared.Select(w => w.Group).Distinct());

            var baselines = filesystems.ToDictionary(f => f.LoopDevice, f => f.ErrorsCount);
            foreach (var fs in filesystems)
                fs.TriggerFsError($"group limit {fs.LoopDevice}");
            var reports = daemon.Collect(got => filesystems.All(f => got.Any(r => r.Source == "fanotify" && r.Filesystem.Device == f.LoopDevice)));

            foreach (var fs in filesystems)
            {
                var mine = reports.Where(r => r.Source == "fanotify" && r.Filesystem.Device == fs.LoopDevice).ToList();
                Assert.True(mine.Count == 1, $"{fs.LoopDevice}: {mine.Count} fanotify report(s)");
                Assert.Equal(1UL, mine[0].Error.Count);
                Assert.Null(mine[0].Details["fsid_mismatch"]);
            }
            Assert.Equal(0, daemon.Daemon.UnmatchedEvents);
        }
        finally
        {
            File.WriteAllText(Limit, before);
        }
    }

    /// <summary>How many fanotify groups root holds now: the limit minus how many more can be made.</summary>
    private static int GroupsInUse(int limit)
    {
        var made = new List<FanotifyGroup>();
        try
        {
            while (made.Count <= limit && FanotifyGroup.Create(FanotifyGroup.ErrorGroupFlags, out _) is { } group)
                made.Add(group);
            return limit - made.Count;
        }
        finally
        {
            foreach (var group in made)
                group.Dispose();
        }
    }
}
