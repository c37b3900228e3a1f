using System.Buffers.Text;
using System.Text;

namespace ErrorWatch.Health.KernelLog;

/// <summary>
/// One /dev/kmsg record as read(2) returns it (Documentation/ABI/testing/dev-kmsg):
/// <c>PRI,SEQ,TS_USEC,FLAGS[,FIELD...];MESSAGE\n</c> followed by optional <c> KEY=VALUE\n</c> lines.
/// A view over the read buffer: nothing is copied until <see cref="MessageText"/> is asked for.
/// </summary>
/// <remarks>
/// The kernel writes bytes below 0x20, from 0x7F up, and the backslash as <c>\xNN</c>, so a message is
/// one line of ASCII. Those escapes are kept: turning them back into bytes would let a message forge
/// line breaks or control characters in whatever reports it.
/// </remarks>
public readonly ref struct KmsgRecord
{
    /// <summary>Facility 0..255 and level 0..7, as the kernel stores them (u8 facility, 3-bit level).</summary>
    public const int MaxPriority = 255 << 3 | 7;

    /// <summary>LOG_KERN. /dev/kmsg writes never get it: devkmsg_write() turns facility 0 into LOG_USER.</summary>
    public const int KernelFacility = 0;

    private KmsgRecord(int priority, ulong sequence, ulong timestamp, ReadOnlySpan<byte> flags,
        ReadOnlySpan<byte> extraFields, ReadOnlySpan<byte> message, ReadOnlySpan<byte> properties)
    {
        Priority = priority;
        Sequence = sequence;
        TimestampMicroseconds = timestamp;
        Flags = flags;
        ExtraFields = extraFields;
        Message = message;
        Properties = properties;
    }

    /// <summary>PRI: facility &lt;&lt; 3 | level.</summary>
    public int Priority { get; }
    public int Facility => Priority >> 3;
    public int Level => Priority & 7;

    /// <summary>Set only by the kernel's own printk (see <see cref="KernelFacility"/>).</summary>
    public bool IsFromKernel => Facility == KernelFacility;

    /// <summary>The record's 64-bit sequence number; a gap between two reads means records were lost.</summary>
    public ulong Sequence { get; }

    /// <summary>CLOCK_MONOTONIC microseconds since boot (not wall-clock time).</summary>
    public ulong TimestampMicroseconds { get; }

    /// <summary>"-" normally, "c" for a continuation fragment (LOG_CONT).</summary>
    public ReadOnlySpan<byte> Flags { get; }

    /// <summary>Header fields after FLAGS, without the leading comma: "caller=T123" with CONFIG_PRINTK_CALLER.</summary>
    public ReadOnlySpan<byte> ExtraFields { get; }

    /// <summary>The message with its \xNN escapes, without the trailing newline.</summary>
    public ReadOnlySpan<byte> Message { get; }

    /// <summary>The continuation lines (" SUBSYSTEM=block\n DEVICE=b7:0\n"), as read.</summary>
    public ReadOnlySpan<byte> Properties { get; }

    /// <summary>The escaped message as a string; bytes that are not UTF-8 (never sent by the kernel) become U+FFFD.</summary>
    public string MessageText => Encoding.UTF8.GetString(Message);

    /// <summary>The value of one " KEY=VALUE" continuation line, still escaped.</summary>
    public bool TryGetProperty(ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        var rest = Properties;
        while (!rest.IsEmpty)
        {
            var newline = rest.IndexOf((byte)'\n');
            var line = newline < 0 ? rest : rest.Slice(0, newline);
            rest = newline < 0 ? default : rest.Slice(newline + 1);
            if (line.Length > key.Length + 1 && line[0] == (byte)' ' && line.Slice(1).StartsWith(key) && line[key.Length + 1] == (byte)'=')
            {
                value = line.Slice(key.Length + 2);
                return true;
            }
        }
        value = default;
        return false;
    }

    /// <summary>
    /// Parses one record. Never throws: anything that is not a well-formed header (missing ';', a
    /// non-numeric or out-of-range field, fewer than four fields) gives false and a problem text.
    /// A missing final newline is accepted, since the message is still delimited by the buffer.
    /// </summary>
    public static bool TryParse(ReadOnlySpan<byte> bytes, out KmsgRecord record, out string? problem)
    {
        record = default;
        var semicolon = bytes.IndexOf((byte)';');
        if (semicolon < 0)
        {
            problem = $"no ';' ending the header in {bytes.Length} bytes";
            return false;
        }
        var header = bytes.Slice(0, semicolon);
        if (header.IndexOf((byte)'\n') >= 0)
        {
            problem = "newline inside the header";
            return false;
        }

        // PRI,SEQ,TS_USEC,FLAGS then optional fields: split at the first three commas and an optional fourth.
        var c1 = header.IndexOf((byte)',');
        var c2 = c1 < 0 ? -1 : IndexAfter(header, c1);
        var c3 = c2 < 0 ? -1 : IndexAfter(header, c2);
        if (c3 < 0)
        {
            problem = "fewer than four header fields (PRI,SEQ,TS_USEC,FLAGS)";
            return false;
        }
        var c4 = IndexAfter(header, c3);
        var priorityField = header.Slice(0, c1);
        var sequenceField = header.Slice(c1 + 1, c2 - c1 - 1);
        var timestampField = header.Slice(c2 + 1, c3 - c2 - 1);
        var flags = c4 < 0 ? header.Slice(c3 + 1) : header.Slice(c3 + 1, c4 - c3 - 1);
        var extraFields = c4 < 0 ? default : header.Slice(c4 + 1);

        if (!TryDecimal(priorityField, out var priority) || priority > MaxPriority)
        {
            problem = $"PRI is not a number from 0 to {MaxPriority}";
            return false;
        }
        if (!TryDecimal(sequenceField, out var sequence))
        {
            problem = "SEQ is not a 64-bit number";
            return false;
        }
        if (!TryDecimal(timestampField, out var timestamp))
        {
            problem = "TS_USEC is not a 64-bit number";
            return false;
        }
        if (flags.IsEmpty)
        {
            problem = "empty FLAGS field";
            return false;
        }

        var body = bytes.Slice(semicolon + 1);
        var newline = body.IndexOf((byte)'\n');
        var message = newline < 0 ? body : body.Slice(0, newline);
        var properties = newline < 0 ? default : body.Slice(newline + 1);

        record = new KmsgRecord((int)priority, sequence, timestamp, flags, extraFields, message, properties);
        problem = null;
        return true;
    }

    /// <summary>The index of the next comma after <paramref name="comma"/>, or -1.</summary>
    private static int IndexAfter(ReadOnlySpan<byte> header, int comma)
    {
        var next = header.Slice(comma + 1).IndexOf((byte)',');
        return next < 0 ? -1 : comma + 1 + next;
    }

    /// <summary>Plain decimal digits only: no sign, no spaces, no overflow.</summary>
    private static bool TryDecimal(ReadOnlySpan<byte> field, out ulong value)
    {
        value = 0;
        if (field.IsEmpty || field.Length > 20)
            return false;
        foreach (var b in field)
        {
            if (b < (byte)'0' || b > (byte)'9')
                return false;
        }
        return Utf8Parser.TryParse(field, out value, out var consumed) && consumed == field.Length;
    }
}
