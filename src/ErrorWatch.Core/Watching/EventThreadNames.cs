namespace ErrorWatch.Watching;

/// <summary>
/// The two event threads, as ps and /proc show them. They trade the read loop's and the decode
/// thread's roles (<see cref="Watcher.TradeWith"/>), so neither is named after one: the first starts
/// reading, the second decoding.
/// </summary>
public static class EventThreadNames
{
    public const string First = "events-1";
    public const string Second = "events-2";
}
