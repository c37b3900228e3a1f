using ErrorWatch.Decoding;

namespace ErrorWatch.Modules;

/// <summary>Any filesystem without a module of its own: the generic decoder, no UUID of its own, no health source.</summary>
public sealed class GenericModule : IFilesystemModule
{
    public ulong Magic => FilesystemModules.AnyFilesystem;
    public IReadOnlyList<string> TypeNames => [];
    public IFilesystemDecoder Decoder { get; } = new GenericDecoder();
}
