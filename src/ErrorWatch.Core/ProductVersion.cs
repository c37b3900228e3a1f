using System.Reflection;
using ErrorWatch.Daemon;

namespace ErrorWatch;

/// <summary>ErrorWatch's version as every output states it (D-Bus Version, service.version, the meter's version).</summary>
public static class ProductVersion
{
    /// <summary>The informational version the build stamps (version+commit).</summary>
    public static string Text { get; } =
        typeof(ProductVersion).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0";
}
