using System.Buffers;
using System.Text;
using Native = ErrorWatch.Interop.SdJournal;

namespace ErrorWatch.Publishing.Journal;

/// <summary>
/// Sends entries with libsystemd's sd_journal_sendv (thread-safe; it takes care of the binary form for
/// values with newlines and of entries too large for one datagram).
/// </summary>
public sealed unsafe class SdJournal : IJournal
{
    /// <summary>Above this many fields the iovecs go on the heap instead of the stack.</summary>
    private const int StackFields = 128;

    private readonly Lazy<string?> _loadProblem;

    public SdJournal()
        : this(Native.Lib)
    {
    }

    /// <summary>Probes <paramref name="library"/> instead of libsystemd.so.0 (tests of the missing-library path).</summary>
    internal SdJournal(string library) =>
        _loadProblem = new(() => Native.TryLoad(library, out var problem) ? null : problem);

    public static string SocketPath => Native.SocketPath;

    /// <summary>
    /// Checked on every call (one stat): sd_journal_sendv reports success when the socket is missing,
    /// so this is the only way to notice journald is not there.
    /// </summary>
    public bool IsAvailable => _loadProblem.Value is null && File.Exists(Native.SocketPath);

    public string UnavailableReason =>
        _loadProblem.Value ?? (File.Exists(Native.SocketPath) ? "journald is reachable" : $"{Native.SocketPath} missing");

    public int Send(JournalEntry entry)
    {
        var fields = entry.Fields;
        if (fields.Count == 0)
            return -Interop.Libc.EINVAL;
        if (_loadProblem.Value is not null)
            return -Interop.Libc.ENOSYS;

        // One buffer holding "NAME=value" back to back; each iovec points into it.
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Max(entry.PayloadLength, 1));
        var heapIov = fields.Count > StackFields ? new Native.IoVec[fields.Count] : null;
        Span<Native.IoVec> stackIov = heapIov is null ? stackalloc Native.IoVec[fields.Count] : default;
        try
        {
            fixed (byte* start = buffer)
            fixed (Native.IoVec* heap = heapIov)
            fixed (Native.IoVec* stack = stackIov)
            {
                var iov = heap != null ? heap : stack;
                var offset = 0;
                for (var i = 0; i < fields.Count; i++)
                {
                    var (name, value) = fields[i];
                    var length = Encoding.ASCII.GetBytes(name, buffer.AsSpan(offset));
                    buffer[offset + length++] = (byte)'=';
                    value.CopyTo(buffer.AsSpan(offset + length));
                    length += value.Length;
                    iov[i] = new Native.IoVec { Base = start + offset, Length = (nuint)length };
                    offset += length;
                }
                return Native.SendV(iov, fields.Count);
            }
        }
        catch (DllNotFoundException)
        {
            return -Interop.Libc.ENOSYS;
        }
        catch (EntryPointNotFoundException)
        {
            return -Interop.Libc.ENOSYS;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
