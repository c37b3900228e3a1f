using ErrorWatch.Interop;

namespace ErrorWatch.Tests.Watching;

/// <summary>The native poll set the read and health loops wait on: it grows, shrinks and reports the right descriptor.</summary>
public sealed unsafe class PollFdBufferTests
{
    [Fact]
    public void Poll_reports_the_descriptor_that_is_ready_as_the_set_grows_and_shrinks()
    {
        var pipes = Enumerable.Range(0, 6).Select(_ => Pipe()).ToArray();
        try
        {
            using var set = new PollFdBuffer();
            foreach (var count in new[] { 1, 6, 2, 6 })
            {
                var fds = set.Resize(count);
                Assert.Equal(count, fds.Length);
                for (var i = 0; i < count; i++)
                    fds[i] = new Libc.PollFd { Fd = pipes[i].Read, Events = Libc.POLLIN };
                Assert.Equal(0, set.Poll(0));

                var ready = count - 1;
                WriteByte(pipes[ready].Write);
                Assert.Equal(1, set.Poll(1000));
                for (var i = 0; i < count; i++)
                    Assert.Equal(i == ready ? Libc.POLLIN : (short)0, fds[i].REvents);
                ReadByte(pipes[ready].Read);
            }
        }
        finally
        {
            foreach (var (read, write) in pipes)
            {
                Libc.Close(read);
                Libc.Close(write);
            }
        }
    }

    [Fact]
    public void A_disposed_set_is_not_used_again()
    {
        var set = new PollFdBuffer();
        set.Resize(3);
        set.Dispose();
        set.Dispose();
        Assert.Throws<ObjectDisposedException>(() => { set.Resize(1); });
    }

    private static (int Read, int Write) Pipe()
    {
        var fds = stackalloc int[2];
        Assert.Equal(0, Libc.Pipe2(fds, Libc.O_NONBLOCK | Libc.O_CLOEXEC));
        return (fds[0], fds[1]);
    }

    private static void WriteByte(int fd)
    {
        byte b = 1;
        Assert.Equal(1, (int)Libc.Write(fd, &b, 1));
    }

    private static void ReadByte(int fd)
    {
        byte b;
        Assert.Equal(1, (int)Libc.Read(fd, &b, 1));
    }
}
