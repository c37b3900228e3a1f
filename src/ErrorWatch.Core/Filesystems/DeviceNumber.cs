namespace ErrorWatch.Filesystems;

/// <summary>A dev_t as major:minor; identifies a mounted superblock (st_dev of any file in it).</summary>
public readonly record struct DeviceNumber(uint Major, uint Minor)
{
    public override string ToString() => $"{Major}:{Minor}";

    /// <summary>Kernel-internal dev_t (MAJOR &lt;&lt; 20 | MINOR), as printed by /proc/*/fdinfo of fanotify marks.</summary>
    public static DeviceNumber FromKernelEncoding(ulong dev) => new((uint)(dev >> 20), (uint)(dev & 0xfffff));

    public static bool TryParse(ReadOnlySpan<char> text, out DeviceNumber device)
    {
        device = default;
        var colon = text.IndexOf(':');
        if (colon <= 0 || !uint.TryParse(text[..colon], out var major) || !uint.TryParse(text[(colon + 1)..], out var minor))
            return false;
        device = new DeviceNumber(major, minor);
        return true;
    }
}
