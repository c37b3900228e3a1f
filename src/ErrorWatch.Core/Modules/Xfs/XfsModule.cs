using ErrorWatch.Decoding;
using ErrorWatch.Health;
using ErrorWatch.Health.KernelLog;

namespace ErrorWatch.Modules.Xfs;

/// <summary>
/// XFS: the decoder, its ioctls (geometry, AG geometry, BULKSTAT, GETFSMAP, the 7.0 health monitor),
/// the sick-bit health source and the "XFS" kernel log lines.
/// </summary>
public sealed class XfsModule : IFilesystemModule
{
    /// <summary>XFS_SUPER_MAGIC (include/uapi/linux/magic.h), "XFSB".</summary>
    public const ulong SuperMagic = 0x58465342;

    public ulong Magic => SuperMagic;
    public IReadOnlyList<string> TypeNames { get; } = ["xfs"];
    public IFilesystemDecoder Decoder { get; } = new XfsDecoder();
    public IKernelLogDialect KernelLog { get; } = new XfsKernelLog();

    /// <summary>The UUID XFS_IOC_FSGEOMETRY gives (kernel-abi.md §7.2).</summary>
    public Guid? ReadUuid(int rootFd, string devicePath) =>
        XfsIoctl.Geometry(rootFd, out var geometry) == 0 ? geometry.Uuid : null;

    public IHealthSource CreateHealthSource(HealthSourceContext context) =>
        new XfsHealth(context.Watch, context.Baseline, context.Instance, context.Options, context.Log);
}
