using ErrorWatch.Modules.Xfs;
using ErrorWatch.Interop;

namespace ErrorWatch.Tests.Modules.Xfs;

/// <summary>Sick masks (xfs_fs.h XFS_*_SICK_*, kernel-abi.md §7.2–7.4) to names an admin can read.</summary>
public class XfsHealthNamesTests
{
    [Fact]
    public void Empty_mask_names_nothing()
    {
        Assert.Empty(XfsHealthNames.Filesystem(0));
        Assert.Empty(XfsHealthNames.Group(0));
        Assert.Empty(XfsHealthNames.RealtimeGroup(0));
        Assert.Empty(XfsHealthNames.Inode(0));
    }

    [Fact]
    public void Filesystem_bits()
    {
        Assert.Equal([new XfsStructure("counters", "summary counters")], XfsHealthNames.Filesystem(XfsIoctl.XFS_FSOP_GEOM_SICK_COUNTERS));
        Assert.Equal(["counters", "uquota", "gquota", "pquota", "rtbitmap", "rtsummary", "quotacheck", "nlinks", "metadir", "metapath"],
            XfsHealthNames.Filesystem(0x3ff).Select(s => s.Id));
    }

    [Fact]
    public void Group_bits()
    {
        Assert.Equal([new XfsStructure("inobt", "inode btree")], XfsHealthNames.Group(XfsIoctl.XFS_AG_GEOM_SICK_INOBT));
        Assert.Equal([new XfsStructure("inodes", "inodes (a sick inode was reclaimed)")], XfsHealthNames.Group(XfsIoctl.XFS_AG_GEOM_SICK_INODES));
        Assert.Equal(["sb", "agf", "agfl", "agi", "bnobt", "cntbt", "inobt", "finobt", "rmapbt", "refcountbt", "inodes"],
            XfsHealthNames.Group(0x7ff).Select(s => s.Id));
    }

    [Fact]
    public void Realtime_group_bits()
    {
        Assert.Equal(["super", "bitmap", "summary", "rmapbt", "refcountbt"], XfsHealthNames.RealtimeGroup(0x1f).Select(s => s.Id));
        Assert.Equal("realtime bitmap", XfsHealthNames.RealtimeGroup(XfsIoctl.XFS_RTGROUP_GEOM_SICK_BITMAP)[0].Name);
    }

    [Fact]
    public void Inode_bits()
    {
        Assert.Equal([new XfsStructure("dir", "directory")], XfsHealthNames.Inode(XfsIoctl.XFS_BS_SICK_DIR));
        Assert.Equal([new XfsStructure("bmbtd", "data fork mapping")], XfsHealthNames.Inode(XfsIoctl.XFS_BS_SICK_BMBTD));
        Assert.Equal(["core", "bmbtd", "bmbta", "bmbtc", "dir", "xattr", "symlink", "parent", "dirtree"],
            XfsHealthNames.Inode(0x1ff).Select(s => s.Id));
    }

    [Fact]
    public void Unknown_bits_are_named_by_number_in_bit_order()
    {
        Assert.Equal(
            [new XfsStructure("dir", "directory"), new XfsStructure("bit12", "unknown structure (bit 12)"), new XfsStructure("bit31", "unknown structure (bit 31)")],
            XfsHealthNames.Inode(XfsIoctl.XFS_BS_SICK_DIR | 1u << 12 | 1u << 31));
        Assert.Equal(["bit11"], XfsHealthNames.Group(1u << 11).Select(s => s.Id));
        Assert.Equal(["bit10"], XfsHealthNames.Filesystem(1u << 10).Select(s => s.Id));
        Assert.Equal(["bit5"], XfsHealthNames.RealtimeGroup(1u << 5).Select(s => s.Id));
        Assert.Equal(32, XfsHealthNames.Group(uint.MaxValue).Count);
    }

    [Fact]
    public void Describe_puts_the_scope_before_the_names()
    {
        Assert.Equal("AG 0 inode btree", XfsHealthNames.Describe("AG 0", XfsHealthNames.Group(XfsIoctl.XFS_AG_GEOM_SICK_INOBT)));
        Assert.Equal("inode 131 directory", XfsHealthNames.Describe("inode 131", XfsHealthNames.Inode(XfsIoctl.XFS_BS_SICK_DIR)));
        Assert.Equal("filesystem summary counters, inode link counts",
            XfsHealthNames.Describe("filesystem", XfsHealthNames.Filesystem(XfsIoctl.XFS_FSOP_GEOM_SICK_COUNTERS | XfsIoctl.XFS_FSOP_GEOM_SICK_NLINKS)));
        Assert.Equal("AG 2 (no structures)", XfsHealthNames.Describe("AG 2", []));
    }
}
