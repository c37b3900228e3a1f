using ErrorWatch.Interop;

namespace ErrorWatch.Watching;

/// <summary>
/// An eventfd a thread polls beside its other fds, so another thread can wake it from poll(2)
/// (to apply commands, rescan, or stop). Non-blocking: signalling never waits.
/// </summary>
internal sealed unsafe class WakeSignal : IDisposable
{
    private readonly FileDescriptor _fd;

    public WakeSignal()
    {
        var fd = Libc.EventFd(0, Libc.EFD_CLOEXEC | Libc.EFD_NONBLOCK);
        if (fd < 0)
            throw new InvalidOperationException($"eventfd failed: {ErrnoTable.Name(Libc.LastErrno)}");
        _fd = new FileDescriptor(fd);
    }

    public Libc.PollFd PollFd => new() { Fd = _fd.Fd, Events = Libc.POLLIN };

    public void Signal()
    {
        ulong one = 1;
        Libc.Write(_fd.Fd, (byte*)&one, 8);
    }

    /// <summary>Resets the counter after poll reported it readable.</summary>
    public void Drain()
    {
        ulong value;
        Libc.Read(_fd.Fd, (byte*)&value, 8);
    }

    public void Dispose() => _fd.Dispose();
}
