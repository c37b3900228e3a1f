namespace ErrorWatch.Reports;

/// <summary>
/// A decoder's per-filesystem detail: an ordered tree of named values (string, long, ulong, bool,
/// string[] or nested details). Ordered so that JSON and journald output are stable.
/// </summary>
public sealed class ReportDetails
{
    private readonly List<KeyValuePair<string, object>> _items = new();

    public IReadOnlyList<KeyValuePair<string, object>> Items => _items;
    public bool IsEmpty => _items.Count == 0;

    public ReportDetails Set(string key, object value)
    {
        ArgumentNullException.ThrowIfNull(value);
        if (value is not (string or long or ulong or int or uint or bool or string[] or ReportDetails))
            throw new ArgumentException($"detail '{key}' has unsupported type {value.GetType().Name}", nameof(value));
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
