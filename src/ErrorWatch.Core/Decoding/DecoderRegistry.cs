using System.Collections.Concurrent;

namespace ErrorWatch.Decoding;

/// <summary>
/// Decoders by superblock magic, and info-record decoders by (magic, record type). Anything not
/// registered falls back to the generic decoder, so a filesystem nobody planned for still reports.
/// </summary>
public sealed class DecoderRegistry
{
    /// <summary>Magic value meaning "any filesystem" for <see cref="RegisterRecord"/>.</summary>
    public const ulong AnyFilesystem = 0;

    private readonly ConcurrentDictionary<ulong, IFilesystemDecoder> _decoders = new();
    private readonly ConcurrentDictionary<(ulong Magic, byte Type), IInfoRecordDecoder> _records = new();

    public DecoderRegistry(IFilesystemDecoder fallback) => Fallback = fallback;

    public IFilesystemDecoder Fallback { get; }

    /// <summary>The registry ErrorWatch ships: ext4, XFS and the generic fallback.</summary>
    public static DecoderRegistry CreateDefault()
    {
        var registry = new DecoderRegistry(new GenericDecoder());
        registry.Register(Ext4Decoder.Magic, new Ext4Decoder());
        registry.Register(XfsDecoder.Magic, new XfsDecoder());
        return registry;
    }

    public DecoderRegistry Register(ulong magic, IFilesystemDecoder decoder)
    {
        _decoders[magic] = decoder;
        return this;
    }

    public DecoderRegistry RegisterRecord(ulong magic, byte recordType, IInfoRecordDecoder decoder)
    {
        _records[(magic, recordType)] = decoder;
        return this;
    }

    public IFilesystemDecoder For(ulong magic) => _decoders.TryGetValue(magic, out var d) ? d : Fallback;

    public IInfoRecordDecoder? ForRecord(ulong magic, byte recordType) =>
        _records.TryGetValue((magic, recordType), out var d) ? d
        : _records.TryGetValue((AnyFilesystem, recordType), out d) ? d : null;

    public IEnumerable<string> Names => _decoders.Values.Select(d => d.Name).Append(Fallback.Name).Distinct();
}
