using static ErrorWatch.Interop.Fanotify;

namespace ErrorWatch.Decoding;

/// <summary>For any filesystem without a decoder of its own: generic handle layouts, generic errno texts.</summary>
public sealed class GenericDecoder : IFilesystemDecoder
{
    private static readonly int[] Types = [FILEID_INO32_GEN, FILEID_INO32_GEN_PARENT, FILEID_INO64_GEN, FILEID_INO64_GEN_PARENT];

    public string Name => "generic";

    public FileObject DecodeHandle(int handleType, ReadOnlySpan<byte> handle) => FileHandleLayout.Decode(handleType, handle, Types);

    public ErrorMeaning DescribeError(int errno) => ErrorMeaning.Generic(errno);

    public void AddDetails(DecodeContext context)
    {
    }
}
