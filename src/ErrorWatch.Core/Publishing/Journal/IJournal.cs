namespace ErrorWatch.Publishing.Journal;

/// <summary>
/// Where journal entries go. <see cref="SdJournal"/> sends them through libsystemd; a managed
/// implementation of the native protocol (or a test double) can take its place.
/// </summary>
public interface IJournal
{
    /// <summary>Whether entries can reach journald now (the socket exists and the transport works).</summary>
    bool IsAvailable { get; }

    /// <summary>Why <see cref="IsAvailable"/> is false, in words for the one-time fallback notice.</summary>
    string UnavailableReason { get; }

    /// <summary>Sends one entry: 0, or a negative errno. Never throws.</summary>
    int Send(JournalEntry entry);
}

public static class JournalDelivery
{
    /// <summary>
    /// Sends the entry if journald is reachable; false, with the reason for the fallback notice, when it
    /// is not or refused the entry. <paramref name="entry"/> is built only when it can be sent. An
    /// <see cref="IJournal"/> that throws after all counts as EIO: no output may fail its caller.
    /// </summary>
    public static bool TrySend(this IJournal journal, Func<JournalEntry> entry, out string reason)
    {
        if (!journal.IsAvailable)
        {
            reason = journal.UnavailableReason;
            return false;
        }
        int result;
        try
        {
            result = journal.Send(entry());
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            result = -Interop.Libc.EIO;
        }
        reason = result >= 0 ? "" : JournalFallback.SendFailure(result);
        return result >= 0;
    }
}
