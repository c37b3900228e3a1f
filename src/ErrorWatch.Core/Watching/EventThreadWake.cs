using ErrorWatch.Interop;

namespace ErrorWatch.Watching;

/// <summary>
/// What a sleeping taker of the <see cref="EventHandOff"/> polls: two ways to wake it, because where the
/// scheduler runs the woken thread matters on the way to the store. A post wakes it through a pipe, as
/// the poster is about to sleep (a synchronous wake-up, <see cref="WakeSignal"/>: it runs on the poster's
/// CPU at once). A hand-over of the reading wakes it through an eventfd, an ordinary wake-up, because
/// the former reader keeps its CPU to decode what it read: the woken thread may run on another CPU
/// instead of preempting it.
/// </summary>
internal sealed unsafe class EventThreadWake : IDisposable
{
    private readonly WakeSignal _post = new();
    private readonly FileDescriptor _handOver;

    public EventThreadWake()
    {
        var fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (fd < 0)
            throw new InvalidOperationException($"eventfd failed: {ErrnoTable.Name(Libc.LastErrno)}");
        _handOver = new FileDescriptor(fd);
    }

    /// <summary>Wakes it from a thread about to sleep (a post, the end of the hand-off, cancellation).</summary>
    public void Signal() => _post.Signal();

    /// <summary>Wakes it from a thread that keeps running (the reader that handed it the reading).</summary>
    public void SignalHandOver()
    {
        ulong one = 1;
        Libc.Write(_handOver.Fd, (byte*)&one, sizeof(ulong));
    }

    /// <summary>Sleeps until either is written or the timeout (-1: none); false on a poll failure other than EINTR.</summary>
    public bool Wait(int timeoutMs)
    {
        var fds = stackalloc Libc.PollFd[2];
        fds[0] = _post.PollFd;
        fds[1] = new Libc.PollFd { Fd = _handOver.Fd, Events = Libc.POLLIN };
        var ready = Libc.Poll(fds, 2, timeoutMs);
        if (ready < 0)
            return Libc.LastErrno == Libc.EINTR;
        if ((fds[0].REvents & Libc.POLLIN) != 0)
            _post.Drain();
        if ((fds[1].REvents & Libc.POLLIN) != 0)
        {
            ulong count;
            Libc.Read(_handOver.Fd, (byte*)&count, sizeof(ulong));
        }
        return true;
    }

    public void Dispose()
    {
        _post.Dispose();
        _handOver.Dispose();
    }
}
