using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Interop;
using ErrorWatch.Kernel;

namespace ErrorWatch.Watching;

/// <summary>What the decoders take next: a fanotify event or a native health finding.</summary>
public readonly record struct HandOffItem(FsErrorEvent? Event, HealthFinding? Finding);

/// <summary>
/// The bounded hand-off between the read loop (and the health sources) and the decoders. <see cref="Post"/> never waits:
/// when the queue is full, events for a superblock are folded into one pending event per
/// superblock (counts summed, errnos tallied), so memory stays bounded and no error is dropped.
/// </summary>
public sealed class EventHandOff : IDisposable
{
    private readonly int _capacity;
    private readonly Queue<FsErrorEvent> _queue;
    private readonly Dictionary<Superblock, FsErrorEvent> _folded = new(ReferenceEqualityComparer.Instance);
    private readonly Queue<Superblock> _foldedOrder = new();
    // Findings are few (one per check and structure) and are never folded: each names a different fact.
    private readonly Queue<HealthFinding> _findings = new();
    private readonly Lock _lock = new();
    // The taker sleeps in poll(2) on an eventfd, which a post writes after leaving the lock: the
    // woken thread runs at once, neither spinning first (SemaphoreSlim spins with sched_yield,
    // taking a CPU from the outputs on a small machine) nor finding the waker still inside a lock.
    private readonly WakeSignal _signal = new();
    private CancellationToken _registeredFor;
    private CancellationTokenRegistration _registration;
    private bool _signalled;
    private bool _completed;

    public EventHandOff(int capacity = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _capacity = capacity;
        _queue = new Queue<FsErrorEvent>(Math.Min(capacity, 1024));
    }

    public long Posted { get; private set; }
    public long FoldedEvents { get; private set; }
    public int MaxDepth { get; private set; }

    public int Count
    {
        get
        {
            lock (_lock)
                return _queue.Count + _folded.Count + _findings.Count;
        }
    }

    /// <summary>Called by the read loop. Holds the lock only for a queue operation; never blocks on the consumer.</summary>
    public void Post(FsErrorEvent ev)
    {
        lock (_lock)
        {
            Posted++;
            if (ev.IsOverflow)
            {
                // Always queued: the kernel queues at most one overflow per group until it is read,
                // and a lost-events notice must never be folded into an error count.
                _queue.Enqueue(ev);
            }
            else if (_folded.TryGetValue(ev.Superblock, out var pending))
            {
                Fold(pending, ev);
            }
            else if (_queue.Count < _capacity)
            {
                _queue.Enqueue(ev);
            }
            else
            {
                _folded[ev.Superblock] = ev;
                _foldedOrder.Enqueue(ev.Superblock);
            }
            MaxDepth = Math.Max(MaxDepth, _queue.Count + _folded.Count);
            if (_signalled)
                return;
            _signalled = true;
        }
        _signal.Signal();
    }

    /// <summary>Called by the health sources; never blocks.</summary>
    public void Post(HealthFinding finding)
    {
        lock (_lock)
        {
            _findings.Enqueue(finding);
            if (_signalled)
                return;
            _signalled = true;
        }
        _signal.Signal();
    }

    private void Fold(FsErrorEvent into, FsErrorEvent ev)
    {
        FoldedEvents++;
        if (ev.Errno != into.Errno || into.FoldedErrnos is not null)
        {
            into.FoldedErrnos ??= new() { [into.Errno] = into.Count };
            into.FoldedErrnos.TryGetValue(ev.Errno, out var n);
            into.FoldedErrnos[ev.Errno] = n + ev.Count;
        }
        into.Count += ev.Count;
        into.KernelEvents += ev.KernelEvents;
    }

    /// <summary>
    /// Takes the next item: findings, then queued events, then folded ones. Waits on the calling thread,
    /// the decode thread's own, which a post wakes directly; an awaited wait would wake a thread-pool
    /// thread instead, a second hop on the way to every output (docs/performance.md).
    /// </summary>
    /// <returns>The item; null once completed and empty, or when <paramref name="timeout"/> passed first, which <paramref name="timedOut"/> tells.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancel"/> fired while waiting.</exception>
    public HandOffItem? Take(TimeSpan timeout, CancellationToken cancel, out bool timedOut)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        timedOut = false;
        while (true)
        {
            lock (_lock)
            {
                if (_findings.TryDequeue(out var finding))
                    return new HandOffItem(null, finding);
                if (_queue.TryDequeue(out var ev))
                    return new HandOffItem(ev, null);
                if (_foldedOrder.TryDequeue(out var sb))
                {
                    _folded.Remove(sb, out var folded);
                    return new HandOffItem(folded, null);
                }
                if (_completed)
                    return null;
                _signalled = false;
            }
            var infinite = timeout == Timeout.InfiniteTimeSpan;
            var left = infinite ? timeout : timeout - System.Diagnostics.Stopwatch.GetElapsedTime(started);
            if (!infinite && left < TimeSpan.Zero || !Wait(left, cancel))
            {
                timedOut = true;
                return null;
            }
        }
    }

    /// <summary>Sleeps until a post, <paramref name="cancel"/> or the timeout; false on the timeout.</summary>
    private unsafe bool Wait(TimeSpan timeout, CancellationToken cancel)
    {
        if (cancel != _registeredFor)
        {
            // One registration for the token the decode thread always passes, not one per wait.
            _registration.Dispose();
            _registration = cancel.UnsafeRegister(static s => ((WakeSignal)s!).Signal(), _signal);
            _registeredFor = cancel;
        }
        cancel.ThrowIfCancellationRequested();
        // Rounded up: a deadline a fraction of a millisecond away must not become a busy loop.
        var ms = timeout == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Min(int.MaxValue, Math.Ceiling(timeout.TotalMilliseconds));
        var fd = _signal.PollFd;
        var ready = Libc.Poll(&fd, 1, ms);
        if (ready < 0 && Libc.LastErrno != Libc.EINTR)
            throw new InvalidOperationException($"poll on the hand-off's eventfd failed: {ErrnoTable.Name(Libc.LastErrno)}");
        if (ready > 0)
            _signal.Drain();
        cancel.ThrowIfCancellationRequested();
        return ready != 0;
    }

    /// <summary>As <see cref="Take(TimeSpan, CancellationToken, out bool)"/>, with no timeout: null only once completed and empty.</summary>
    public HandOffItem? Take(CancellationToken cancel) => Take(Timeout.InfiniteTimeSpan, cancel, out _);

    /// <summary>No more events will be posted; <see cref="Take(CancellationToken)"/> returns null once drained.</summary>
    public void Complete()
    {
        lock (_lock)
            _completed = true;
        _signal.Signal();
    }

    public void Dispose()
    {
        _registration.Dispose();
        _signal.Dispose();
    }
}
