using System.Diagnostics;
using System.Text;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Interop;
using ErrorWatch.Tests.EndToEnd;

namespace ErrorWatch.Tests.Health;

/// <summary>
/// The journal as a source of kernel lines, for real: a journald of the test's own reads the real
/// /dev/kmsg while the test writes lines there (harmless: they are user space's, never trusted) or
/// makes the kernel write one (an ext4 error on a scratch filesystem); what <see cref="KernelJournalReader"/>
/// hands over must be what <see cref="KernelLogReader"/> reads from /dev/kmsg for the same line, and
/// the matcher must make the same signal of both.
/// </summary>
[Collection(ScratchCollection.Name)]
public sealed class KernelJournalReaderTests
{
    /// <summary>What a record said, copied out of the reader's buffer.</summary>
    private sealed record Line(int Facility, int Level, ulong Timestamp, byte[] Message, byte[] Properties, KernelLogSignal? Signal)
    {
        public string Text => Encoding.UTF8.GetString(Message);
    }

    [Fact]
    public void Escaping_is_the_kernels_for_every_byte()
    {
        var raw = Enumerable.Range(0, 256).Select(b => (byte)b).ToArray();
        var output = new byte[4 * raw.Length];
        var length = KernelJournalReader.Escape(raw, output);

        var expected = new StringBuilder();
        foreach (var b in raw)
            expected.Append(b < 0x20 || b >= 0x7F || b == '\\' ? $"\\x{b:x2}" : ((char)b).ToString());
        Assert.Equal(expected.ToString(), Encoding.ASCII.GetString(output, 0, length));
        Assert.Equal(-2, KernelJournalReader.Escape("a\nb"u8, new byte[5])); // needs 6
    }

    [Fact]
    public void Neither_kmsg_nor_a_journal_is_no_source_and_says_why_for_both()
    {
        var empty = Directory.CreateTempSubdirectory("errorwatch-nojournal-");
        try
        {
            using var source = KernelLogSources.Open(out var problem, "/nonexistent/errorwatch-kmsg", empty.FullName);
            Assert.Null(source);
            Assert.Contains("/nonexistent/errorwatch-kmsg does not exist", problem);
            Assert.Contains("the journal: no journal files in " + empty.FullName, problem);
        }
        finally
        {
            empty.Delete(recursive: true);
        }
    }

    [PrivateJournaldFact]
    public void Kmsg_when_it_opens_else_the_journal()
    {
        using var journald = new PrivateJournald();
        using (var kmsg = KernelLogSources.Open(out var none, KernelLogReader.DefaultPath, journald.Directory))
        {
            Assert.IsType<KernelLogReader>(kmsg);
            Assert.Equal("/dev/kmsg", kmsg!.Name);
            Assert.Null(none);
        }
        using var journal = KernelLogSources.Open(out var why, "/nonexistent/errorwatch-kmsg", journald.Directory);
        Assert.IsType<KernelJournalReader>(journal);
        Assert.Equal("journal", journal!.Name);
        Assert.Contains("/nonexistent/errorwatch-kmsg does not exist", why);
    }

    [PrivateJournaldFact]
    public void A_hostile_line_written_to_kmsg_reads_the_same_from_the_journal_and_is_not_trusted_by_either()
    {
        using var journald = new PrivateJournald();
        using var kmsg = new KernelLogReader(KernelLogReader.StartAt.End);
        using var journal = new KernelJournalReader(backlog: 0, journald.Directory);
        Assert.True(journal.IsOpen, journal.Problem);
        Drain(journal);

        var marker = $"errorwatch-test-{Guid.NewGuid():N}";
        // Escapes, a backslash, a tab, UTF-8, a quote: journald undoes the kernel's \xNN, the reader must redo it exactly.
        WriteKmsg(Encoding.UTF8.GetBytes($"<3>XFS (loop98): Metadata corruption detected at x+0x1/0x2, xfs_dir3_data block 0x78 \x1b[31m\\ é\t\"{marker}\n"));
        var fromKmsg = ReadUntil(kmsg, marker);
        var fromJournal = ReadUntil(journal, marker);

        Assert.Equal(1, fromKmsg.Facility); // user space's: devkmsg_write() never gives facility 0
        Assert.Equal(fromKmsg.Facility, fromJournal.Facility);
        Assert.Equal(3, fromJournal.Level);
        Assert.Equal(fromKmsg.Text, fromJournal.Text);
        Assert.Contains(@"\x1b[31m\x5c \xc3\xa9\x09""", fromJournal.Text);
        Assert.Equal(fromKmsg.Timestamp, fromJournal.Timestamp); // _SOURCE_MONOTONIC_TIMESTAMP is the record's TS_USEC
        Assert.NotNull(fromJournal.Signal);
        Assert.False(fromJournal.Signal.IsTrusted);
        Assert.Equal(fromKmsg.Signal! with { Sequence = 0 }, fromJournal.Signal with { Sequence = 0 });
        Assert.Equal(0, journal.Malformed);
    }

