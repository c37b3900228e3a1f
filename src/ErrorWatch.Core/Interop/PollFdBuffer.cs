using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// A poll(2) set (<c>struct pollfd</c>, &lt;poll.h&gt;) in native memory, for a thread that blocks in
/// poll for seconds at a time. A managed array pinned for the wait keeps the GC region it sits in from
/// being compacted or given back: the health loop's set, allocated afresh for each wait in a storm, held
/// 1-4 MiB of the storm's heap after it (docs/performance.md, NativeAOT footprint). One thread at a time uses it.
/// </summary>
internal sealed unsafe class PollFdBuffer : IDisposable
{
    private Libc.PollFd* _fds;
    private int _capacity;
    private int _count;

    /// <summary>The set, <paramref name="count"/> entries long (contents unspecified until filled).</summary>
    public Span<Libc.PollFd> Resize(int count)
    {
        ObjectDisposedException.ThrowIf(_capacity < 0, this);
        if (count > _capacity)
        {
            var capacity = Math.Max(count, Math.Max(4, _capacity * 2));
            _fds = (Libc.PollFd*)NativeMemory.Realloc(_fds, (nuint)(capacity * sizeof(Libc.PollFd)));
            _capacity = capacity;
        }
        _count = count;
        return new Span<Libc.PollFd>(_fds, count);
    }

    /// <summary>poll(2) on the set: ready descriptors, 0 on timeout, -1 with errno set.</summary>
    public int Poll(int timeoutMs) => Libc.Poll(_fds, (nuint)_count, timeoutMs);

    public void Dispose()
    {
        NativeMemory.Free(_fds);
        _fds = null;
        _count = 0;
        _capacity = -1;
    }
}
