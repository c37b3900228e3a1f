using System.Buffers.Text;
using System.Runtime.InteropServices;
using ErrorWatch.Interop;
using ErrorWatch.Kernel;

namespace ErrorWatch.Health.KernelLog;

/// <summary>
/// The kernel's log lines as journald stored them (it reads /dev/kmsg itself: _TRANSPORT=kernel), for
/// where /dev/kmsg cannot be opened: the unit's ProtectKernelLogs=yes, no CAP_SYSLOG under
/// kernel.dmesg_restrict=1. Read with libsystemd's sd-journal (Interop/SdJournal) and handed over as
/// the <see cref="KmsgRecord"/> /dev/kmsg would have given, so the matcher cannot tell the two apart.
/// Poll <see cref="Fd"/> (sd-journal's inotify fd; it changes when the journal is opened again) for
/// <see cref="Events"/>, then call <see cref="ReadAvailable"/>. Opening never throws:
/// <see cref="Problem"/> says why it did not open.
/// </summary>
/// <remarks>
/// <para>journald keeps of a /dev/kmsg record its priority (PRIORITY=level, SYSLOG_FACILITY=facility:
/// 1 for lines user space wrote, which journald also files under _TRANSPORT=kernel), its timestamp
/// (_SOURCE_MONOTONIC_TIMESTAMP, the record's TS_USEC), its message with the kernel's \xNN escapes
/// undone (MESSAGE: raw bytes, newlines, escape sequences and all) and its SUBSYSTEM= and DEVICE=
/// dictionary lines (_KERNEL_SUBSYSTEM, _KERNEL_DEVICE). The record is rebuilt from exactly these,
/// escaped again as the kernel escapes (bytes below 0x20, from 0x7F up, and the backslash as \xNN):
/// every value is an untrusted byte string, and one that is missing, out of range or too long costs
/// that record only (<see cref="Malformed"/>). The sequence number is this reader's count, since
/// journald does not keep the kernel's; the flags are "-", since it does not keep those either.</para>
/// <para>Memory: sd-journal maps the files and every page it touches stays in this process's RSS
/// (with the kernel's fault-around, 64 KiB per touch) until the file is closed. Positioning alone
/// costs each open file a walk of its entry arrays (measured: 5.5 MiB over 21 archived files of a
/// 384 MiB journal), and each entry read its pages. So the whole journal (every file of this
/// machine's system journal) is open only to catch up: at the start, and after journald rotated its
/// file. Then only the files being written (system.journal in /run/log/journal/MACHINE-ID and
/// /var/log/journal/MACHINE-ID) stay open, and after every read that found entries the journal is
/// closed and opened again at the last entry read (its cursor), which unmaps what the read touched.
/// No _BOOT_ID match (its entry array, one item per entry, is the longest of all): the backlog is
/// bounded by stepping back entry by entry and comparing each one's boot id with journald's (the
/// newest entry's in the files it writes; in a container not necessarily what /proc says).</para>
/// <para>Wake-ups: the inotify fd fires whenever journald writes to a file in those directories (it
/// coalesces its notifications), not only for kernel lines, so a loud system wakes the poller more
/// often than /dev/kmsg would; each such wake-up costs one sd_journal_process and one sd_journal_next.</para>
/// </remarks>
public sealed unsafe class KernelJournalReader : IKernelLogSource
{
    /// <summary>
    /// How many of this boot's kernel lines to read back at the start: about what the kernel's ring
    /// buffer holds (a 128 KiB ring holds about 1000 lines), which is what /dev/kmsg gives from its
    /// beginning. Each costs the pages of its entry while it is read (not after).
    /// </summary>
    public const int DefaultBacklog = 1000;

    /// <summary>Entries one read looks at before the journal is opened again (and what they touched unmapped).</summary>
    public const int BatchLimit = 64;

    /// <summary>The /dev/kmsg record the reader rebuilds must fit the kmsg reader's buffer, as the kernel's do.</summary>
    public const int BufferSize = KernelLogReader.BufferSize;

