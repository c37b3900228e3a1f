using ErrorWatch.Filesystems;
using System.Collections.Concurrent;
using ErrorWatch.Decoding;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Modules.Xfs;

namespace ErrorWatch.Modules;

/// <summary>
/// The filesystem modules by superblock magic (statfs f_type), and info-record decoders by (magic,
/// record type). A filesystem without a module gets the generic one, so a filesystem nobody planned
/// for still reports. Built once by the composition root and handed to whoever needs a module.
/// </summary>
public sealed class FilesystemModules
{
    /// <summary>Magic value meaning "any filesystem" for <see cref="RegisterRecord"/>.</summary>
    public const ulong AnyFilesystem = 0;

    private readonly ConcurrentDictionary<ulong, IFilesystemModule> _modules = new();
    private readonly ConcurrentDictionary<(ulong Magic, byte Type), IInfoRecordDecoder> _records = new();

    public FilesystemModules(IFilesystemModule fallback) => Fallback = fallback;

    /// <summary>The module of any filesystem without one of its own: generic handle layouts, generic errno texts.</summary>
    public IFilesystemModule Fallback { get; }

    /// <summary>The modules ErrorWatch ships: ext4, XFS and the generic fallback.</summary>
    public static FilesystemModules CreateDefault() =>
        new FilesystemModules(new GenericModule()).Add(new Ext4Module()).Add(new XfsModule());

    /// <summary>Registers <paramref name="module"/> for its magic, once: a second module for one magic is refused.</summary>
    public FilesystemModules Add(IFilesystemModule module)
    {
        if (module.Magic == AnyFilesystem || !_modules.TryAdd(module.Magic, module))
            throw new InvalidOperationException($"A filesystem module for magic 0x{module.Magic:x} is already registered (or the magic is 0)");
        return this;
    }

    /// <summary>A decoder for one info record type, on one filesystem (or <see cref="AnyFilesystem"/>), ahead of the module's own.</summary>
    public FilesystemModules RegisterRecord(ulong magic, byte recordType, IInfoRecordDecoder decoder)
    {
        _records[(magic, recordType)] = decoder;
        return this;
    }

    /// <summary>The UUID as the filesystem's module reads it (inventory, before FS_IOC_GETFSUUID).</summary>
    public Guid? ReadUuid(ulong magic, int rootFd, string devicePath) => For(magic).ReadUuid(rootFd, devicePath);

    /// <summary>Whether the mount went read-only or shut down, as its module tells it.</summary>
    public MountErrorState StateNow(Superblock sb) => For(sb.Magic).StateNow(sb);

    /// <summary>The module of a superblock with this magic, else <see cref="Fallback"/>.</summary>
    public IFilesystemModule For(ulong magic) => _modules.TryGetValue(magic, out var m) ? m : Fallback;

    /// <summary>The module serving a mount type ("ext3" is ext4's), or null.</summary>
    public IFilesystemModule? ForType(string fsType) => _modules.Values.FirstOrDefault(m => m.TypeNames.Contains(fsType));

    /// <summary>Every registered module (the fallback is not among them).</summary>
    public IEnumerable<IFilesystemModule> Registered => _modules.Values;

    public IInfoRecordDecoder? ForRecord(ulong magic, byte recordType) =>
        _records.TryGetValue((magic, recordType), out var d) ? d
        : For(magic).InfoRecord(recordType) is { } own ? own
        : _records.TryGetValue((AnyFilesystem, recordType), out d) ? d : null;

    public IEnumerable<string> Names => _modules.Values.Select(m => m.Decoder.Name).Append(Fallback.Decoder.Name).Distinct();
}
