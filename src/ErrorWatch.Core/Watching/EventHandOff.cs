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
    // A taker sleeps in poll(2) on fds of its own, which a post writes after leaving the lock: the
    // woken thread runs at once, neither spinning first (SemaphoreSlim spins with sched_yield,
    // taking a CPU from the outputs on a small machine) nor finding the waker still inside a lock.
    // This one is for takers that bring none (tests, tools); the daemon's event threads bring theirs.
    private readonly EventThreadWake _signal = new();
    // The taker that found nothing and sleeps (or is about to) on its wake-ups, not yet woken; null while
    // the taker works. Whether it may take the reading over (an event thread) rides with it.
    private EventThreadWake? _waiter;
    private bool _waiterReads;
    // The sleeping event thread the read loop handed the reading to: its Take returns to read.
    private EventThreadWake? _reading;
    // Posted by the read loop, which wakes the taker once after its batch (EndReads), not per event.
    private bool _deferred;
    private readonly Lock _registrationLock = new();
    private CancellationToken _registeredFor;
    private CancellationTokenRegistration _registration;
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

    /// <summary>A taker found nothing and sleeps (or is about to), not yet woken.</summary>
    internal bool TakerSleeps
    {
        get
        {
            lock (_lock)
                return _waiter is not null;
        }
    }

    public int Count
    {
        get
        {
            lock (_lock)
                return _queue.Count + _folded.Count + _findings.Count;
        }
    }

    /// <summary>Called by the read loop. Holds the lock only for a queue operation; never blocks on the consumer.</summary>
    /// <param name="ev">The event.</param>
    /// <param name="deferWake">Leave the taker asleep until <see cref="EndReads"/> (the read loop, which posts a batch at a time).</param>
    public void Post(FsErrorEvent ev, bool deferWake = false)
    {
        EventThreadWake? waiter;
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
            if (deferWake)
            {
                _deferred = true;
                return;
            }
            waiter = TakeWaiter();
        }
        waiter?.Signal();
    }

    /// <summary>
    /// The read loop's batch is posted: wakes a sleeping taker once. When that taker is an event thread
    /// and <paramref name="handOver"/> allows, it is woken to take over the reading instead, and the
    /// caller decodes what it read itself: no wake-up stands between read(2) and the decoder
    /// (leader/follower). Returns true when the caller must now take.
    /// </summary>
    internal bool EndReads(bool handOver)
    {
        EventThreadWake? waiter;
        bool handedOver;
        lock (_lock)
        {
            if (!_deferred)
                return false;
            _deferred = false;
            // Asleep or not yet asleep alike: a taker at work takes the batch on its next turn.
            handedOver = handOver && _waiterReads && _waiter is not null && !_completed;
            waiter = TakeWaiter();
            if (handedOver)
                _reading = waiter;
        }
        if (handedOver)
            waiter!.SignalHandOver();
        else
            waiter?.Signal();
        return handedOver;
    }

    private EventThreadWake? TakeWaiter()
    {
        var waiter = _waiter;
        _waiter = null;
        _waiterReads = false;
        return waiter;
    }

    /// <summary>Called by the health sources; never blocks.</summary>
    public void Post(HealthFinding finding)
    {
        EventThreadWake? waiter;
        lock (_lock)
        {
            _findings.Enqueue(finding);
            waiter = TakeWaiter();
        }
        waiter?.Signal();
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
    public HandOffItem? Take(TimeSpan timeout, CancellationToken cancel, out bool timedOut) =>
        Take(timeout, cancel, _signal, canRead: false, out timedOut, out _);

    /// <summary>
    /// As <see cref="Take(TimeSpan, CancellationToken, out bool)"/>, sleeping on <paramref name="own"/>.
    /// An event thread (<paramref name="canRead"/>) may instead be handed the reading
    /// (<see cref="EndReads"/>): then it returns null with <paramref name="read"/> set, before anything
    /// else, cancellation included, since the reader that woke it is decoding by then.
    /// </summary>
    internal HandOffItem? Take(TimeSpan timeout, CancellationToken cancel, EventThreadWake own, bool canRead, out bool timedOut, out bool read)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var infinite = timeout == Timeout.InfiniteTimeSpan;
        timedOut = false;
        read = false;
        while (true)
        {
            var left = infinite ? timeout : timeout - System.Diagnostics.Stopwatch.GetElapsedTime(started);
            lock (_lock)
            {
                if (_waiter == own)
                    TakeWaiter();
                if (_reading == own)
                {
                    _reading = null;
                    read = true;
                    return null;
                }
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
                cancel.ThrowIfCancellationRequested();
                if (!infinite && left <= TimeSpan.Zero)
                {
                    timedOut = true;
                    return null;
                }
                _waiter = own;
                _waiterReads = canRead;
            }
            Wait(own, left, cancel);
        }
    }

    /// <summary>Sleeps until a post, a hand-over, <paramref name="cancel"/> or the timeout; the caller looks again either way.</summary>
    private void Wait(EventThreadWake own, TimeSpan timeout, CancellationToken cancel)
    {
        lock (_registrationLock)
        {
            if (cancel != _registeredFor)
            {
                // One registration for the token the decode thread always passes, not one per wait.
                // Not under _lock: disposing waits for a running callback, which takes _lock.
                _registration.Dispose();
                _registration = cancel.UnsafeRegister(static s => ((EventHandOff)s!).WakeWaiter(), this);
                _registeredFor = cancel;
            }
        }
        // Rounded up: a deadline a fraction of a millisecond away must not become a busy loop.
        var ms = timeout == Timeout.InfiniteTimeSpan ? -1 : (int)Math.Min(int.MaxValue, Math.Ceiling(timeout.TotalMilliseconds));
        if (!own.Wait(ms))
            throw new InvalidOperationException($"poll on the hand-off's wake-ups failed: {ErrnoTable.Name(Libc.LastErrno)}");
    }

    /// <summary>Cancellation: the sleeping taker looks again (and throws).</summary>
    private void WakeWaiter()
    {
        EventThreadWake? waiter;
        lock (_lock)
            waiter = _waiter;
        waiter?.Signal();
    }

    /// <summary>As <see cref="Take(TimeSpan, CancellationToken, out bool)"/>, with no timeout: null only once completed and empty.</summary>
    public HandOffItem? Take(CancellationToken cancel) => Take(Timeout.InfiniteTimeSpan, cancel, out _);

    /// <summary>No more events will be posted; <see cref="Take(CancellationToken)"/> returns null once drained.</summary>
    public void Complete()
    {
        EventThreadWake? waiter;
        lock (_lock)
        {
            _completed = true;
            waiter = TakeWaiter();
        }
        waiter?.Signal();
    }

    public void Dispose()
    {
        lock (_registrationLock)
            _registration.Dispose();
        _signal.Dispose();
    }
}
