namespace ErrorWatch.Daemon;

/// <summary>
/// Keeps systemd's STATUS= in step with the counts without waking an idle daemon: each report asks
/// for an update; one goes out at most every <see cref="MinimumGap"/>, the last one always, and only
/// when the text changed.
/// </summary>
public sealed class ServiceStatus(Func<string> line, Action<string> send) : IDisposable
{
    public static readonly TimeSpan MinimumGap = TimeSpan.FromSeconds(1);

    private readonly Lock _lock = new();
    private Timer? _pending;
    private long _lastSent;
    private string _last = "";
    private bool _disposed;

    /// <summary>The counts changed: send now, or once the gap since the last update has passed.</summary>
    public void Changed()
    {
        lock (_lock)
        {
            if (_disposed || _pending is not null)
                return;
            var since = System.Diagnostics.Stopwatch.GetElapsedTime(_lastSent);
            if (since >= MinimumGap)
            {
                SendLocked();
                return;
            }
            _pending = new Timer(_ =>
            {
                lock (_lock)
                {
                    _pending?.Dispose();
                    _pending = null;
                    if (!_disposed)
                        SendLocked();
                }
            }, null, MinimumGap - since, Timeout.InfiniteTimeSpan);
        }
    }

    private void SendLocked()
    {
        _lastSent = System.Diagnostics.Stopwatch.GetTimestamp();
        var text = line();
        if (text == _last)
            return;
        _last = text;
        send(text);
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _pending?.Dispose();
            _pending = null;
        }
    }
}
