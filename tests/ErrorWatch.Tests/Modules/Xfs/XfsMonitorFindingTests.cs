using System.Buffers.Binary;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Modules;
using ErrorWatch.Modules.Xfs;
using ErrorWatch.Watching;
using ErrorWatch.Reports;
using static ErrorWatch.Tests.Modules.Xfs.HealthMonitorReaderTests;

namespace ErrorWatch.Tests.Modules.Xfs;

/// <summary>
/// Synthetic: Linux 7.0 ABI (XFS_IOC_HEALTH_MONITOR, kernel-abi.md §7.5); this machine runs 6.18,
/// which has no monitor. Monitor records decode to findings with the right scope, errno and
/// category, and the report built from them names the structure.
/// </summary>
public sealed class XfsMonitorFindingTests : IDisposable
{
    private readonly XfsHealth _source;

    public XfsMonitorFindingTests()
    {
        var sb = new Superblock(new DeviceNumber(7, 98), "xfs", []) { Magic = XfsModule.SuperMagic, Uuid = Guid.NewGuid(), DevicePath = "/dev/fake" };
        _source = new XfsHealth(new SuperblockWatch(sb, null!), HealthBaseline.InMemory(), "boot/7:98/1", new HealthOptions(), Serilog.Core.Logger.None);
    }

    public void Dispose() => _source.Dispose();

    private List<HealthFinding> Decode(params byte[][] records)
    {
        var findings = new List<HealthFinding>();
        _source.DecodeMonitor(records.SelectMany(r => r).ToArray(), findings);
        return findings;
    }

    private static Action<Span<byte>> Union(Action<Span<byte>> write) => write;

    [Fact]
    public void Inode_sick_names_the_inode_generation_and_structure()
    {
        var f = Assert.Single(Decode(Record((uint)HealthDomain.Inode, (uint)HealthEventType.Sick, union: Union(u =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(u, 1u << 4); // XFS_BS_SICK_DIR
            BinaryPrimitives.WriteUInt32LittleEndian(u[4..], 7);
            BinaryPrimitives.WriteUInt64LittleEndian(u[8..], 131);
        }))));
        Assert.Equal(ReportSource.XfsHealthMonitor, f.Source);
        Assert.Equal(131UL, f.Inode);
        Assert.Equal(7u, f.Generation);
        Assert.Equal(117, f.Errno);
        Assert.Contains("inode 131 directory", f.What);
        Assert.Equal(new[] { "dir" }, f.Details["structures"]);
    }

    [Fact]
    public void Group_corrupt_names_the_ag_and_btrees()
    {
        var f = Assert.Single(Decode(Record((uint)HealthDomain.Group, (uint)HealthEventType.Corrupt, union: Union(u =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(u, (1u << 6) | (1u << 7)); // INOBT | FINOBT
            BinaryPrimitives.WriteUInt32LittleEndian(u[4..], 3);
        }))));
        Assert.Null(f.Inode);
        Assert.Contains("AG 3", f.What);
        Assert.Contains("inode btree", f.What);
        Assert.EndsWith("is corrupt", f.What);
    }

    [Fact]
    public void Shutdown_carries_its_reasons_and_is_a_shutdown()
    {
        var f = Assert.Single(Decode(Record((uint)HealthDomain.Mount, (uint)HealthEventType.Shutdown, union: Union(u =>
            BinaryPrimitives.WriteUInt32LittleEndian(u, (1u << 1) | (1u << 4))))));
        Assert.Equal(108, f.Errno);
        Assert.Equal(ErrorCategory.Shutdown, f.Category);
        Assert.Equal(2, Assert.IsType<string[]>(f.Details["reasons"]).Length);
    }

    [Fact]
    public void Lost_events_are_a_lost_events_finding()
    {
        var f = Assert.Single(Decode(Record((uint)HealthDomain.Mount, (uint)HealthEventType.Lost, union: Union(u =>
            BinaryPrimitives.WriteUInt64LittleEndian(u, 42)))));
        Assert.Equal(ErrorCategory.EventsLost, f.Category);
        Assert.Contains("42", f.What);
    }

    [Fact]
    public void File_range_errors_keep_the_kernel_errno_and_the_range()
    {
        var f = Assert.Single(Decode(Record((uint)HealthDomain.FileRange, (uint)HealthEventType.BufferedRead, union: Union(u =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(u, 4096);
            BinaryPrimitives.WriteUInt64LittleEndian(u[8..], 8192);
            BinaryPrimitives.WriteUInt64LittleEndian(u[16..], 200);
            BinaryPrimitives.WriteUInt32LittleEndian(u[24..], 9);
            BinaryPrimitives.WriteUInt32LittleEndian(u[28..], 5);
        }))));
        Assert.Equal(5, f.Errno);
        Assert.Equal(200UL, f.Inode);
        Assert.Equal(9u, f.Generation);
        Assert.Equal(4096L, f.Details["position"]);
        Assert.Equal(8192L, f.Details["length"]);
        Assert.Equal(1UL, f.Count);
    }

    [Fact]
    public void Media_errors_are_io_errors()
    {
        var f = Assert.Single(Decode(Record((uint)HealthDomain.DataDevice, (uint)HealthEventType.MediaError, union: Union(u =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(u, 4096);
            BinaryPrimitives.WriteUInt64LittleEndian(u[8..], 8);
        }))));
        Assert.Equal(ErrorCategory.Io, f.Category);
        Assert.Equal(4096L, f.Details["daddr"]);
    }

    [Fact]
    public void Running_healthy_and_unmount_are_not_reports_and_a_partial_record_costs_nothing_before_it()
    {
        var running = Record((uint)HealthDomain.Mount, (uint)HealthEventType.Running);
        var healthy = Record((uint)HealthDomain.Filesystem, (uint)HealthEventType.Healthy, union: Union(u => BinaryPrimitives.WriteUInt32LittleEndian(u, 1)));
        var sick = Record((uint)HealthDomain.Filesystem, (uint)HealthEventType.Sick, union: Union(u => BinaryPrimitives.WriteUInt32LittleEndian(u, 1)));
        var findings = Decode(running, healthy, sick, new byte[20]);
        var f = Assert.Single(findings);
        Assert.Contains("summary counters", f.What);
    }

    [Fact]
    public void Monitor_findings_become_reports_naming_the_structure()
    {
        var f = Assert.Single(Decode(Record((uint)HealthDomain.Group, (uint)HealthEventType.Sick, union: Union(u =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(u, 1u << 6);
            BinaryPrimitives.WriteUInt32LittleEndian(u[4..], 0);
        }))));
        var report = new EventDecoder(FilesystemModules.CreateDefault(), new PathResolver()).Decode(f);
        Assert.Equal(ReportSource.XfsHealthMonitor, report.Source);
        Assert.Equal("xfs", report.Decoder);
        Assert.Equal("filesystem", report.Object.Scope);
        Assert.Contains("AG 0 inode btree is sick", report.Summary);
    }
}