    /// <summary>The file journald writes in each journal directory; the others are archived and never change.</summary>
    public const string ActiveFile = "system.journal";

    private const int MaxPropertyBytes = 256;

    private readonly byte[] _buffer = new byte[BufferSize];
    private readonly byte[] _message = new byte[BufferSize];
    private readonly byte[] _subsystem = new byte[MaxPropertyBytes];
    private readonly byte[] _device = new byte[MaxPropertyBytes];
    private readonly string[] _directories;
    private SdId128.Id? _bootId;
    private nint _journal;
    private bool _wide;
    private int _fd = -1;
    private short _events;
    private bool _onEntry;
    private bool _onUnreadEntry;
    private int _walkBack;
    private readonly int _backlog;
    private long _startedAt;
    private byte[]? _cursor;
    private ulong _sequence;

    /// <param name="backlog">How many of this boot's kernel lines already in the journal to read first; 0 for only new ones.</param>
    /// <param name="directory">A journal directory to read instead of the system's (tests); null for the system journal.</param>
    public KernelJournalReader(int backlog = DefaultBacklog, string? directory = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(backlog);
        Directory = directory;
        _directories = directory is not null ? [directory] : SystemDirectories();
        if (!SdJournal.TryLoad(SdJournal.Lib, out var missing))
        {
            Problem = missing;
            return;
        }
        // Only whether there is a journal to read: sd-journal opens and positions at the first
        // read, on the poller's thread, after its first checks (a first look at every file can
        // take a while on a cold cache, and the start must not wait for it).
        if (!HasFiles(out var problem))
        {
            Problem = problem;
            Stopped = true;
            return;
        }
        _backlog = backlog;
        Pending = true;
    }

    /// <summary>The directory read instead of the system journal, or null.</summary>
    public string? Directory { get; }

    public string Name => "journal";

    /// <summary>There is a journal to read (it is opened by the first read).</summary>
    public bool IsOpen => !Stopped;

    public bool Stopped { get; private set; }

    /// <summary>How long the first read took to catch up with the journal (open, backlog, the switch to the files being written), once it has.</summary>
    public TimeSpan? CaughtUpAfter { get; private set; }

    /// <summary>True while every file of the journal is open (catching up), false while only the files being written are.</summary>
    public bool CatchingUp => _wide;

    public int Fd => _fd;

    public short Events => _events;

    public bool Pending { get; private set; }

    public int TimeoutMs
    {
        get
        {
            if (_journal == 0)
                return -1;
            ulong until;
            if (SdJournal.GetTimeout(_journal, &until) < 0 || until == ulong.MaxValue)
                return -1;
            // Stopwatch reads CLOCK_MONOTONIC on Linux, the clock sd_journal_get_timeout answers in.
            var now = (ulong)(System.Diagnostics.Stopwatch.GetTimestamp() / (System.Diagnostics.Stopwatch.Frequency / 1_000_000));
            return until <= now ? 0 : (int)Math.Min((until - now + 999) / 1000, int.MaxValue);
        }
    }

    public string? Problem { get; private set; }

    /// <summary>
    /// Set by the first read when the journal holds no kernel line of this boot: journald does not
    /// seem to read /dev/kmsg (ReadKMsg=no; a container's journald), so this source may stay silent.
    /// </summary>
    public string? Note { get; private set; }

    /// <summary>Entries skipped because a field was missing, out of range or too long.</summary>
    public long Malformed { get; private set; }

    /// <summary>Why the last malformed entry was skipped.</summary>
    public string? LastMalformed { get; private set; }

    /// <summary>How many of this boot's earlier kernel lines the start found to read first.</summary>
    public int Backlog { get; private set; }

    /// <summary>How many times the journal was opened again (after reads, after rotations).</summary>
    public long Reopened { get; private set; }