    [PrivateJournaldLoopFact]
    public void A_kernel_error_line_reads_the_same_from_the_journal_and_is_trusted_by_both()
    {
        using var scratch = new ScratchDirectory();
        var fs = scratch.Ext4("kjournal");
        using var journald = new PrivateJournald();
        using var kmsg = new KernelLogReader(KernelLogReader.StartAt.End);
        using var journal = new KernelJournalReader(backlog: 0, journald.Directory);
        Drain(journal);

        var marker = $"errorwatch-test-{Guid.NewGuid():N}";
        fs.TriggerFsError(marker); // the kernel's own line: "EXT4-fs error (device loopN): trigger_test_error:LINE: comm C: marker"
        var fromKmsg = ReadUntil(kmsg, marker);
        var fromJournal = ReadUntil(journal, marker);

        Assert.Equal(0, fromJournal.Facility);
        Assert.Equal(fromKmsg.Level, fromJournal.Level);
        Assert.Equal(fromKmsg.Text, fromJournal.Text);
        Assert.Equal(fromKmsg.Timestamp, fromJournal.Timestamp);
        var signal = fromJournal.Signal;
        Assert.NotNull(signal);
        Assert.True(signal.IsTrusted);
        Assert.Equal(("ext4", fs.KernelName, KernelLogKind.Corruption, "trigger_test_error"), (signal.FsType, signal.DeviceName, signal.Kind, signal.Function));
        Assert.Equal(fromKmsg.Signal! with { Sequence = 0 }, signal with { Sequence = 0 });
    }

    [PrivateJournaldFact]
    public void The_backlog_is_this_boots_last_lines_in_order_then_only_the_file_being_written_stays_open()
    {
        using var journald = new PrivateJournald();
        var marker = $"errorwatch-test-{Guid.NewGuid():N}";
        for (var i = 0; i < 5; i++)
            WriteKmsg(Encoding.ASCII.GetBytes($"<6>{marker} backlog {i}\n"));
        WaitInJournal(journald, $"{marker} backlog 4");

        // Backlog 3: the last three kernel lines, oldest first, what `journalctl -k -n 3` shows; nothing
        // older. The machine's kernel may log meanwhile (other tests): then look again.
        for (var attempt = 0; ; attempt++)
        {
            var before = LastKernelLines(journald, 3);
            using var reader = new KernelJournalReader(backlog: 3, journald.Directory);
            var lines = Drain(reader);
            if (!before.SequenceEqual(LastKernelLines(journald, 3)) && attempt < 5)
                continue;
            Assert.Equal(before, lines.Take(3).Select(l => l.Text));
            Assert.Contains($"{marker} backlog 4", before);
            Assert.Equal(3, reader.Backlog);
            Assert.False(reader.CatchingUp);
            Assert.Null(reader.Note);
            break;
        }

        // Backlog 0: only what comes (the lines journald read from the ring at its start are this boot's, so no note).
        using var follower = new KernelJournalReader(backlog: 0, journald.Directory);
        Assert.DoesNotContain(Drain(follower), l => l.Text.StartsWith(marker, StringComparison.Ordinal));
        Assert.False(follower.CatchingUp);
        Assert.Null(follower.Note);
        // Only the file journald writes is open and mapped once the reader caught up.
        Assert.Equal([journald.ActiveFile], OpenJournalFiles());
        WriteKmsg(Encoding.ASCII.GetBytes($"<6>{marker} new\n"));
        Assert.Equal($"{marker} new", ReadUntil(follower, $"{marker} new").Text);
        Assert.Equal([journald.ActiveFile], OpenJournalFiles());
    }

    [PrivateJournaldFact]
    public void A_journal_without_kernel_lines_is_read_and_says_it_may_stay_silent()
    {
        using var journald = new PrivateJournald(readKmsg: false);
        using var reader = new KernelJournalReader(directory: journald.Directory);
        Assert.True(reader.IsOpen, reader.Problem);
        Assert.Null(reader.Note); // known only once it has looked
        Drain(reader);
        Assert.Contains("the journal holds no kernel line of this boot", reader.Note);
        Assert.False(reader.Stopped);
    }

