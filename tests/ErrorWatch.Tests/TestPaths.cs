namespace ErrorWatch.Tests;

/// <summary>Locates shared test data. The repository root holds ErrorWatch.sln; shared/ is its sibling.</summary>
internal static class TestPaths
{
    private const string FixturesRelative = "shared/fixtures/fanotify";

    private static readonly Lazy<string> Fixtures = new(FindFixturesDir);

    /// <summary>The directory holding the captured fanotify .bin buffers and their README.</summary>
    public static string FixturesDir => Fixtures.Value;

    public static byte[] ReadFixture(string fileName) => File.ReadAllBytes(Path.Combine(FixturesDir, fileName));

    private static string FindFixturesDir()
    {
        var searched = new List<string>();
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            // <dir>/shared/fixtures/fanotify, or <repo>/../shared/fixtures/fanotify once dir is the repo root.
            var candidates = File.Exists(Path.Combine(dir.FullName, "ErrorWatch.sln"))
                ? new[] { Path.Combine(dir.FullName, FixturesRelative), Path.Combine(dir.FullName, "..", FixturesRelative) }
                : new[] { Path.Combine(dir.FullName, FixturesRelative) };
            foreach (var candidate in candidates)
            {
                searched.Add(candidate);
                if (Directory.Exists(candidate))
                    return Path.GetFullPath(candidate);
            }
        }
        throw new DirectoryNotFoundException(
            $"fanotify fixtures not found: walked up from {AppContext.BaseDirectory} looking for '{FixturesRelative}' " +
            $"(expected at <repo>/../{FixturesRelative}, next to the directory holding ErrorWatch.sln). Searched:{Environment.NewLine}  " +
            string.Join(Environment.NewLine + "  ", searched));
    }
}
