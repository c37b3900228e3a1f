using System.Runtime.InteropServices;
using ErrorWatch.Kernel;

namespace ErrorWatch.Tests.Kernel;

/// <summary>
/// Builds fanotify read(2) buffers as laid out in kernel-abi.md §2 (host byte order):
/// 24-byte metadata followed by info records. event_len is fixed up on <see cref="Build"/>
/// unless an event asked for a specific (possibly wrong) value.
/// </summary>
internal sealed class EventBuilder
{
    // include/uapi/linux/fanotify.h, spelled out here rather than taken from the code under test.
    public const ulong FanQOverflow = 0x4000;
    public const ulong FanFsError = 0x8000;
    public const ulong FanMntAttach = 0x01000000;
    public const ulong FanMntDetach = 0x02000000;
    public const byte InfoFid = 1;
    public const byte InfoPidfd = 4;
    public const byte InfoError = 5;
    public const byte InfoMnt = 7;
    public const int FileIdIno32Gen = 1;
    public const int FileIdIno64Gen = 0x81;
    public const int FileIdInvalid = 0xff;
    public const int MetadataLength = 24;

    private readonly List<byte> _bytes = new();
    private readonly List<EventSpan> _events = new();

    private sealed class EventSpan(int start, uint? lengthOverride)
    {
        public int Start { get; } = start;
        public int? End { get; set; }
        public uint? LengthOverride { get; } = lengthOverride;
    }

    /// <summary>Bytes appended so far; the offset the next event or record will start at.</summary>
    public int Length => _bytes.Count;

    /// <summary>Starts a new event (ending the previous one) with struct fanotify_event_metadata.</summary>
    public EventBuilder Event(ulong mask = FanFsError, int pid = 4242, int fd = -1, byte version = 3,
        ushort metadataLength = MetadataLength, uint? eventLength = null)
    {
        CloseEvent();
        _events.Add(new EventSpan(_bytes.Count, eventLength));
        Put(0u); // event_len, fixed up in Build()
        _bytes.Add(version);
        _bytes.Add(0); // reserved
        Put(metadataLength);
        Put(mask);
        Put(fd);
        Put(pid);
        return this;
    }

    /// <summary>FID record: hdr, fsid, file_handle { handle_bytes, handle_type, f_handle }, zero-padded to 4.</summary>
    public EventBuilder Fid(FilesystemId fsid, int handleType, ReadOnlySpan<byte> handle, uint? handleBytesField = null)
    {
        var length = RoundUp4(20 + handle.Length);
        Header(InfoFid, length);
        Put(fsid.Val0);
        Put(fsid.Val1);
        Put(handleBytesField ?? (uint)handle.Length);
        Put(handleType);
        _bytes.AddRange(handle);
        Pad(length - 20 - handle.Length);
        return this;
    }

    /// <summary>ERROR record (12 bytes): hdr, s32 error, u32 error_count.</summary>
    public EventBuilder Error(int error, uint count = 1)
    {
        Header(InfoError, 12);
        Put(error);
        Put(count);
        return this;
    }

    /// <summary>PIDFD record (8 bytes): hdr, s32 pidfd.</summary>
    public EventBuilder Pidfd(int pidfd)
    {
        Header(InfoPidfd, 8);
        Put(pidfd);
        return this;
    }

    /// <summary>MNT record (16 bytes on 64-bit): hdr, 4 bytes padding, u64 mnt_id.</summary>
    public EventBuilder Mount(ulong mountId)
    {
        Header(InfoMnt, 16);
        Pad(4);
        Put(mountId);
        return this;
    }

    /// <summary>Any record: a header with <paramref name="length"/> (default 4 + body) followed by the body.</summary>
    public EventBuilder Record(byte type, ReadOnlySpan<byte> body, ushort? length = null)
    {
        Header(type, length ?? (ushort)(4 + body.Length));
        _bytes.AddRange(body);
        return this;
    }

    /// <summary>Raw bytes inside the current event (counted in its event_len).</summary>
    public EventBuilder Raw(ReadOnlySpan<byte> bytes)
    {
        _bytes.AddRange(bytes);
        return this;
    }

    /// <summary>Ends the current event and appends bytes that belong to no event.</summary>
    public EventBuilder Tail(ReadOnlySpan<byte> bytes)
    {
        CloseEvent();
        _bytes.AddRange(bytes);
        return this;
    }

    public byte[] Build()
    {
        CloseEvent();
        var result = _bytes.ToArray();
        foreach (var ev in _events)
        {
            var length = ev.LengthOverride ?? (uint)(ev.End!.Value - ev.Start);
            MemoryMarshal.Write(result.AsSpan(ev.Start), in length);
        }
        return result;
    }

    /// <summary>FILEID_INO32_GEN handle body: u32 ino, u32 generation.</summary>
    public static byte[] Ino32Gen(uint ino, uint generation)
    {
        var handle = new byte[8];
        MemoryMarshal.Write(handle, in ino);
        MemoryMarshal.Write(handle.AsSpan(4), in generation);
        return handle;
    }

    /// <summary>FILEID_INO64_GEN handle body (XFS): u64 ino, u32 generation.</summary>
    public static byte[] Ino64Gen(ulong ino, uint generation)
    {
        var handle = new byte[12];
        MemoryMarshal.Write(handle, in ino);
        MemoryMarshal.Write(handle.AsSpan(8), in generation);
        return handle;
    }

    private void CloseEvent()
    {
        if (_events.Count > 0 && _events[^1].End is null)
            _events[^1].End = _bytes.Count;
    }

    private void Header(byte type, int length)
    {
        _bytes.Add(type);
        _bytes.Add(0); // pad
        Put((ushort)length);
    }

    private void Pad(int count)
    {
        for (var i = 0; i < count; i++)
            _bytes.Add(0);
    }

    private void Put<T>(T value) where T : unmanaged
    {
        Span<byte> scratch = stackalloc byte[8];
        MemoryMarshal.Write(scratch, in value);
        _bytes.AddRange(scratch[..System.Runtime.CompilerServices.Unsafe.SizeOf<T>()]);
    }

    private static int RoundUp4(int n) => (n + 3) & ~3;
}
