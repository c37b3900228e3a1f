using System.Globalization;
using System.Text;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing.Journal;

/// <summary>
/// A report as a journal entry: the well-known fields journalctl shows and filters on, and one
/// ERRORWATCH_* field per report field (docs/report-schema.md), so that
/// <c>journalctl ERRORWATCH_UUID=... ERRORWATCH_ERRNO_NAME=EUCLEAN</c> finds reports without parsing text.
/// </summary>
public static class ReportJournal
{
    /// <summary>MESSAGE_ID of a report entry (deploy/catalog/errorwatch.catalog explains it).</summary>
    public const string ReportMessageId = "bd42365c534f459287726f415119295b";

    /// <summary>MESSAGE_ID of the entry that stands for reports storm control did not log one by one.</summary>
    public const string SuppressedMessageId = "ac18a8be8c6b450a97e17081ce13dcb2";

    public const string SyslogIdentifier = "errorwatch";

    /// <summary>
    /// DOCUMENTATION of every entry: where packages install docs/report-schema.md (the field reference).
    /// A file: URL, because the daemon runs on machines without network access and has no man page yet.
    /// </summary>
    public const string DefaultDocumentation = "file:///usr/share/doc/errorwatch/report-schema.md";

    public const string Prefix = "ERRORWATCH_";

    /// <summary>syslog priority: Critical 2 (crit), Error 3 (err), Warning 4 (warning).</summary>
    public static int PriorityOf(Severity severity) => severity switch
    {
        Severity.Critical => 2,
        Severity.Error => 3,
        _ => 4,
    };

