using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// The one entry point of systemd's &lt;systemd/sd-journal.h&gt; that ErrorWatch uses, from
/// libsystemd.so.0 (present on every systemd distribution, absent in minimal containers: callers
/// probe with <see cref="TryLoad"/> and treat <see cref="DllNotFoundException"/> as "no journal").
/// </summary>
internal static unsafe partial class SdJournal
{
    public const string Lib = "libsystemd.so.0";

    /// <summary>Where sd_journal_sendv sends its datagrams (fixed in journal-send.c, not configurable).</summary>
    public const string SocketPath = "/run/systemd/journal/socket";

    // <sys/uio.h> struct iovec { void *iov_base; size_t iov_len; }: 16 bytes on 64-bit.
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    // int sd_journal_sendv(const struct iovec *iov, int n);
    // Each iovec is one "FIELD=value" (no trailing newline). Returns 0 or a negative errno; no errno
    // variable is set, so no SetLastError. Observed in journal-send.c (v252 and main):
    //  - a value containing '\n' is re-sent in the native protocol's binary form
    //    (FIELD '\n' le64 length, data), so callers pass raw bytes as they are;
    //  - -EINVAL for an iovec of length <= 1, with no '=', starting with '=', or with '\n' before '=';
    //  - 0 (silently nothing) when the socket does not exist (ENOENT), hence the separate socket probe;
    //  - entries too big for a datagram go through a sealed memfd;
    //  - SYSLOG_IDENTIFIER defaults to program_invocation_short_name ("dotnet") if not passed.
    [LibraryImport(Lib, EntryPoint = "sd_journal_sendv")]
    public static partial int SendV(IoVec* iov, int n);

    /// <summary>
    /// Whether <paramref name="library"/> (normally <see cref="Lib"/>) loads and exports sd_journal_sendv;
    /// <paramref name="problem"/> says why not. Probing first turns a missing library into an answer
    /// instead of a <see cref="DllNotFoundException"/> on the first send.
    /// </summary>
    public static bool TryLoad(string library, out string? problem)
    {
        if (!NativeLibrary.TryLoad(library, typeof(SdJournal).Assembly, DllImportSearchPath.SafeDirectories, out var handle))
        {
            problem = $"{library} not found";
            return false;
        }
        if (!NativeLibrary.TryGetExport(handle, "sd_journal_sendv", out _))
        {
            problem = $"{library} has no sd_journal_sendv";
            return false;
        }
        problem = null;
        return true;
    }
}