    [PrivateJournaldFact]
    public void Across_rotations_nothing_is_lost_and_nothing_is_read_twice()
    {
        using var journald = new PrivateJournald();
        using var reader = new KernelJournalReader(backlog: 0, journald.Directory);
        Drain(reader);
        var marker = $"errorwatch-test-{Guid.NewGuid():N}";
        var seen = new List<string>();

        WriteKmsg(Encoding.ASCII.GetBytes($"<6>{marker} 0\n"));
        seen.Add(ReadUntil(reader, $"{marker} 0").Text);
        // Written before the rotation and read after it: it is in the archived file by then.
        WriteKmsg(Encoding.ASCII.GetBytes($"<6>{marker} 1\n"));
        WaitInJournal(journald, $"{marker} 1");
        journald.Rotate();
        WriteKmsg(Encoding.ASCII.GetBytes($"<6>{marker} 2\n"));
        WaitInJournal(journald, $"{marker} 2");
        journald.Rotate();
        WriteKmsg(Encoding.ASCII.GetBytes($"<6>{marker} 3\n"));
        var deadline = Stopwatch.StartNew();
        while (!seen.Contains($"{marker} 3") && deadline.Elapsed < TimeSpan.FromSeconds(10))
            seen.AddRange(Drain(reader, TimeSpan.FromMilliseconds(500)).Select(l => l.Text).Where(t => t.StartsWith(marker, StringComparison.Ordinal)));

        Assert.Equal([$"{marker} 0", $"{marker} 1", $"{marker} 2", $"{marker} 3"], seen);
        Assert.Equal(2, Directory.GetFiles(journald.Directory, "system@*.journal").Length);
        Assert.False(reader.CatchingUp);
        Assert.Equal([journald.ActiveFile], OpenJournalFiles());
        Assert.Null(reader.Problem);
    }

    /// <summary>The messages of the last <paramref name="count"/> kernel lines in the journal, oldest first, kmsg-escaped.</summary>
    private static List<string> LastKernelLines(PrivateJournald journald, int count) =>
        Journal.Journalctl.Query("-D", journald.Directory, "-k", "-n", count.ToString(System.Globalization.CultureInfo.InvariantCulture))
            .Select(entry =>
            {
                var raw = Assert.Single(Journal.Journalctl.Values(entry, "MESSAGE"));
                var escaped = new byte[4 * raw.Length];
                return Encoding.ASCII.GetString(escaped, 0, KernelJournalReader.Escape(raw, escaped));
            })
            .ToList();

    /// <summary>The journal files this process has open (descriptors), so which ones it maps.</summary>
    private static List<string> OpenJournalFiles() =>
        Directory.EnumerateFileSystemEntries("/proc/self/fd")
            .Select(fd => new FileInfo(fd).LinkTarget)
            .Where(target => target is not null && target.EndsWith(".journal", StringComparison.Ordinal))
            .Select(target => target!)
            .ToList();

    /// <summary>Waits until journald has stored a line (journalctl on its directory).</summary>
    private static void WaitInJournal(PrivateJournald journald, string text)
    {
        var deadline = Stopwatch.StartNew();
        while (!Journal.Journalctl.Run(["-D", journald.Directory, "-k", "-q", "--no-pager", "-o", "cat"]).Output.Contains(text, StringComparison.Ordinal))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), $"journald did not store '{text}' within 10 s:\n{journald.Output}");
            Thread.Sleep(50);
        }
    }

    /// <summary>Every line the source gives until it has been quiet for <paramref name="quiet"/> (default 300 ms).</summary>
    private static List<Line> Drain(IKernelLogSource source, TimeSpan? quiet = null)
    {
        var lines = new List<Line>();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < (quiet ?? TimeSpan.FromMilliseconds(300)))
        {
            if (Wait(source, 100))
            {
                if (source.ReadAvailable(record => lines.Add(Copy(record))) > 0)
                    clock.Restart();
            }
        }
        return lines;
    }

    /// <summary>Reads until the line holding <paramref name="marker"/> comes (10 s at most).</summary>
    private static Line ReadUntil(IKernelLogSource source, string marker)
    {
        Line? found = null;
        var deadline = Stopwatch.StartNew();
        while (found is null && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            if (!Wait(source, 500))
                continue;
            source.ReadAvailable(record =>
            {
                if (found is null && record.MessageText.Contains(marker, StringComparison.Ordinal))
                    found = Copy(record);
            });
        }
        Assert.True(found is not null, $"the line marked {marker} did not come from {source.Name} (problem: {source.Problem})");
        return found;
    }

    /// <summary>Polls the source as the health loop does: its fd for its events, or not at all while it has more waiting.</summary>
    private static unsafe bool Wait(IKernelLogSource source, int timeoutMs)
    {
        if (source.Pending)
            return true;
        var pollFd = new Libc.PollFd { Fd = source.Fd, Events = source.Events };
        return Libc.Poll(&pollFd, 1, timeoutMs) > 0;
    }

    private static Line Copy(in KmsgRecord record)
    {
        KernelLogLines.Default.TryMatch(record, out var signal);
        return new Line(record.Facility, record.Level, record.TimestampMicroseconds, record.Message.ToArray(), record.Properties.ToArray(), signal);
    }

    /// <summary>One write(2), one record; a fresh descriptor each time (the write ratelimit is per open file).</summary>
    private static unsafe void WriteKmsg(byte[] line)
    {
        var fd = Libc.Open(KernelLogReader.DefaultPath, Libc.O_WRONLY | Libc.O_CLOEXEC);
        Assert.True(fd >= 0, $"open /dev/kmsg for writing: errno {Libc.LastErrno}");
        using var owned = new FileDescriptor(fd);
        fixed (byte* p = line)
            Assert.Equal(line.Length, (int)Libc.Write(fd, p, line.Length));
    }
}
