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
