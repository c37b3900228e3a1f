using System.Runtime.CompilerServices;

namespace ErrorWatch.Tests;

internal static class TestHost
{
    /// <summary>
    /// Many tests wait synchronously on pool threads (process helpers, a blocking Take of reports) while
    /// output readers and process-exit detection need pool threads of their own. With the default minimum
    /// (one per core: two here) the pool starves and adds threads about twice a second, so what a test
    /// timed (a notification's arrival, a child's exit) came up to ~0.8 s late. A higher minimum keeps
    /// the test host's own scheduling out of what the tests measure; the daemon is not affected.
    /// </summary>
    [ModuleInitializer]
    internal static void Initialize()
    {
        ThreadPool.GetMinThreads(out var workers, out var completion);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(completion, 32));
    }
}
