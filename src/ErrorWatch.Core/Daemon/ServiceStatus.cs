namespace ErrorWatch.Daemon;

/// <summary>
/// Keeps systemd's STATUS= in step with the counts without waking an idle daemon: each report asks
/// for an update; one goes out at most every <see cref="MinimumGap"/>, the last one always, and only
/// when the text changed.
/// </summary>
public sealed class ServiceStatus : IDisposable
{
    public static readonly TimeSpan MinimumGap = TimeSpan.FromSeconds(1);

    private readonly Func<string> _line;
    private readonly Action<string> _send;
    private readonly Lock _lock = new();
    // One-shot, armed only when an update has to wait for the gap.
    private readonly Timer _timer;
    private bool _pending;
    private long _lastSent;
    private string _last = "";
    private bool _disposed;

    public ServiceStatus(Func<string> line, Action<string> send)
    {
        _line = line;
        _send = send;
        _timer = new Timer(_ =>
        {
            lock (_lock)
            {
                _pending = false;
                if (!_disposed)
                    SendLocked();
            }
        }, null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The counts changed: send now, or once the gap since the last update has passed.</summary>
    public void Changed()
    {
        lock (_lock)
        {
            if (_disposed || _pending)
                return;
            var since = System.Diagnostics.Stopwatch.GetElapsedTime(_lastSent);
            if (since >= MinimumGap)
            {
                SendLocked();
                return;
            }
            _pending = true;
            _timer.Change(MinimumGap - since, Timeout.InfiniteTimeSpan);
        }
    }

    private void SendLocked()
    {
        _lastSent = System.Diagnostics.Stopwatch.GetTimestamp();
        var text = _line();
        if (text == _last)
            return;
        _last = text;
        _send(text);
    }

    public void Dispose()
    {
        lock (_lock)
            _disposed = true;
        _timer.Dispose();
    }
}
