using System.Diagnostics;
using System.Globalization;

namespace ErrorWatch.Benchmarks;

/// <summary>Runs fanotify-walk on a fixture and holds the reference the C# walk must match exactly.</summary>
public static class CReference
{
    /// <summary>Events, sum of error_count and checksum as fanotify-walk prints them for <paramref name="fixturePath"/>.</summary>
    public static WalkSummary Run(string fixturePath)
    {
        var psi = new ProcessStartInfo(BenchPaths.WalkBinary)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(fixturePath);
        psi.ArgumentList.Add("1"); // one round per trial: only the numbers are wanted here, not the timing
        using var process = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {psi.FileName}");
        var stdout = process.StandardOutput.ReadToEnd();
        var stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{psi.FileName} {fixturePath} exited {process.ExitCode}: {stderr.Trim()}");
        return Parse(stdout);
    }

    /// <summary>Parses "events=N error_count_sum=N checksum=N ns_per_event=X".</summary>
    public static WalkSummary Parse(string line)
    {
        var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)
            .Select(f => f.Split('=', 2))
            .Where(kv => kv.Length == 2)
            .ToDictionary(kv => kv[0], kv => kv[1]);
        ulong Get(string key) => fields.TryGetValue(key, out var v)
            ? ulong.Parse(v, CultureInfo.InvariantCulture)
            : throw new FormatException($"fanotify-walk output lacks {key}=: '{line.Trim()}'");
        return new WalkSummary(Get("events"), Get("error_count_sum"), Get("checksum"));
    }

    /// <summary>Throws unless the C# walk of the fixture gives exactly what the C reference printed.</summary>
    public static WalkSummary Verify(string fixturePath, ReadOnlySpan<byte> buffer)
    {
        var expected = Run(fixturePath);
        var actual = ParserWalk.Walk(buffer);
        if (actual != expected)
            throw new InvalidOperationException(
                $"C# walk disagrees with fanotify-walk on {Path.GetFileName(fixturePath)}: " +
                $"C events={expected.Events} error_count_sum={expected.ErrorCountSum} checksum={expected.Checksum}, " +
                $"C# events={actual.Events} error_count_sum={actual.ErrorCountSum} checksum={actual.Checksum}");
        return actual;
    }
}