    /// <summary>/run/log/journal/MACHINE-ID and /var/log/journal/MACHINE-ID (machine-id(5)), where journald keeps this machine's system journal.</summary>
    private static string[] SystemDirectories()
    {
        try
        {
            var id = File.ReadAllText("/etc/machine-id").Trim();
            if (id.Length == 32 && id.All(char.IsAsciiHexDigitLower))
                return [$"/run/log/journal/{id}", $"/var/log/journal/{id}"];
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return []; // the whole journal stays open: correct, only dearer
    }

    /// <summary>This boot's id as /proc/sys/kernel/random/boot_id says it, in sd-journal's form, or null.</summary>
    private static SdId128.Id? ProcBootId()
    {
        var hex = BootId.Current?.Replace("-", "", StringComparison.Ordinal);
        if (hex is not { Length: 32 } || !hex.All(char.IsAsciiHexDigit))
            return null;
        var bytes = Convert.FromHexString(hex);
        // sd_id128_t is the 16 bytes in order; its two qwords are read from them in memory order.
        return new SdId128.Id { Low = BitConverter.ToUInt64(bytes, 0), High = BitConverter.ToUInt64(bytes, 8) };
    }

    private bool OpenWide(out string? problem)
    {
        nint journal;
        // Only this machine's system journal: kernel lines are never in user journals, nor in
        // the files systemd-journal-remote keeps for other machines.
        var rc = Directory is null
            ? SdJournal.Open(&journal, SdJournal.SD_JOURNAL_LOCAL_ONLY | SdJournal.SD_JOURNAL_SYSTEM)
            : SdJournal.OpenDirectory(&journal, Directory, 0);
        if (rc < 0)
        {
            problem = $"sd_journal_open: {Errno(-rc)}";
            return false;
        }
        _journal = journal;
        _wide = true;
        if (Setup(out problem))
            return true;
        CloseJournal();
        return false;
    }

    /// <summary>Opens only the files journald writes to; false (nothing opened) when there are none to name.</summary>
    private bool OpenNarrow(out string? problem)
    {
        if ((_journal = OpenActiveFiles(out problem)) == 0)
            return false;
        _wide = false;
        if (Setup(out problem))
            return true;
        CloseJournal();
        return false;
    }

    /// <summary>sd_journal_open_files on the files journald writes to (0 when there are none, or they do not open).</summary>
    private nint OpenActiveFiles(out string? problem)
    {
        problem = null;
        var paths = _directories.Select(d => Path.Combine(d, ActiveFile)).Where(File.Exists).ToList();
        if (paths.Count == 0)
            return 0;
        var handles = paths.Select(p => GCHandle.Alloc(System.Text.Encoding.UTF8.GetBytes(p + "\0"), GCHandleType.Pinned)).ToArray();
        try
        {
            var array = stackalloc byte*[handles.Length + 1];
            for (var i = 0; i < handles.Length; i++)
                array[i] = (byte*)handles[i].AddrOfPinnedObject();
            array[handles.Length] = null;
            nint journal;
            var rc = SdJournal.OpenFiles(&journal, array, 0);
            if (rc >= 0)
                return journal;
            problem = $"sd_journal_open_files: {Errno(-rc)}";
            return 0;
        }
        finally
        {
            foreach (var handle in handles)
                handle.Free();
        }
    }

    /// <summary>
    /// This boot as journald knows it: the boot of the newest entry in the files it writes (it stamps
    /// each entry with the boot it runs in). In an nspawn container that is the container's own
    /// boot id, which a service with ProtectKernelTunables=yes does not see: there /proc says the
    /// host's. Only those files, without a match: over every file, finding the newest entry walks
    /// each file's whole entry-array chain (12 MiB resident for 21 files, against 0.6 MiB for one).
    /// </summary>
    private SdId128.Id? JournaldBoot()
    {
        var journal = OpenActiveFiles(out _);
        if (journal == 0)
            return null;
        try
        {
            ulong usec;
            SdId128.Id boot;
            SdJournal.SeekTail(journal);
            return SdJournal.Previous(journal) > 0 && SdJournal.GetMonotonicUsec(journal, &usec, &boot) >= 0 ? boot : null;
        }
        finally
        {
            SdJournal.Close(journal);
        }
    }

    private bool Setup(out string? problem)
    {
        _onEntry = false;
        _onUnreadEntry = false;
        // First, so that the watches exist before the position is taken: a file journald creates
        // meanwhile is still seen.
        var fd = SdJournal.GetFd(_journal);
        if (fd < 0)
        {
            problem = $"sd_journal_get_fd: {Errno(-fd)}";
            return false;
        }
        var events = SdJournal.GetEvents(_journal);
        if (events < 0)
        {
            problem = $"sd_journal_get_events: {Errno(-events)}";
            return false;
        }
        // Anything that could not hold a whole kernel record is decompressed only that far.
        SdJournal.SetDataThreshold(_journal, (nuint)(KernelLogMatcher.MaxMessageBytes + "MESSAGE=".Length + 1));
        if (!MatchKernel(out problem))
            return false;
        _fd = fd;
        _events = (short)events;
        problem = null;
        return true;
    }

    private bool MatchKernel(out string? problem)
    {
        var match = "_TRANSPORT=kernel"u8;
        int rc;
        fixed (byte* p = match)
            rc = SdJournal.AddMatch(_journal, p, (nuint)match.Length);
        problem = rc < 0 ? $"sd_journal_add_match: {Errno(-rc)}" : null;
        return rc >= 0;
    }

    /// <summary>Whether there are journal files to open: the system journal's (system*.journal), or any in <see cref="Directory"/>.</summary>
    private bool HasFiles(out string? problem)
    {
        string[] places = _directories.Length > 0 ? _directories : ["/run/log/journal", "/var/log/journal"];
        var pattern = Directory is null ? "system*.journal" : "*.journal";
        var search = _directories.Length > 0 ? SearchOption.TopDirectoryOnly : SearchOption.AllDirectories;
        try
        {
            if (places.Any(d => System.IO.Directory.Exists(d) && System.IO.Directory.EnumerateFiles(d, pattern, search).Any()))
            {
                problem = null;
                return true;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problem = $"cannot list the journal files: {e.Message}";
            return false;
        }
        problem = $"no journal files in {Directory ?? string.Join(" or ", places)} (no systemd-journald here, or it stores nothing)";
        return false;
    }

    /// <summary>
    /// At the first read. Like /dev/kmsg from its beginning: the lines of this boot still at hand, at most
    /// <paramref name="backlog"/> of them, found by stepping back from the last one until another
    /// boot's (on the health loop's thread, in steps of <see cref="BatchLimit"/>: see
    /// <see cref="WalkBack"/>). Here only the last one is looked at. Without a boot id to tell
    /// this boot's lines, only new lines.
    /// </summary>
    private bool Start(int backlog, out string? problem)
    {
        problem = null;
        SdJournal.SeekTail(_journal);
        var rc = SdJournal.Previous(_journal);
        if (rc < 0)
        {
            problem = $"sd_journal_previous: {Errno(-rc)}";
            return false;
        }
        if (rc == 0)
            SdJournal.SeekHead(_journal); // nothing matches yet, so whatever comes is new (seek_tail would repeat its last entry)
        _onEntry = rc > 0;
        var thisBoot = _onEntry && IsThisBoot();
        if (!thisBoot && _bootId is not null)
            Note = "the journal holds no kernel line of this boot: journald may not read /dev/kmsg here (ReadKMsg=no, or a container's journald)";
        if (thisBoot && backlog > 0)
        {
            // On this boot's last line: read first, unless stepping back finds older ones.
            _onUnreadEntry = true;
            Backlog = 1;
            _walkBack = backlog - 1;
        }
        return true;
    }

    private bool IsThisBoot()
    {
        ulong usec;
        SdId128.Id boot;
        return _bootId is { } thisBoot && SdJournal.GetMonotonicUsec(_journal, &usec, &boot) >= 0 && boot.Low == thisBoot.Low && boot.High == thisBoot.High;
    }

    /// <summary>
    /// Steps back over up to <see cref="BatchLimit"/> more of this boot's lines; true when done
    /// (<see cref="Backlog"/> found, or the journal's or this boot's first line reached).
    /// </summary>
    private bool WalkBack()
    {
        for (var steps = 0; steps < BatchLimit && _walkBack > 0; steps++)
        {
            var rc = SdJournal.Previous(_journal);
            if (rc < 0)
            {
                Problem = $"sd_journal_previous: {Errno(-rc)}";
                _walkBack = 0;
                break;
            }
            if (rc == 0)
            {
                _walkBack = 0; // the first kernel line there is: still on it, unread
                break;
            }
            if (!IsThisBoot())
            {
                _walkBack = 0;
                _onUnreadEntry = false; // an earlier boot's: next() goes on after it
                break;
            }
            _walkBack--;
            Backlog++;
        }
        return _walkBack == 0;
    }

    public int ReadAvailable(Action<KmsgRecord> onRecord, int maxRecords = int.MaxValue)
    {
        ArgumentNullException.ThrowIfNull(onRecord);
        if (Stopped)
            return 0;
        if (_journal == 0)
        {
            // The first read: the whole journal, positioned for the backlog.
            _startedAt = System.Diagnostics.Stopwatch.GetTimestamp();
            _bootId = JournaldBoot() ?? ProcBootId();
            if (!OpenWide(out var problem) || !Start(_backlog, out problem))
            {
                Fail(problem ?? "cannot open the journal");
                return 0;
            }
        }
        else
        {
            // Drains the inotify fd (else it stays readable) and follows new, rotated and deleted files.
            var processed = SdJournal.Process(_journal);
            if (processed < 0)
            {
                Fail($"sd_journal_process: {Errno(-processed)}");
                return 0;
            }
            // Only the files being written are open and one went away (journald rotated it, or flushed
            // /run to /var): whatever it got after the last read is in an archived file now. Catch up
            // over the whole journal from the last entry read.
            if (processed == SdJournal.SD_JOURNAL_INVALIDATE && !_wide && !Reopen(wide: true))
                return 0;
        }
        if (_walkBack > 0 && !WalkBack())
        {
            // What this step touched is unmapped before the next one.
            if (Reopen(wide: true))
                Pending = true;
            return 0;
        }

        Pending = false;
        var limit = Math.Min(maxRecords, BatchLimit);
        int delivered = 0, examined = 0;
        while (true)
        {
            if (examined >= limit)
            {
                Pending = true;
                break;
            }
            if (_onUnreadEntry)
            {
                _onUnreadEntry = false;
            }
            else
            {
                var rc = SdJournal.Next(_journal);
                if (rc == 0)
                    break;
                if (rc < 0)
                {
                    // A damaged file: say so, and try again at the next wake-up rather than spin.
                    Problem = $"sd_journal_next: {Errno(-rc)}";
                    break;
                }
                _onEntry = true;
            }
            examined++;
            var length = Render(out var why);
            if (length < 0 || !KmsgRecord.TryParse(_buffer.AsSpan(0, length), out var record, out why))
            {
                Malformed++;
                LastMalformed = why;
                continue;
            }
            onRecord(record);
            delivered++;
        }
        // What the read touched stays mapped while the journal is open: open it again at the last
        // entry read. The whole journal stays open until it has caught up (the backlog may be in
        // archived files), then only the files being written, when they can be named.
        var caughtUp = !Pending;
        var wide = _wide && !(caughtUp && _directories.Any(d => File.Exists(Path.Combine(d, ActiveFile))));
        if (examined > 0 || wide != _wide)
        {
            if (!Reopen(wide))
                return delivered;
            if (!wide && CaughtUpAfter is null)
                CaughtUpAfter = System.Diagnostics.Stopwatch.GetElapsedTime(_startedAt);
            // Anything appended since the last sd_journal_next came before the new inotify watch: look once more.
            Pending = true;
        }
        return delivered;
    }

    /// <summary>Closes the journal and opens it again (whole or only the files being written) at the last entry read.</summary>
    private bool Reopen(bool wide)
    {
        if (_onEntry)
        {
            byte* cursor;
            if (SdJournal.GetCursor(_journal, &cursor) >= 0)
            {
                _cursor = [.. MemoryMarshal.CreateReadOnlySpanFromNullTerminated(cursor), 0];
                NativeMemory.Free(cursor); // free(3)
            }
        }
        var unread = _onUnreadEntry;
        CloseJournal();
        Reopened++;
        // The files being written when asked for and they open, else all of them.
        if ((wide || !OpenNarrow(out _)) && !OpenWide(out var problem))
        {
            Fail(problem ?? "cannot open the journal again");
            return false;
        }
        if (_cursor is null)
        {
            SdJournal.SeekHead(_journal); // nothing was ever read: everything there is new
            return true;
        }
        fixed (byte* cursor = _cursor)
        {
            if (SdJournal.SeekCursor(_journal, cursor) < 0)
            {
                // Not a cursor this libsystemd takes: from the newest kernel line on, never from the oldest.
                SdJournal.SeekTail(_journal);
                _onEntry = SdJournal.Previous(_journal) > 0;
                return true;
            }
            var rc = SdJournal.Next(_journal);
            if (rc > 0)
            {
                _onEntry = true;
                // The cursor's own entry was read before (unless it was left unread); a later
                // one, where these files do not hold the cursor's, was not.
                _onUnreadEntry = unread || SdJournal.TestCursor(_journal, cursor) <= 0;
            }
        }
        return true;
    }

    private void Fail(string problem)
    {
        Problem = problem;
        Stopped = true;
        Close(); // the fd would stay readable: polling it again would spin
    }

    /// <summary>The current entry as a /dev/kmsg record in <see cref="_buffer"/>: its length, or -1 and why not.</summary>
    private int Render(out string? why)
    {
        int facility = -1, level = -1, messageLength = -1, subsystemLength = -1, deviceLength = -1;
        ulong timestamp = 0;
        SdJournal.RestartData(_journal);
        byte* data;
        nuint size;
        int rc;
        while ((rc = SdJournal.EnumerateAvailableData(_journal, &data, &size)) > 0)
        {
            // "NAME=value", read in place (the file's mapping, or a decompressed copy); nothing is
            // copied but the values below, each bounded.
            var field = new ReadOnlySpan<byte>(data, (int)Math.Min(size, int.MaxValue));
            // The first of a repeated field counts, as sd_journal_get_data would take it.
            if (messageLength == -1 && Value(field, "MESSAGE="u8, out var message))
                messageLength = message.Length > KernelLogMatcher.MaxMessageBytes ? -2 : Escape(message, _message);
            else if (level < 0 && Value(field, "PRIORITY="u8, out var priority))
                level = SmallNumber(priority, 7);
            else if (facility < 0 && Value(field, "SYSLOG_FACILITY="u8, out var fac))
                facility = SmallNumber(fac, 255);
            else if (timestamp == 0 && Value(field, "_SOURCE_MONOTONIC_TIMESTAMP="u8, out var usec))
                timestamp = Utf8Parser.TryParse(usec, out ulong t, out var used) && used == usec.Length ? t : 0;
            else if (subsystemLength < 0 && Value(field, "_KERNEL_SUBSYSTEM="u8, out var subsystem))
                subsystemLength = Escape(subsystem, _subsystem);
            else if (deviceLength < 0 && Value(field, "_KERNEL_DEVICE="u8, out var device))
                deviceLength = Escape(device, _device);
        }
        why = rc < 0 ? $"sd_journal_enumerate_available_data: {Errno(-rc)}"
            : messageLength == -1 ? "no MESSAGE"
            : messageLength < 0 ? "MESSAGE too long"
            : level < 0 ? "no PRIORITY from 0 to 7"
            : facility < 0 ? "no SYSLOG_FACILITY from 0 to 255" // never trusted by default
            : null;
        if (why is not null)
            return -1;

        // PRI,SEQ,TS_USEC,FLAGS;MESSAGE\n[ SUBSYSTEM=...\n][ DEVICE=...\n]
        var output = _buffer.AsSpan();
        var at = 0;
        var fits = AppendDecimal(output, ref at, (ulong)(facility << 3 | level)) && Append(output, ref at, ","u8)
            && AppendDecimal(output, ref at, ++_sequence) && Append(output, ref at, ","u8)
            && AppendDecimal(output, ref at, timestamp) && Append(output, ref at, ",-;"u8)
            && Append(output, ref at, _message.AsSpan(0, messageLength)) && Append(output, ref at, "\n"u8)
            && (subsystemLength <= 0 || (Append(output, ref at, " SUBSYSTEM="u8) && Append(output, ref at, _subsystem.AsSpan(0, subsystemLength)) && Append(output, ref at, "\n"u8)))
            && (deviceLength <= 0 || (Append(output, ref at, " DEVICE="u8) && Append(output, ref at, _device.AsSpan(0, deviceLength)) && Append(output, ref at, "\n"u8)));
        if (!fits)
        {
            why = $"longer than {BufferSize} bytes as a /dev/kmsg record";
            return -1;
        }
        return at;
    }

    private static bool Append(Span<byte> output, ref int at, ReadOnlySpan<byte> bytes)
    {
        if (!bytes.TryCopyTo(output.Slice(at)))
            return false;
        at += bytes.Length;
        return true;
    }

    private static bool AppendDecimal(Span<byte> output, ref int at, ulong number)
    {
        if (!Utf8Formatter.TryFormat(number, output.Slice(at), out var written))
            return false;
        at += written;
        return true;
    }

    private static bool Value(ReadOnlySpan<byte> field, ReadOnlySpan<byte> name, out ReadOnlySpan<byte> value)
    {
        value = field.StartsWith(name) ? field.Slice(name.Length) : default;
        return field.StartsWith(name);
    }

    /// <summary>Plain decimal digits up to <paramref name="max"/>, else -1.</summary>
    private static int SmallNumber(ReadOnlySpan<byte> text, int max)
    {
        if (text.IsEmpty || text.Length > 3)
            return -1;
        var n = 0;
        foreach (var b in text)
        {
            if (b < (byte)'0' || b > (byte)'9')
                return -1;
            n = n * 10 + (b - '0');
        }
        return n <= max ? n : -1;
    }

    /// <summary>
    /// <paramref name="raw"/> escaped as the kernel writes /dev/kmsg text (printk's msg_add_ext_text:
    /// bytes below 0x20, from 0x7F up, and '\' as \xNN, lower-case): its length in
    /// <paramref name="output"/>, or -2 when it does not fit.
    /// </summary>
    internal static int Escape(ReadOnlySpan<byte> raw, Span<byte> output)
    {
        var at = 0;
        foreach (var b in raw)
        {
            if (b < 0x20 || b >= 0x7F || b == (byte)'\\')
            {
                if (at + 4 > output.Length)
                    return -2;
                output[at++] = (byte)'\\';
                output[at++] = (byte)'x';
                output[at++] = "0123456789abcdef"u8[b >> 4];
                output[at++] = "0123456789abcdef"u8[b & 0xF];
            }
            else
            {
                if (at + 1 > output.Length)
                    return -2;
                output[at++] = b;
            }
        }
        return at;
    }

    private void CloseJournal()
    {
        if (_journal != 0)
            SdJournal.Close(_journal);
        _journal = 0;
        _fd = -1;
        _onEntry = false;
        _onUnreadEntry = false;
    }

    private void Close()
    {
        CloseJournal();
        Pending = false;
    }

    public void Dispose() => Close();

    private static string Errno(int errno)
    {
        ErrnoTable.TryGet(errno, out var name, out var text);
        return $"{name} ({text})";
    }
}
