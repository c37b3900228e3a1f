using ErrorWatch.Decoding;
using ErrorWatch.Reports;

namespace ErrorWatch.Recovery;

/// <summary>
/// The synthetic report errorwatch hooks test gives the hooks (like smartd's -M test): a real
/// filesystem's identity, an error typical of the chosen event, and ERRORWATCH_EVENT=test, so a
/// hook can tell it apart and do a dry run.
/// </summary>
public static class TestReport
{
    public static CorruptionReport For(FilesystemInfo filesystem, string eventWord, DateTimeOffset now)
    {
        var (errno, source, category) = eventWord switch
        {
            "io" => (5, "fanotify", ErrorCategory.Io),
            "shutdown" => (108, "ext4-state", ErrorCategory.Shutdown),
            "readonly" => (30, "ext4-state", ErrorCategory.ReadOnly),
            HookEvent.History => (117, "ext4-superblock", ErrorCategory.Corruption),
            "resource" => (28, "fanotify", ErrorCategory.Resource),
            "other" => (22, "fanotify", ErrorCategory.Other),
            _ => (117, "fanotify", ErrorCategory.Corruption),
        };
        var meaning = ErrorMeaning.Generic(errno);
        return new CorruptionReport
        {
            Id = Guid.CreateVersion7(now).ToString(),
            Time = now,
            Host = Environment.MachineName,
            Source = source,
            Category = category,
            Severity = category is ErrorCategory.Corruption or ErrorCategory.Shutdown ? Severity.Critical : Severity.Error,
            Filesystem = filesystem,
            Error = new ErrorInfo
            {
                Errno = errno, RawErrno = errno, Name = meaning.Name, Description = meaning.Description,
                Meaning = meaning.Meaning, Count = 1,
            },
            Object = new ObjectInfo { HandleType = 0xff },
            Decoder = "test",
            Finding = $"errorwatch hooks test: a {eventWord} report for testing hooks, not a real error",
            Details = new ReportDetails().Set("test", true),
        };
    }
}
