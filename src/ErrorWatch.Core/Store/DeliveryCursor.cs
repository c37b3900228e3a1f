using System.Buffers.Binary;
using ErrorWatch.Interop;
using Serilog;

namespace ErrorWatch.Store;

/// <summary>
/// How far an output has delivered the store: every record that ends at or before
/// <see cref="Position"/> reached it (or a summary that counts it). Kept in
/// <c>&lt;state&gt;/cursors/&lt;output&gt;</c> (0600, in a 0700 directory) and moved with one pwrite(2)
/// of a checksummed 20-byte record per delivery: a killed process leaves the last one written, so at
/// the next start the output is given what was stored after it (at least once: what was delivered
/// after the last move comes again). Never fsynced: a power loss can move it back (duplicates), and
/// one made in the seconds before it may be lost; it then starts again at the end of the store.
/// </summary>
public sealed unsafe class DeliveryCursor : IDisposable
{
    public const string DirectoryName = "cursors";
    private const int Size = 20;

    private readonly ILogger _log;
    private readonly string _path;
    private int _fd;
    private bool _failed;

    private DeliveryCursor(string path, int fd, StorePosition? position, ILogger log)
    {
        _path = path;
        _fd = fd;
        Position = position;
        _log = log;
    }

    /// <summary>Where it stood when opened, then where it was last moved; null for a new (or unreadable) cursor.</summary>
    public StorePosition? Position { get; private set; }

    /// <summary>
    /// Opens (creating) the cursor of <paramref name="output"/>. A damaged file is named in the log and
    /// read as a new cursor; a file that cannot be opened leaves a cursor that only remembers in memory.
    /// </summary>
    public static DeliveryCursor Open(string stateDirectory, string output, ILogger log)
    {
        var directory = Path.Combine(stateDirectory, DirectoryName);
        var path = Path.Combine(directory, output);
        try
        {
            AtomicFile.CreateDirectory(directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.Error("Cannot keep the {Output} delivery cursor in {Directory} ({Reason}): after a crash, reports stored meanwhile may be missing from the {Output}", output, directory, e.Message, output);
            return new DeliveryCursor(path, -1, null, log);
        }
        var fd = Libc.Open(path, Libc.O_RDWR | Libc.O_CREAT | Libc.O_CLOEXEC, 0x180);
        if (fd < 0)
        {
            log.Error("Cannot open the {Output} delivery cursor {Path} ({Errno}): after a crash, reports stored meanwhile may be missing from the {Output}", output, path, ErrnoTable.Name(Libc.LastErrno), output);
            return new DeliveryCursor(path, -1, null, log);
        }
        Span<byte> record = stackalloc byte[Size];
        nint n;
        fixed (byte* p = record)
            n = Libc.PRead(fd, p, Size, 0);
        StorePosition? position = null;
        if (n == Size && Crc32C.Update(0, record[..16]) == BinaryPrimitives.ReadUInt32LittleEndian(record[16..]))
            position = new StorePosition(BinaryPrimitives.ReadInt64LittleEndian(record), BinaryPrimitives.ReadInt64LittleEndian(record[8..]));
        else if (n != 0)
            log.Warning("The {Output} delivery cursor {Path} is damaged ({Length} bytes, checksum wrong); it starts again at the end of the store", output, path, n);
        return new DeliveryCursor(path, fd, position, log);
    }

    /// <summary>Everything stored up to <paramref name="position"/> is delivered. Never moves back.</summary>
    public void Advance(StorePosition position)
    {
        if (Position is { } at && position <= at)
            return;
        Write(position);
    }

    /// <summary>
    /// Starts again at <paramref name="position"/>, behind the cursor too: for a cursor past the end of
    /// the store (the store was emptied or replaced), which no report would ever move again.
    /// </summary>
    public void Restart(StorePosition position) => Write(position);

    private void Write(StorePosition position)
    {
        Position = position;
        if (_fd < 0)
            return;
        Span<byte> record = stackalloc byte[Size];
        BinaryPrimitives.WriteInt64LittleEndian(record, position.Segment);
        BinaryPrimitives.WriteInt64LittleEndian(record[8..], position.Offset);
        BinaryPrimitives.WriteUInt32LittleEndian(record[16..], Crc32C.Update(0, record[..16]));
        nint n;
        fixed (byte* p = record)
            n = Libc.PWrite(_fd, p, Size, 0);
        if (n != Size && !_failed)
        {
            _failed = true;
            _log.Error("Cannot move the delivery cursor {Path} ({Errno}): after a crash, reports may be delivered again", _path, ErrnoTable.Name(Libc.LastErrno));
        }
        else if (n == Size)
        {
            _failed = false;
        }
    }

    public void Dispose()
    {
        if (_fd >= 0)
            Libc.Close(_fd);
        _fd = -1;
    }
}
