using ErrorWatch.Health.KernelLog;
using ErrorWatch.Modules;

namespace ErrorWatch.Tests.Health;

/// <summary>The kernel log matcher of the modules ErrorWatch ships, as the health loop builds it.</summary>
internal static class KernelLogLines
{
    public static readonly KernelLogMatcher Default = new(FilesystemModules.CreateDefault());
}
