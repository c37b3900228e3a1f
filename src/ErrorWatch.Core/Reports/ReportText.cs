using System.Text;

namespace ErrorWatch.Reports;

/// <summary>One readable line per report; paths and names are escaped so a line is always one line.</summary>
public static class ReportText
{
    public static string Format(CorruptionReport r)
    {
        var sb = new StringBuilder(160);
        sb.Append(r.Time.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ")).Append(' ')
          .Append(r.Severity.ToString().ToUpperInvariant()).Append(' ')
          .Append(r.Summary); // Summary already escapes paths
        if (r.Object.Inode is not null)
        {
            if (r.Object.Generation is { } gen)
                sb.Append(" gen=0x").Append(gen.ToString("x"));
            if (r.Object.Path is null && r.Object.PathError is { } why)
                sb.Append(" path=? (").Append(why).Append(')');
        }
        if (r.Filesystem.Uuid is { } uuid)
            sb.Append(" uuid=").Append(uuid);
        if (r.RaisedByErrorWatch)
            sb.Append(" [raised by the ErrorWatch process itself]");
        if (r.KernelEvents > 1)
            sb.Append(" [").Append(r.KernelEvents).Append(" events coalesced]");
        sb.Append(" id=").Append(r.Id);
        return sb.ToString();
    }
}
