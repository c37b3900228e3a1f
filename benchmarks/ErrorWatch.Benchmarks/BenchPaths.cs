namespace ErrorWatch.Benchmarks;

/// <summary>
/// Finds the captured fanotify buffers and the C reference binary. BenchmarkDotNet runs each benchmark
/// in a child process built under bin/, so both are found from environment variables first (inherited
/// by the child) and otherwise from the repository layout: shared/ is a sibling of the repo root.
/// </summary>
public static class BenchPaths
{
    public const string FixturesVariable = "ERRORWATCH_FIXTURES";
    public const string WalkBinaryVariable = "FANOTIFY_WALK";
    public const string CResultsVariable = "ERRORWATCH_C_RESULTS";
    private const string FixturesRelative = "shared/fixtures/fanotify";
    private const string DefaultWalkBinary = "/tmp/fanotify-walk";

    private static readonly Lazy<string> Fixtures = new(FindFixturesDir);

    public static string FixturesDir => Fixtures.Value;

    public static string Fixture(string fileName) => Path.Combine(FixturesDir, fileName);

    /// <summary>The compiled shared/anchors/fanotify-walk.c; the correctness check cannot run without it.</summary>
    public static string WalkBinary
    {
        get
        {
            var path = Environment.GetEnvironmentVariable(WalkBinaryVariable);
            if (string.IsNullOrEmpty(path))
                path = DefaultWalkBinary;
            if (!File.Exists(path))
                throw new FileNotFoundException(
                    $"C reference binary not found at {path} (set {WalkBinaryVariable}). Build it from the repo root with " +
                    "`cc -O2 -o /tmp/fanotify-walk ../shared/anchors/fanotify-walk.c`, or run benchmarks/run-parser-bench.sh.");
            return path;
        }
    }

    private static string FindFixturesDir()
    {
        var fromEnv = Environment.GetEnvironmentVariable(FixturesVariable);
        if (!string.IsNullOrEmpty(fromEnv))
        {
            if (!Directory.Exists(fromEnv))
                throw new DirectoryNotFoundException($"{FixturesVariable}={fromEnv} is not a directory");
            return Path.GetFullPath(fromEnv);
        }

        var searched = new List<string>();
        foreach (var start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (!File.Exists(Path.Combine(dir.FullName, "ErrorWatch.sln")))
                    continue;
                foreach (var candidate in new[] { Path.Combine(dir.FullName, "..", FixturesRelative), Path.Combine(dir.FullName, FixturesRelative) })
                {
                    searched.Add(candidate);
                    if (Directory.Exists(candidate))
                        return Path.GetFullPath(candidate);
                }
            }
        }
        throw new DirectoryNotFoundException(
            $"fanotify fixtures not found: set {FixturesVariable}, or keep {FixturesRelative} beside the directory holding ErrorWatch.sln. " +
            $"Searched: {(searched.Count == 0 ? "(no ErrorWatch.sln above " + AppContext.BaseDirectory + ")" : string.Join(", ", searched))}");
    }
}
