using ErrorWatch.Daemon;
namespace ErrorWatch.Kernel;

/// <summary>
/// This boot's id (/proc/sys/kernel/random/boot_id), which tells what was recorded in this boot (a hook's
/// pid, a counter baseline) from what an earlier boot left. Read once: it cannot change while we run.
/// </summary>
public static class BootId
{
    private static readonly Lazy<string?> Value = new(() =>
    {
        try
        {
            return File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim();
        }
        catch (IOException)
        {
            return null;
        }
    });

    /// <summary>The id, or null when /proc does not tell it.</summary>
    public static string? Current => Value.Value;
}
