using System.Buffers.Binary;

namespace ErrorWatch.Store;

/// <summary>
/// One report in a store segment:
/// <code>
///   0  u32  magic "EWR1"
///   4  u32  payload length (bytes of JSON)
///   8  u32  crc32c of bytes 12.. (time and payload)
///  12  i64  report time, Unix milliseconds (retention and --since without parsing JSON)
///  20  ...  the report as ReportJson writes it (UTF-8 JSON, one object)
/// </code>
/// All little-endian. The checksum makes a torn or damaged record detectable; the magic lets a
/// reader find the next record after damage.
/// </summary>
public static class StoreRecord
{
    public const uint Magic = 0x31525745; // "EWR1"
    public const int HeaderSize = 20;
    /// <summary>A report is a few KiB; anything claiming more is damage, not a report.</summary>
    public const int MaxPayload = 16 << 20;

    public static byte[] Encode(ReadOnlySpan<byte> json, DateTimeOffset? time = null)
    {
        var record = new byte[HeaderSize + json.Length];
        var span = record.AsSpan();
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)json.Length);
        BinaryPrimitives.WriteInt64LittleEndian(span[12..], (time ?? TimeOf(json)).ToUnixTimeMilliseconds());
        json.CopyTo(span[HeaderSize..]);
        BinaryPrimitives.WriteUInt32LittleEndian(span[8..], Crc32C.Update(0, span[12..]));
        return record;
    }

    /// <summary>
    /// Appends an encoded record with one write(2) on an O_APPEND fd (again after EINTR and short
    /// writes): a record is never interleaved, and a kill or ENOSPC leaves only a torn tail, which
    /// the next open cuts off. Returns 0, or the errno of the failed write.
    /// </summary>
    internal static unsafe int Append(int fd, ReadOnlySpan<byte> record)
    {
        fixed (byte* p = record)
        {
            var written = 0;
            while (written < record.Length)
            {
                var n = Interop.Libc.Write(fd, p + written, record.Length - written);
                if (n < 0)
                {
                    if (Interop.Libc.LastErrno == Interop.Libc.EINTR)
                        continue;
                    return Interop.Libc.LastErrno;
                }
                written += (int)n;
            }
        }
        return 0;
    }

    /// <summary>The report's "time" field (the store indexes by it); now when absent.</summary>
    private static DateTimeOffset TimeOf(ReadOnlySpan<byte> json)
    {
        var reader = new System.Text.Json.Utf8JsonReader(json);
        while (reader.Read())
        {
            if (reader.TokenType == System.Text.Json.JsonTokenType.PropertyName && reader.CurrentDepth == 1 && reader.ValueTextEquals("time"u8)
                && reader.Read() && reader.TryGetDateTimeOffset(out var time))
                return time;
        }
        return DateTimeOffset.UtcNow;
    }

    public sealed record ScanResult(long FileLength, long ValidLength, IReadOnlyList<string> Problems);

    public delegate void RecordVisitor(ReadOnlySpan<byte> json, DateTimeOffset time, long offset);

    /// <summary>
    /// Reads every whole record of a segment. Damage in the middle is skipped to the next record
    /// (named in <see cref="ScanResult.Problems"/>); <see cref="ScanResult.ValidLength"/> ends at
    /// the last whole record, so a torn tail is what lies past it.
    /// </summary>
    public static ScanResult Scan(string path, RecordVisitor visit)
    {
        var problems = new List<string>();
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"unreadable: {e.Message}");
            return new ScanResult(0, 0, problems);
        }
        var data = bytes.AsSpan();
        long valid = 0;
        var offset = 0;
        while (offset < data.Length)
        {
            if (TryRead(data[offset..], out var json, out var time, out var length, out var problem))
            {
                visit(json, time, offset);
                offset += length;
                valid = offset;
                continue;
            }
            var next = FindMagic(data, offset + 1);
            if (next < 0)
                break; // nothing whole follows: a torn tail (or damage to the end), reported by the caller
            problems.Add($"damaged record at byte {offset} ({problem}); {next - offset} bytes skipped");
            offset = next;
        }
        return new ScanResult(data.Length, valid, problems);
    }

    internal static bool TryRead(ReadOnlySpan<byte> data, out ReadOnlySpan<byte> json, out DateTimeOffset time, out int length, out string? problem)
    {
        json = default;
        time = default;
        length = 0;
        if (data.Length < HeaderSize)
        {
            problem = $"{data.Length} bytes, shorter than a record header";
            return false;
        }
        if (BinaryPrimitives.ReadUInt32LittleEndian(data) != Magic)
        {
            problem = "no record magic";
            return false;
        }
        var payload = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
        if (payload > MaxPayload || HeaderSize + payload > data.Length)
        {
            problem = $"length {payload} runs past the end";
            return false;
        }
        length = HeaderSize + (int)payload;
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(data[8..]);
        if (Crc32C.Update(0, data[12..length]) != crc)
        {
            problem = "checksum mismatch";
            return false;
        }
        time = DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(BinaryPrimitives.ReadInt64LittleEndian(data[12..]), 0, 253402300799999));
        json = data[HeaderSize..length];
        problem = null;
        return true;
    }

    internal static int FindMagic(ReadOnlySpan<byte> data, int from)
    {
        Span<byte> magic = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(magic, Magic);
        for (var i = from; i + HeaderSize <= data.Length; i++)
        {
            var at = data[i..].IndexOf(magic);
            if (at < 0)
                return -1;
            i += at;
            if (TryRead(data[i..], out _, out _, out _, out _))
                return i;
        }
        return -1;
    }
}
