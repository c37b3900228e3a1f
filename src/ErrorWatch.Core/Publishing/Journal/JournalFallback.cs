namespace ErrorWatch.Publishing.Journal;

/// <summary>
/// Where journal output goes when journald cannot take it: one text line per entry on a
/// <see cref="TextWriter"/> (stderr by default), after a single notice saying why. Never throws: a
/// closed stderr must not take the pipeline down with it.
/// </summary>
public sealed class JournalFallback(TextWriter? output = null, string outputName = "stderr", string what = "reports")
{
    private readonly TextWriter _output = output ?? Console.Error;
    private readonly Lock _lock = new();
    private bool _noticeWritten;

    /// <summary>Writes <paramref name="line"/>, preceded the first time by the notice naming <paramref name="reason"/>.</summary>
    public void Write(string line, string reason)
    {
        lock (_lock)
        {
            try
            {
                if (!_noticeWritten)
                {
                    _noticeWritten = true;
                    _output.WriteLine($"errorwatch: journald is not reachable ({reason}); {what} go to {outputName}");
                }
                _output.WriteLine(line);
                _output.Flush();
            }
            catch (IOException)
            {
            }
            catch (ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>The reason to name when <see cref="IJournal.Send"/> failed.</summary>
    public static string SendFailure(int result) =>
        $"sd_journal_sendv: {Interop.ErrnoTable.Name(-result)}";
}