    public static JournalEntry ToEntry(CorruptionReport r, string documentation = DefaultDocumentation)
    {
        var e = new JournalEntry();
        e.Add("MESSAGE", OneLine(r.Summary));
        e.Add("MESSAGE_ID", ReportMessageId);
        e.Add("PRIORITY", PriorityOf(r.Severity));
        e.Add("SYSLOG_IDENTIFIER", SyslogIdentifier);
        if (r.Error.Errno > 0) // 0 for lost events: no errno to name
            e.Add("ERRNO", r.Error.Errno);
        e.Add("DOCUMENTATION", documentation);

        e.Add("ERRORWATCH_REPORT_ID", r.Id);
        e.Add("ERRORWATCH_TIME", r.Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.ffffffZ", CultureInfo.InvariantCulture));
        e.Add("ERRORWATCH_HOST", r.Host);
        e.Add("ERRORWATCH_SOURCE", r.Source);
        e.Add("ERRORWATCH_EVENT", r.EventName);
        e.Add("ERRORWATCH_SEVERITY", r.Severity.Word());
        e.AddIfPresent("ERRORWATCH_FINDING", r.Finding);

        AddFilesystem(e, r.Filesystem);
        e.Add("ERRORWATCH_MOUNTPOINTS", Join(r.Filesystem.Mountpoints.Select(m => m.Bytes.ToArray()), (byte)'\n'));
        e.Add("ERRORWATCH_FSID", r.Filesystem.Fsid);

        var error = r.Error;
        e.Add("ERRORWATCH_ERRNO_NAME", error.Name);
        e.AddIfPresent("ERRORWATCH_ERRNO_ALIAS", error.Alias);
        e.Add("ERRORWATCH_RAW_ERRNO", error.RawErrno);
        e.Add("ERRORWATCH_ERROR_DESCRIPTION", error.Description);
        e.Add("ERRORWATCH_ERROR_MEANING", error.Meaning);
        e.Add("ERRORWATCH_ERROR_COUNT", error.Count);
        foreach (var (name, count) in error.Folded.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            e.Add("ERRORWATCH_FOLDED_" + name, count);

        var o = r.Object;
        e.Add("ERRORWATCH_SCOPE", o.Scope);
        if (o.Inode is { } inode) e.Add("ERRORWATCH_INODE", inode);
        if (o.Generation is { } generation) e.Add("ERRORWATCH_GENERATION", (ulong)generation);
        if (o.ParentInode is { } parent) e.Add("ERRORWATCH_PARENT_INODE", parent);
        e.Add("ERRORWATCH_HANDLE_TYPE", $"0x{o.HandleType:x}");
        e.Add("ERRORWATCH_HANDLE", o.Handle);
        if (o.Path is { } path) e.Add("ERRORWATCH_PATH", path.Bytes); // exact bytes; journald keeps them
        e.AddIfPresent("ERRORWATCH_PATH_ERROR", o.PathError);
        if (o.Deleted) e.Add("ERRORWATCH_DELETED", true);
        e.AddIfPresent("ERRORWATCH_HANDLE_PROBLEM", o.HandleProblem);

        e.Add("ERRORWATCH_DECODER", r.Decoder);
        e.Add("ERRORWATCH_PID", r.Pid);
        e.Add("ERRORWATCH_RAISED_BY_ERRORWATCH", r.RaisedByErrorWatch);
        e.Add("ERRORWATCH_KERNEL_EVENTS", r.KernelEvents);
        e.AddIfPresent("ERRORWATCH_PARSE_PROBLEM", r.ParseProblem);

        AddDetails(e, Prefix, r.Details);
        AddShortAliases(e, r.Details);
        return e;
    }

    /// <summary>DEVICE, MAJOR_MINOR, UUID, LABEL, FSTYPE, MOUNTPOINT (the primary one): shared by report and summary entries.</summary>
    internal static void AddFilesystem(JournalEntry e, FilesystemInfo fs)
    {
        e.Add("ERRORWATCH_DEVICE", fs.Device);
        e.Add("ERRORWATCH_MAJOR_MINOR", fs.MajorMinor.ToString());
        if (fs.Uuid is { } uuid) e.Add("ERRORWATCH_UUID", uuid.ToString());
        e.AddIfPresent("ERRORWATCH_LABEL", fs.Label);
        e.Add("ERRORWATCH_FSTYPE", fs.Type);
        if (fs.Mountpoints.Length > 0) e.Add("ERRORWATCH_MOUNTPOINT", fs.Mountpoints[0].Bytes);
    }

    /// <summary>
    /// Every leaf of the details tree as one field: the key path joined with '_', uppercased, other
    /// characters as '_' (details.ext4.last_error.function becomes ERRORWATCH_EXT4_LAST_ERROR_FUNCTION,
    /// details.xfs-health.sick ERRORWATCH_XFS_HEALTH_SICK); arrays are joined with ','.
    /// </summary>
    public static void AddDetails(JournalEntry e, string prefix, ReportDetails details)
    {
        foreach (var (key, value) in details.Items)
        {
            var name = prefix + FieldPart(key);
            if (value is ReportDetails nested)
                AddDetails(e, name + "_", nested);
            else
                e.Add(name, LeafText(value));
        }
    }

    /// <summary>A details leaf as text: numbers invariant, bools "true"/"false" as in JSON, arrays joined with ','.</summary>
    private static string LeafText(object value) => value switch
    {
        string s => s,
        string[] array => string.Join(',', array),
        bool b => b ? "true" : "false",
        IFormattable number => number.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    /// <summary>
    /// Short names for the facts admins filter on most: where ext4 last saw an error
    /// (EXT4_FUNCTION/LINE/BLOCK from details.ext4.last_error, or the ext4-sysfs/ext4-superblock finding's
    /// last_error) and which XFS structures are sick (XFS_SICK from the xfs-health finding's sick list,
    /// else the union of the sick lists the XFS decoder read: filesystem, AG, inode).
    /// </summary>
    private static void AddShortAliases(JournalEntry e, ReportDetails details)
    {
        var lastError = new[] { "ext4", "ext4-sysfs", "ext4-superblock" }
            .Select(section => (details[section] as ReportDetails)?["last_error"] as ReportDetails)
            .FirstOrDefault(d => d is not null);
        if (lastError is not null)
        {
            AddAlias(e, "ERRORWATCH_EXT4_FUNCTION", lastError["function"]);
            AddAlias(e, "ERRORWATCH_EXT4_LINE", lastError["line"]);
            AddAlias(e, "ERRORWATCH_EXT4_BLOCK", lastError["block"]);
        }

        string[]? sick = null;
        if ((details["xfs-health"] as ReportDetails)?["sick"] is string[] found)
            sick = found;
        else if (((details["xfs"] as ReportDetails)?["health"]) is ReportDetails health)
            sick = health.Items.Select(kv => (kv.Value as ReportDetails)?["sick"] as string[] ?? [])
                .SelectMany(ids => ids).Distinct().ToArray();
        if (sick is not null)
            AddAlias(e, "ERRORWATCH_XFS_SICK", sick);
    }

    private static void AddAlias(JournalEntry e, string name, object? value)
    {
        if (value is not null && value is not ReportDetails && !e.Contains(name)) // a details leaf of that name already says it
            e.Add(name, LeafText(value));
    }

    /// <summary>Uppercase, anything but [A-Z0-9] as '_': one segment of a field name.</summary>
    public static string FieldPart(string key)
    {
        var sb = new StringBuilder(key.Length);
        foreach (var c in key)
            sb.Append(char.IsAsciiLetter(c) ? char.ToUpperInvariant(c) : char.IsAsciiDigit(c) ? c : '_');
        return sb.ToString();
    }

    /// <summary>MESSAGE is one line whatever the summary holds (paths are escaped already; this is the backstop).</summary>
    internal static string OneLine(string text) =>
        text.AsSpan().IndexOfAny('\n', '\r') < 0 ? text : text.Replace("\r", "\\r").Replace("\n", "\\n");

    private static byte[] Join(IEnumerable<byte[]> parts, byte separator)
    {
        var result = new List<byte>();
        foreach (var part in parts)
        {
            if (result.Count > 0)
                result.Add(separator);
            result.AddRange(part);
        }
        return [.. result];
    }
}
