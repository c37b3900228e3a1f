using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// The entry points of systemd's &lt;systemd/sd-journal.h&gt; that ErrorWatch uses, from
/// libsystemd.so.0 (present on every systemd distribution, absent in minimal containers: callers
/// probe with <see cref="TryLoad"/> and treat <see cref="DllNotFoundException"/> as "no journal"):
/// sd_journal_sendv to write entries, and the reading side (sd_journal_open ... sd_journal_close)
/// for the kernel's lines when /dev/kmsg cannot be read (Health/KernelLog/KernelJournalReader).
/// </summary>
/// <remarks>
/// Reading: none of these calls sets errno; each returns a negative errno value on failure. An
/// sd_journal object is not thread-safe: one thread at a time may use it. Data returned by
/// sd_journal_enumerate_available_data points into the journal file's mapping or into a
/// decompression buffer of the object, valid only until the next call on it.
/// </remarks>
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

    // ---- Reading (libsystemd 252 exports all of these; enumerate_available_data since 246) ----

    // enum { SD_JOURNAL_LOCAL_ONLY = 1 << 0, SD_JOURNAL_RUNTIME_ONLY = 1 << 1, SD_JOURNAL_SYSTEM = 1 << 2, ... }:
    // open flags. LOCAL_ONLY: only this machine's files (not those journal-remote received);
    // SYSTEM: the system journal only (no user-*.journal files).
    public const int SD_JOURNAL_LOCAL_ONLY = 1 << 0, SD_JOURNAL_SYSTEM = 1 << 2;

    // enum { SD_JOURNAL_NOP, SD_JOURNAL_APPEND, SD_JOURNAL_INVALIDATE }: what sd_journal_process found.
    public const int SD_JOURNAL_NOP = 0, SD_JOURNAL_APPEND = 1, SD_JOURNAL_INVALIDATE = 2;

    // int sd_journal_open(sd_journal **ret, int flags): every journal file in /run/log/journal and
    // /var/log/journal that the flags select, each opened and mapped lazily (mmap windows).
    [LibraryImport(Lib, EntryPoint = "sd_journal_open")]
    public static partial int Open(nint* journal, int flags);

    // int sd_journal_open_directory(sd_journal **ret, const char *path, int flags): the files of one
    // directory (flags 0), instead of the system's.
    [LibraryImport(Lib, EntryPoint = "sd_journal_open_directory", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int OpenDirectory(nint* journal, string path, int flags);

    // int sd_journal_open_files(sd_journal **ret, const char **paths, int flags): exactly these files
    // (a NULL-terminated array), flags 0. Its inotify fd watches their directories, but files created
    // there later are not added; one renamed or deleted (journald's rotation) is dropped, and
    // sd_journal_process says SD_JOURNAL_INVALIDATE.
    [LibraryImport(Lib, EntryPoint = "sd_journal_open_files")]
    public static partial int OpenFiles(nint* journal, byte** paths, int flags);

    // void sd_journal_close(sd_journal *j): closes the files and the inotify fd, unmaps everything.
    [LibraryImport(Lib, EntryPoint = "sd_journal_close")]
    public static partial void Close(nint journal);

    // int sd_journal_add_match(sd_journal *j, const void *data, size_t size): "FIELD=value"; matches
    // of different fields must all hold (AND), of one field any (OR). size 0 means strlen(data).
    [LibraryImport(Lib, EntryPoint = "sd_journal_add_match")]
    public static partial int AddMatch(nint journal, byte* data, nuint size);

    // int sd_journal_set_data_threshold(sd_journal *j, size_t sz): how much of a compressed field
    // enumerate/get_data decompress (0: all; default 64 KiB); uncompressed fields come whole.
    [LibraryImport(Lib, EntryPoint = "sd_journal_set_data_threshold")]
    public static partial int SetDataThreshold(nint journal, nuint size);

    // int sd_journal_seek_head(sd_journal *j) / sd_journal_seek_tail(sd_journal *j): before the first
    // / after the last entry. The first sd_journal_next after seek_tail gives the last entry that
    // is already there (systemd 252), not the next one appended: step onto it with sd_journal_previous.
    [LibraryImport(Lib, EntryPoint = "sd_journal_seek_head")]
    public static partial int SeekHead(nint journal);

    [LibraryImport(Lib, EntryPoint = "sd_journal_seek_tail")]
    public static partial int SeekTail(nint journal);

    // int sd_journal_previous(sd_journal *j) / sd_journal_next(sd_journal *j): 1 and on the previous /
    // next matching entry, 0 when there is none (the position stays where it was).
    [LibraryImport(Lib, EntryPoint = "sd_journal_previous")]
    public static partial int Previous(nint journal);

    [LibraryImport(Lib, EntryPoint = "sd_journal_next")]
    public static partial int Next(nint journal);

    // int sd_journal_get_monotonic_usec(sd_journal *j, uint64_t *ret, sd_id128_t *ret_boot_id): the
    // current entry's CLOCK_MONOTONIC time and the boot it belongs to, from the entry object alone.
    [LibraryImport(Lib, EntryPoint = "sd_journal_get_monotonic_usec")]
    public static partial int GetMonotonicUsec(nint journal, ulong* usec, SdId128.Id* bootId);

    // int sd_journal_get_cursor(sd_journal *j, char **cursor): the current entry's cursor, a
    // NUL-terminated string the caller frees with free(3). int sd_journal_seek_cursor(sd_journal *j,
    // const char *cursor): the next sd_journal_next lands on that entry, or on the first one after
    // it when these files do not hold it. int sd_journal_test_cursor(sd_journal *j, const char
    // *cursor): > 0 when the current entry is the cursor's.
    [LibraryImport(Lib, EntryPoint = "sd_journal_get_cursor")]
    public static partial int GetCursor(nint journal, byte** cursor);

    [LibraryImport(Lib, EntryPoint = "sd_journal_seek_cursor")]
    public static partial int SeekCursor(nint journal, byte* cursor);

    [LibraryImport(Lib, EntryPoint = "sd_journal_test_cursor")]
    public static partial int TestCursor(nint journal, byte* cursor);

    // void sd_journal_restart_data(sd_journal *j) and
    // int sd_journal_enumerate_available_data(sd_journal *j, const void **data, size_t *length):
    // the current entry's fields one by one as "FIELD=value" bytes (not NUL-terminated), 1 per
    // field, 0 after the last; fields that cannot be read (compression this build lacks, too
    // large) are skipped instead of failing the whole entry.
    [LibraryImport(Lib, EntryPoint = "sd_journal_restart_data")]
    public static partial void RestartData(nint journal);

    [LibraryImport(Lib, EntryPoint = "sd_journal_enumerate_available_data")]
    public static partial int EnumerateAvailableData(nint journal, byte** data, nuint* length);

    // int sd_journal_get_fd(sd_journal *j): an inotify fd over the journal directories and files,
    // made by the first call (which rescans the directories; called right after opening, so a file
    // created before the first poll is not missed). int sd_journal_get_events(sd_journal *j): the poll(2) events to wait for
    // (POLLIN). int sd_journal_get_timeout(sd_journal *j, uint64_t *timeout_usec): an absolute
    // CLOCK_MONOTONIC time to wake by even without an event, (uint64_t) -1 for none (none unless
    // the files are on a network filesystem, where inotify says nothing).
    [LibraryImport(Lib, EntryPoint = "sd_journal_get_fd")]
    public static partial int GetFd(nint journal);

    [LibraryImport(Lib, EntryPoint = "sd_journal_get_events")]
    public static partial int GetEvents(nint journal);

    [LibraryImport(Lib, EntryPoint = "sd_journal_get_timeout")]
    public static partial int GetTimeout(nint journal, ulong* timeoutUsec);

    // int sd_journal_process(sd_journal *j): after the fd was readable: drains the inotify events,
    // opens new files and drops deleted ones; SD_JOURNAL_NOP, _APPEND or _INVALIDATE (files came or
    // went; the position stays valid).
    [LibraryImport(Lib, EntryPoint = "sd_journal_process")]
    public static partial int Process(nint journal);

    // int sd_journal_get_usage(sd_journal *j, uint64_t *bytes): the disk space the open files take.
    [LibraryImport(Lib, EntryPoint = "sd_journal_get_usage")]
    public static partial int GetUsage(nint journal, ulong* bytes);

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
