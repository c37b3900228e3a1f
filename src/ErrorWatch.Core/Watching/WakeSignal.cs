using ErrorWatch.Interop;

namespace ErrorWatch.Watching;

/// <summary>
/// A pipe a thread polls beside its other fds, so another thread can wake it from poll(2)
/// (to take a report, apply commands, rescan, or stop). Non-blocking: signalling never waits.
/// A pipe rather than an eventfd: a pipe write wakes the poller as a synchronous wake-up (the
/// writer is about to sleep), which lets the scheduler run it on the writer's CPU instead of
/// waking an idle one; on a virtual machine that is the difference between microseconds and a
/// tenth of a millisecond on the way from read(2) to the outputs (docs/performance.md, latency).
/// </summary>
internal sealed unsafe class WakeSignal : IDisposable
{
    private readonly FileDescriptor _read;
    private readonly FileDescriptor _write;

    public WakeSignal()
    {
        int* fds = stackalloc int[2];
        if (Libc.Pipe2(fds, Libc.O_NONBLOCK | Libc.O_CLOEXEC) < 0)
            throw new InvalidOperationException($"pipe2 failed: {ErrnoTable.Name(Libc.LastErrno)}");
        _read = new FileDescriptor(fds[0]);
        _write = new FileDescriptor(fds[1]);
    }

    public Libc.PollFd PollFd => new() { Fd = _read.Fd, Events = Libc.POLLIN };

    /// <summary>Wakes the poller; a pipe already holding wake-ups (EAGAIN when full) wakes it all the same.</summary>
    public void Signal()
    {
        byte one = 1;
        Libc.Write(_write.Fd, &one, 1);
    }

    /// <summary>Empties the pipe after poll reported it readable.</summary>
    public void Drain()
    {
        byte* buffer = stackalloc byte[64];
        while (Libc.Read(_read.Fd, buffer, 64) == 64)
        {
        }
    }

    public void Dispose()
    {
        _write.Dispose();
        _read.Dispose();
    }
}
