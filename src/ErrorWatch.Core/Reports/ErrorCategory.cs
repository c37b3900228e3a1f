namespace ErrorWatch.Reports;

/// <summary>The kind of trouble an errno stands for; decides severity and which hooks fire.</summary>
public enum ErrorCategory
{
    Corruption,
    Io,
    Shutdown,
    ReadOnly,
    Resource,
    Other,
    /// <summary>Not an error from the filesystem: the kernel's event queue overflowed and events were lost.</summary>
    EventsLost,
}
