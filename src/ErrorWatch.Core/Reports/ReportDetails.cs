namespace ErrorWatch.Reports;

/// <summary>
/// A decoder's per-filesystem detail: an ordered tree of named values (string, integer, bool,
/// string[] or nested details). Ordered so that JSON and journald output are stable. Every integer
/// that fits a long is kept as one (D-Bus <c>x</c>), so a detail read back from the store has the type
/// it had live; only a ulong above that range (no detail ErrorWatch writes comes near it) stays a ulong.
/// </summary>
public sealed class ReportDetails
{
    private readonly List<KeyValuePair<string, object>> _items = new();

    public IReadOnlyList<KeyValuePair<string, object>> Items => _items;
    public bool IsEmpty => _items.Count == 0;

    public ReportDetails Set(string key, object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        value = value switch
        {
            int i => (long)i,
            uint u => (long)u,
            ushort us => (long)us,
            byte b => (long)b,
            ulong ul when ul <= long.MaxValue => (long)ul,
            string or long or ulong or bool or string[] or ReportDetails => value,
            _ => throw new ArgumentException($"detail '{key}' has unsupported type {value.GetType().Name}", nameof(value)),
        };
        var index = _items.FindIndex(kv => kv.Key == key);
        var item = new KeyValuePair<string, object>(key, value);
        if (index >= 0)
            _items[index] = item;
        else
            _items.Add(item);
        return this;
    }

    /// <summary>The nested section named <paramref name="key"/>, created on first use.</summary>
    public ReportDetails Section(string key)
    {
        foreach (var kv in _items)
            if (kv.Key == key && kv.Value is ReportDetails existing)
                return existing;
        var created = new ReportDetails();
        _items.Add(new(key, created));
        return created;
    }

    public object? this[string key] => _items.FirstOrDefault(kv => kv.Key == key).Value;
}
