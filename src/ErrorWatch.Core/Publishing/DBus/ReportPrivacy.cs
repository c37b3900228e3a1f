using ErrorWatch.Reports;

namespace ErrorWatch.Publishing.DBus;

/// <summary>
/// Takes the file's path out of a report for audiences that should not see it (every local user
/// receives broadcast signals; a path under someone's home says what they keep there). The path
/// is in object.path, object.path_base64 and, in brackets, in the summary.
/// </summary>
public static class ReportPrivacy
{
    /// <summary>
    /// A report without its path (a live one for the signal, a stored one for a caller who may not
    /// read paths): the summary, made from the report, then names no file, and object.path_withheld
    /// says why.
    /// </summary>
    public static CorruptionReport Withheld(CorruptionReport report) => report.Object.Path is null
        ? report
        : report with { Object = report.Object with { Path = null, PathWithheld = true } };
}
