using System.Text.RegularExpressions;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Modules.Xfs;
using ErrorWatch.Interop;
using ErrorWatch.Tests.EndToEnd;

namespace ErrorWatch.Tests.Modules.Xfs;

/// <summary>
/// The XFS health ioctls against the real kernel, on scratch XFS images of our own (root, loop
/// devices). The corruption is one zeroed directory block magic, written with xfs_db while unmounted;
/// since 6.9 the failing read marks the directory inode sick (XFS_BS_SICK_DIR).
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed partial class XfsIoctlTests
{
    [LoopFact]
    public void Geometry_and_ag_geometry_agree_with_xfs_info()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("geometry");
        using var root = OpenRoot(fs);
        var info = Tool.Check("xfs_info", fs.MountPoint);

        Assert.Equal(0, XfsIoctl.Geometry(root.Fd, out var g));

        Assert.Equal(5, g.Version);
        Assert.True(g.HasHealth);
        Assert.Equal(uint.Parse(AgCount().Match(info).Groups[1].Value), g.AgCount);
        Assert.Equal(uint.Parse(AgSize().Match(info).Groups[1].Value), g.AgBlocks);
        Assert.Equal(4096u, g.BlockSize);
        Assert.Equal(info.Contains("rmapbt=1"), g.HasRmapBt);
        Assert.Equal(0u, g.Sick);
        Assert.Equal(Guid.Parse(Tool.Check("blkid", "-p", "-s", "UUID", "-o", "value", fs.Image).Trim()), g.Uuid);

        ulong blocks = 0;
        for (var agno = 0u; agno < g.AgCount; agno++)
        {
            Assert.Equal(0, XfsIoctl.AgGeometry(root.Fd, agno, out var ag));
            Assert.Equal(agno, ag.AgNumber);
            Assert.InRange(ag.Length, 1u, g.AgBlocks);
            Assert.InRange(ag.FreeBlocks, 1u, ag.Length);
            Assert.Equal(0u, ag.Sick);
            blocks += ag.Length;
        }
        Assert.Equal(ulong.Parse(DataBlocks().Match(info).Groups[1].Value), blocks);
        Assert.Equal(Libc.EINVAL, XfsIoctl.AgGeometry(root.Fd, g.AgCount, out _));
    }

    [LoopFact]
    public void A_corrupt_directory_block_marks_its_inode_sick_for_bulkstat()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("sickdir");
        var d = PopulateDirectory(fs);
        CorruptFirstDirectoryBlock(fs, scratch);

        var ls = Tool.Run("ls", d.Path);
        Assert.NotEqual(0, ls.ExitCode);
        Assert.Contains("Structure needs cleaning", ls.StdErr); // EUCLEAN

        using var root = OpenRoot(fs);
        Assert.Equal(0, XfsIoctl.BulkstatOne(root.Fd, d.Inode, out var inode));
        Assert.Equal(d.Inode, inode.Inode);
        Assert.Equal(XfsIoctl.XFS_BS_SICK_DIR, inode.Sick & XfsIoctl.XFS_BS_SICK_DIR);
        Assert.Equal(0x4000, inode.Mode & 0xf000); // S_IFDIR
        Assert.Equal($"inode {d.Inode} directory", XfsHealthNames.Describe($"inode {d.Inode}", XfsHealthNames.Inode(inode.Sick)));

        // A file next to d, in the healthy root directory, is not sick.
        Assert.Equal(0, XfsIoctl.BulkstatOne(root.Fd, Inode(Path.Combine(fs.MountPoint, "neighbour")), out var healthy));
        Assert.Equal(0, healthy.Sick);

        var found = new List<XfsInodeHealth>();
        Assert.Equal(0, XfsIoctl.BulkstatGroup(root.Fd, 0, 100_000, found, out var scanned));
        Assert.InRange(scanned, 200, 100_000);
        Assert.Contains(found, i => i.Inode == d.Inode && (i.Sick & XfsIoctl.XFS_BS_SICK_DIR) != 0);

        // maxInodes caps the walk.
        var capped = new List<XfsInodeHealth>();
        Assert.Equal(0, XfsIoctl.BulkstatGroup(root.Fd, 0, 3, capped, out var few));
        Assert.Equal(3, few);

        Assert.Equal(0, XfsIoctl.Geometry(root.Fd, out var g));
        Assert.Equal(Libc.EINVAL, XfsIoctl.BulkstatGroup(root.Fd, g.AgCount, 10, capped, out _));
    }

    [LoopFact]
    public void Bulkstat_of_an_unallocated_inode_is_ENOENT()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("noinode");
        using var root = OpenRoot(fs);
        var rootIno = Inode(fs.MountPoint);

        Assert.Equal(0, XfsIoctl.BulkstatOne(root.Fd, rootIno, out var r));
        Assert.Equal(rootIno, r.Inode);
        Assert.Equal(0, r.Sick);
        // The chunk holding the root has 64 inodes; one beyond the few mkfs allocates is free.
        Assert.Equal(Libc.ENOENT, XfsIoctl.BulkstatOne(root.Fd, rootIno + 60, out _));
    }

    [LoopFact]
    public void GetFsMap_names_the_directory_as_owner_of_its_block_with_rmapbt()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("fsmap", "-m", "rmapbt=1");
        var d = PopulateDirectory(fs);
        fs.Unmount();
        var daddr = DirectoryBlockDaddr(fs);
        fs.Mount("");
        using var root = OpenRoot(fs);
        Assert.Equal(0, XfsIoctl.Geometry(root.Fd, out var g));
        Assert.True(g.HasRmapBt);

        var mappings = new List<FsMapping>();
        Assert.Equal(0, XfsIoctl.GetFsMap(root.Fd, daddr, g.BlockSize / 512, mappings));

        var owner = Assert.Single(mappings, m => m.IsInodeOwner);
        Assert.Equal(d.Inode, owner.Owner);
        Assert.Equal(daddr * 512, owner.PhysicalBytes);
        Assert.Equal(0UL, owner.Offset); // directory block 0
        Assert.False(owner.IsAttributeFork);
        // Only mappings overlapping the asked range come back.
        Assert.All(mappings, m => Assert.True(m.PhysicalBytes < (daddr + 8) * 512 && m.PhysicalBytes + m.LengthBytes > daddr * 512));

        // A whole AG header range is static metadata, never an inode.
        var header = new List<FsMapping>();
        Assert.Equal(0, XfsIoctl.GetFsMap(root.Fd, 0, 1, header));
        Assert.NotEmpty(header);
        Assert.All(header, m => Assert.False(m.IsInodeOwner));
        Assert.Contains(header, m => m.Owner == XfsIoctl.XFS_FMR_OWN_FS);

        Assert.Equal(Libc.EINVAL, XfsIoctl.GetFsMap(root.Fd, 0, 0, header));
    }

    [LoopFact]
    public void GetFsMap_pages_through_more_mappings_than_one_call_holds()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("fsmappages", "-m", "rmapbt=1");
        var files = new List<ulong>();
        for (var i = 0; i < 150; i++)
        {
            // Alternating sizes keep neighbouring files from looking like one run of blocks.
            var path = Path.Combine(fs.MountPoint, $"f{i:D3}");
            File.WriteAllBytes(path, new byte[4096 * (1 + i % 2)]);
            files.Add(Inode(path));
        }
        Tool.Check("sync", "-f", fs.MountPoint);
        using var root = OpenRoot(fs);
        Assert.Equal(0, XfsIoctl.Geometry(root.Fd, out var g));
        var sectors = (ulong)g.AgCount * g.AgBlocks * (g.BlockSize / 512);

        var mappings = new List<FsMapping>();
        Assert.Equal(0, XfsIoctl.GetFsMap(root.Fd, 0, sectors, mappings));

        var expected = Tool.Check("xfs_io", "-c", $"fsmap -d 0 {sectors - 1}", fs.MountPoint)
            .Split('\n').Count(l => FsMapLine().IsMatch(l));
        Assert.True(mappings.Count > 64, $"only {mappings.Count} mappings: the test does not page");
        Assert.Equal(expected, mappings.Count);
        Assert.Equal(mappings.Count, mappings.Distinct().Count());
        Assert.All(files, ino => Assert.Contains(mappings, m => m.IsInodeOwner && m.Owner == ino));
    }

    [LoopFact]
    public void GetFsMap_without_rmapbt_knows_no_inode_owners()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("nofsmapowner", "-m", "rmapbt=0");
        PopulateDirectory(fs);
        fs.Unmount();
        var daddr = DirectoryBlockDaddr(fs);
        fs.Mount("");
        using var root = OpenRoot(fs);
        Assert.Equal(0, XfsIoctl.Geometry(root.Fd, out var g));
        Assert.False(g.HasRmapBt);

        var mappings = new List<FsMapping>();
        Assert.Equal(0, XfsIoctl.GetFsMap(root.Fd, daddr, g.BlockSize / 512, mappings));

        Assert.NotEmpty(mappings);
        Assert.All(mappings, m => Assert.False(m.IsInodeOwner));
    }

    [LoopFact]
    public void Health_monitor_is_ENOTTY_before_7_0()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Xfs("monitor");
        using var root = OpenRoot(fs);

        var rc = XfsIoctl.OpenHealthMonitor(root.Fd, verbose: false, out var monitorFd);

        if (Environment.OSVersion.Version.Major < 7)
        {
            Assert.Equal(25, rc); // ENOTTY: no such ioctl on this kernel
            Assert.Equal(-1, monitorFd);
            return;
        }
        Assert.True(rc is 0 or Libc.EEXIST, $"XFS_IOC_HEALTH_MONITOR gave errno {rc}");
        if (rc == 0)
        {
            Assert.True(monitorFd >= 0);
            Libc.Close(monitorFd);
        }
    }

    private sealed record PopulatedDirectory(string Path, ulong Inode);

    /// <summary>Directory d with 200 long names: several directory blocks, so block 0 is a data block.</summary>
    private static PopulatedDirectory PopulateDirectory(ScratchFilesystem fs)
    {
        var d = System.IO.Path.Combine(fs.MountPoint, "d");
        Directory.CreateDirectory(d);
        for (var i = 0; i < 200; i++)
            File.WriteAllBytes(System.IO.Path.Combine(d, $"a-rather-long-file-name-so-that-the-directory-spans-blocks-{i:D4}"), []);
        File.WriteAllBytes(System.IO.Path.Combine(fs.MountPoint, "neighbour"), [1]);
        return new PopulatedDirectory(d, Inode(d));
    }

    /// <summary>Zeroes the magic of /d's first directory block in our own image, then mounts again.</summary>
    private static void CorruptFirstDirectoryBlock(ScratchFilesystem fs, ScratchDirectory scratch)
    {
        Assert.StartsWith(scratch.Path, fs.Image); // only ever an image this test made
        fs.Unmount();
        var result = Tool.Run("xfs_db", "-x", "-c", "path /d", "-c", "dblock 0", "-c", "write -d dhdr.hdr.magic 0", fs.Image);
        Assert.True(result.ExitCode == 0, $"xfs_db failed: {result.StdErr}");
        Assert.Contains("dhdr.hdr.magic = 0", result.StdOut);
        fs.Mount("");
    }

    private static ulong DirectoryBlockDaddr(ScratchFilesystem fs)
    {
        var output = Tool.Check("xfs_db", "-r", "-c", "path /d", "-c", "dblock 0", "-c", "daddr", fs.Image);
        var match = CurrentDaddr().Match(output);
        Assert.True(match.Success, $"xfs_db daddr said: {output}");
        return ulong.Parse(match.Groups[1].Value);
    }

    private static ulong Inode(string path) => ulong.Parse(Tool.Check("stat", "-c", "%i", path).Trim());

    private static FileDescriptor OpenRoot(ScratchFilesystem fs)
    {
        var fd = Libc.Open(fs.MountPoint, Libc.O_RDONLY | Libc.O_DIRECTORY | Libc.O_CLOEXEC);
        Assert.True(fd >= 0, $"open {fs.MountPoint}: errno {Libc.LastErrno}");
        return new FileDescriptor(fd);
    }

    [GeneratedRegex(@"agcount=(\d+)")]
    private static partial Regex AgCount();

    [GeneratedRegex(@"agsize=(\d+) blks")]
    private static partial Regex AgSize();

    [GeneratedRegex(@"data\s+=\s+bsize=\d+\s+blocks=(\d+)")]
    private static partial Regex DataBlocks();

    [GeneratedRegex(@"^\s*\d+: \d+:\d+ \[")]
    private static partial Regex FsMapLine();

    [GeneratedRegex(@"current daddr is (\d+)")]
    private static partial Regex CurrentDaddr();
}
