using System.Globalization;
using System.Numerics;
using ErrorWatch.Interop;

namespace ErrorWatch.Daemon;

/// <summary>
/// A set of Linux capabilities as the kernel's 64-bit mask: bit N is capability N, as
/// /proc/PID/status shows CapEff, CapPrm, CapInh, CapBnd and CapAmb.
/// </summary>
public readonly record struct CapabilitySet(ulong Mask)
{
    public static readonly CapabilitySet None = new(0);

    public static CapabilitySet Of(params ReadOnlySpan<int> capabilities)
    {
        var mask = 0UL;
        foreach (var c in capabilities)
            mask |= 1UL << c;
        return new(mask);
    }

    public bool IsEmpty => Mask == 0;

    public bool Contains(int capability) => (Mask & (1UL << capability)) != 0;

    public int Count => BitOperations.PopCount(Mask);

    /// <summary>The capability numbers in the set, lowest first.</summary>
    public IEnumerable<int> Numbers()
    {
        for (var c = 0; c < 64; c++)
            if (Contains(c))
                yield return c;
    }

    public CapabilitySet Except(CapabilitySet other) => new(Mask & ~other.Mask);

    public static CapabilitySet operator |(CapabilitySet a, CapabilitySet b) => new(a.Mask | b.Mask);

    public static CapabilitySet operator &(CapabilitySet a, CapabilitySet b) => new(a.Mask & b.Mask);

    /// <summary>The number of a capability named as in capabilities(7) and systemd's CapabilityBoundingSet= (CAP_KILL), or -1.</summary>
    public static int NumberOf(string name) => Array.IndexOf(Capability.Names, name);

    public static string NameOf(int capability) =>
        capability < Capability.Names.Length ? Capability.Names[capability] : "cap_" + capability.ToString(CultureInfo.InvariantCulture);

    /// <summary>Named capabilities (every name must be valid; see <see cref="NumberOf"/>).</summary>
    public static CapabilitySet Named(IEnumerable<string> names)
    {
        var set = None;
        foreach (var name in names)
            set |= Of(NumberOf(name) is >= 0 and var n ? n : throw new ArgumentException($"'{name}' is not a capability", nameof(names)));
        return set;
    }

    /// <summary>A Cap*: line's hexadecimal value from /proc/PID/status.</summary>
    public static CapabilitySet FromHex(string hex) => new(ulong.Parse(hex.Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture));

    /// <summary>The set named <paramref name="field"/> (CapEff, CapPrm, CapInh, CapBnd, CapAmb) in a /proc status file (/proc/self/status: the main thread's); None if unreadable.</summary>
    public static CapabilitySet OfStatus(string statusFile, string field)
    {
        try
        {
            var line = File.ReadLines(statusFile).FirstOrDefault(l => l.StartsWith(field + ":", StringComparison.Ordinal));
            return line is null ? None : FromHex(line[(field.Length + 1)..]);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return None;
        }
    }

    /// <summary>The names separated by spaces (the form CapabilityBoundingSet= takes), or "none".</summary>
    public override string ToString() => IsEmpty ? "none" : string.Join(' ', Numbers().Select(NameOf));
}
