using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Health.KernelLog;

namespace ErrorWatch.Modules.Ext4;

/// <summary>
/// ext4, and ext2/ext3 as the ext4 code drives them: the decoder and its sysfs error record, the
/// on-disk superblock (UUID before 6.10, s_errors, history), the errors_count health source and the
/// "EXT4-fs" kernel log lines.
/// </summary>
public sealed class Ext4Module : IFilesystemModule
{
    /// <summary>EXT4_SUPER_MAGIC (include/uapi/linux/magic.h), shared with ext2 and ext3.</summary>
    public const ulong SuperMagic = 0xEF53;

    public Ext4Module(string sysfsRoot = "/sys/fs/ext4") => Decoder = new Ext4Decoder(sysfsRoot);

    public ulong Magic => SuperMagic;
    public IReadOnlyList<string> TypeNames { get; } = ["ext4", "ext3", "ext2"];
    public IFilesystemDecoder Decoder { get; }
    public IKernelLogDialect KernelLog { get; } = new Ext4KernelLog();

    /// <summary>
    /// s_uuid from the on-disk superblock. It never changes under a mounted filesystem in practice,
    /// so the on-disk copy is good enough.
    /// </summary>
    public Guid? ReadUuid(int rootFd, string devicePath) =>
        devicePath.StartsWith("/dev/", StringComparison.Ordinal)
        && Ext4SuperblockImage.ReadDevice(devicePath, out _) is { IsExt4: true } disk
            ? disk.Uuid
            : null;

    /// <summary>From /proc/fs/ext4/NAME/options: "shutdown", or "emergency_ro" after errors=remount-ro.</summary>
    public MountErrorState StateNow(Superblock sb)
    {
        if (sb.KernelName is not { Length: > 0 } name)
            return MountErrorState.Normal;
        try
        {
            return Ext4Health.StateOf(File.ReadAllText($"/proc/fs/ext4/{name}/options")) switch
            {
                "shutdown" => MountErrorState.ShutDown,
                null => MountErrorState.Normal,
                _ => MountErrorState.ReadOnly,
            };
        }
        catch (IOException)
        {
            return MountErrorState.Normal;
        }
    }

    public IHealthSource CreateHealthSource(HealthSourceContext context) =>
        new Ext4Health(context.Watch, context.Watcher, context.Baseline, context.Instance, context.Log);
}
