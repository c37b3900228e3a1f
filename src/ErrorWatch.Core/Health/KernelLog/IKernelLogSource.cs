namespace ErrorWatch.Health.KernelLog;

/// <summary>
/// Where the health loop reads kernel log lines from: /dev/kmsg (<see cref="KernelLogReader"/>) or,
/// where that cannot be opened (the unit's ProtectKernelLogs=yes), journald's copy of the same lines
/// (<see cref="KernelJournalReader"/>). Both hand over <see cref="KmsgRecord"/>s in /dev/kmsg's form, so
/// the matcher, its limits and its trust rule (facility 0 only) are the same whichever is read.
/// </summary>
public interface IKernelLogSource : IDisposable
{
    /// <summary>"/dev/kmsg" or "journal": what the startup line and the capability report name.</summary>
    string Name { get; }

    /// <summary>The descriptor to poll, or -1 once the source gave up (<see cref="Problem"/> says why).</summary>
    int Fd { get; }

    /// <summary>The poll(2) events to wait for on <see cref="Fd"/>.</summary>
    short Events { get; }

    /// <summary>The last read stopped at its limit with more waiting: read again without waiting for <see cref="Fd"/>.</summary>
    bool Pending { get; }

    /// <summary>Milliseconds after which to read again even without an event on <see cref="Fd"/>; -1 for never.</summary>
    int TimeoutMs { get; }

    /// <summary>Why the source stopped or could not open; null while all is well.</summary>
    string? Problem { get; }

    /// <summary>It gave up for good (<see cref="Problem"/> says why): nothing more will come, stop polling it.</summary>
    bool Stopped { get; }

    /// <summary>
    /// Passes the records available now to <paramref name="onRecord"/>, at most <paramref name="maxRecords"/>
    /// (a flood must not starve the loop). Each record is a view of the source's buffer, valid only
    /// during the call. Returns how many were passed on.
    /// </summary>
    int ReadAvailable(Action<KmsgRecord> onRecord, int maxRecords = int.MaxValue);
}

/// <summary>Opens the kernel log where it can be read: /dev/kmsg first, else the journal.</summary>
public static class KernelLogSources
{
    /// <summary>
    /// /dev/kmsg when it opens (containers that pass it in, `sudo errorwatch run`), from the oldest
    /// record still in the ring: lines from before ErrorWatch started still say which XFS inodes and
    /// blocks to look at. Otherwise the journal's kernel lines of this boot, at most
    /// <see cref="KernelJournalReader.DefaultBacklog"/> back (the ring's worth). Null when neither
    /// can be read. <paramref name="problem"/>: why /dev/kmsg is not read (and, when null is
    /// returned, why the journal is not either); null when /dev/kmsg is.
    /// </summary>
    public static IKernelLogSource? Open(out string? problem, string kmsgPath = KernelLogReader.DefaultPath, string? journalDirectory = null)
    {
        var kmsg = new KernelLogReader(KernelLogReader.StartAt.Beginning, kmsgPath);
        if (kmsg.IsOpen)
        {
            problem = null;
            return kmsg;
        }
        problem = kmsg.Problem;
        kmsg.Dispose();
        var journal = new KernelJournalReader(KernelJournalReader.DefaultBacklog, journalDirectory);
        if (journal.IsOpen)
            return journal;
        problem += "; and the journal: " + journal.Problem;
        journal.Dispose();
        return null;
    }
}
