using static ErrorWatch.Modules.Xfs.XfsIoctl;

namespace ErrorWatch.Modules.Xfs;

/// <summary>One metadata structure named by a health mask bit: a short stable id and a name for admins.</summary>
public readonly record struct XfsStructure(string Id, string Name);

/// <summary>
/// Turns XFS sick/checked masks (kernel-abi.md §7.2–7.4; the same bits travel in health monitor
/// events, §7.5) into structure names. Ids follow xfs_spaceman's and xfs_scrub's vocabulary so a
/// report can be matched with their output; bits this code does not know come back as "bitN".
/// </summary>
public static class XfsHealthNames
{
    private static readonly (uint Bit, XfsStructure Structure)[] FilesystemBits =
    [
        (XFS_FSOP_GEOM_SICK_COUNTERS, new("counters", "summary counters")),
        (XFS_FSOP_GEOM_SICK_UQUOTA, new("uquota", "user quota")),
        (XFS_FSOP_GEOM_SICK_GQUOTA, new("gquota", "group quota")),
        (XFS_FSOP_GEOM_SICK_PQUOTA, new("pquota", "project quota")),
        (XFS_FSOP_GEOM_SICK_RT_BITMAP, new("rtbitmap", "realtime bitmap")),
        (XFS_FSOP_GEOM_SICK_RT_SUMMARY, new("rtsummary", "realtime summary")),
        (XFS_FSOP_GEOM_SICK_QUOTACHECK, new("quotacheck", "quota counts")),
        (XFS_FSOP_GEOM_SICK_NLINKS, new("nlinks", "inode link counts")),
        (XFS_FSOP_GEOM_SICK_METADIR, new("metadir", "metadata directory")),
        (XFS_FSOP_GEOM_SICK_METAPATH, new("metapath", "metadata directory paths")),
    ];

    private static readonly (uint Bit, XfsStructure Structure)[] GroupBits =
    [
        (XFS_AG_GEOM_SICK_SB, new("sb", "superblock")),
        (XFS_AG_GEOM_SICK_AGF, new("agf", "free space header")),
        (XFS_AG_GEOM_SICK_AGFL, new("agfl", "free block list")),
        (XFS_AG_GEOM_SICK_AGI, new("agi", "inode header")),
        (XFS_AG_GEOM_SICK_BNOBT, new("bnobt", "free space by block btree")),
        (XFS_AG_GEOM_SICK_CNTBT, new("cntbt", "free space by length btree")),
        (XFS_AG_GEOM_SICK_INOBT, new("inobt", "inode btree")),
        (XFS_AG_GEOM_SICK_FINOBT, new("finobt", "free inode btree")),
        (XFS_AG_GEOM_SICK_RMAPBT, new("rmapbt", "reverse mapping btree")),
        (XFS_AG_GEOM_SICK_REFCNTBT, new("refcountbt", "reference count btree")),
        (XFS_AG_GEOM_SICK_INODES, new("inodes", "inodes (a sick inode was reclaimed)")),
    ];

    private static readonly (uint Bit, XfsStructure Structure)[] RealtimeGroupBits =
    [
        (XFS_RTGROUP_GEOM_SICK_SUPER, new("super", "realtime superblock")),
        (XFS_RTGROUP_GEOM_SICK_BITMAP, new("bitmap", "realtime bitmap")),
        (XFS_RTGROUP_GEOM_SICK_SUMMARY, new("summary", "realtime summary")),
        (XFS_RTGROUP_GEOM_SICK_RMAPBT, new("rmapbt", "realtime reverse mapping btree")),
        (XFS_RTGROUP_GEOM_SICK_REFCNTBT, new("refcountbt", "realtime reference count btree")),
    ];

    private static readonly (uint Bit, XfsStructure Structure)[] InodeBits =
    [
        (XFS_BS_SICK_INODE, new("core", "inode core")),
        (XFS_BS_SICK_BMBTD, new("bmbtd", "data fork mapping")),
        (XFS_BS_SICK_BMBTA, new("bmbta", "attribute fork mapping")),
        (XFS_BS_SICK_BMBTC, new("bmbtc", "copy-on-write fork mapping")),
        (XFS_BS_SICK_DIR, new("dir", "directory")),
        (XFS_BS_SICK_XATTR, new("xattr", "extended attributes")),
        (XFS_BS_SICK_SYMLINK, new("symlink", "symbolic link target")),
        (XFS_BS_SICK_PARENT, new("parent", "parent pointers")),
        (XFS_BS_SICK_DIRTREE, new("dirtree", "directory tree structure")),
    ];

    /// <summary>Whole-filesystem structures: XFS_FSOP_GEOM_SICK_* (fsgeometry sick/checked, monitor FS domain).</summary>
    public static IReadOnlyList<XfsStructure> Filesystem(uint mask) => Names(mask, FilesystemBits);

    /// <summary>Allocation group structures: XFS_AG_GEOM_SICK_* (ag_sick/ag_checked, monitor AG domain).</summary>
    public static IReadOnlyList<XfsStructure> Group(uint mask) => Names(mask, GroupBits);

    /// <summary>Realtime group structures: XFS_RTGROUP_GEOM_SICK_* (6.13+, monitor RTGROUP domain).</summary>
    public static IReadOnlyList<XfsStructure> RealtimeGroup(uint mask) => Names(mask, RealtimeGroupBits);

    /// <summary>Per-inode structures: XFS_BS_SICK_* (bs_sick/bs_checked, monitor INODE domain).</summary>
    public static IReadOnlyList<XfsStructure> Inode(uint mask) => Names(mask, InodeBits);

    /// <summary>"AG 0 inode btree, free inode btree"; <paramref name="scope"/> is e.g. "AG 0", "inode 131", "filesystem".</summary>
    public static string Describe(string scope, IReadOnlyList<XfsStructure> structures)
    {
        ArgumentNullException.ThrowIfNull(structures);
        if (structures.Count == 0)
            return scope + " (no structures)";
        return scope + " " + string.Join(", ", structures.Select(s => s.Name));
    }

    private static IReadOnlyList<XfsStructure> Names(uint mask, (uint Bit, XfsStructure Structure)[] known)
    {
        if (mask == 0)
            return [];
        var names = new List<XfsStructure>(System.Numerics.BitOperations.PopCount(mask));
        for (var bit = 0; bit < 32; bit++)
        {
            var flag = 1u << bit;
            if ((mask & flag) == 0)
                continue;
            var match = Array.FindIndex(known, k => k.Bit == flag);
            names.Add(match >= 0 ? known[match].Structure : new XfsStructure($"bit{bit}", $"unknown structure (bit {bit})"));
        }
        return names;
    }
}
