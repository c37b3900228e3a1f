using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Interop;
using ErrorWatch.Kernel;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Tests.Decoding;
using ErrorWatch.Tests.Kernel;
using ErrorWatch.Watching;

namespace ErrorWatch.Tests.Watching;

/// <summary>
/// The read loop over the shared spill group, with synthetic buffers through a pipe standing in for the
/// group (marked synthetic: the kernel cannot be made to send an event without a file id, and one group
/// over several filesystems only happens past the group limit, which GroupLimitTests reaches for real).
/// </summary>
public sealed class SpillGroupDispatchTests
{
    private static readonly Superblock A = TestEvents.Make(new DeviceNumber(7, 10), "ext4", Ext4Module.SuperMagic, "/dev/loop10", new FilesystemId(0x1111, 0x2222));
    private static readonly Superblock B = TestEvents.Make(new DeviceNumber(7, 11), "ext4", Ext4Module.SuperMagic, "/dev/loop11", new FilesystemId(0x3333, 0x4444));

    /// <summary>A read loop over a pipe standing in for the shared group, with A and B as its members (not yet added).</summary>
    private sealed class SpillRig : IDisposable
    {
        private readonly int _writeEnd;

        public SpillRig()
        {
            var (readEnd, writeEnd) = Pipe();
            _writeEnd = writeEnd;
            Group = FanotifyGroup.Wrap(readEnd);
            HandOff = new EventHandOff();
            Watcher = new Watcher(HandOff, Serilog.Core.Logger.None);
            A = new SuperblockWatch(SpillGroupDispatchTests.A, Group, sharesGroup: true);
            B = new SuperblockWatch(SpillGroupDispatchTests.B, Group, sharesGroup: true);
        }

        public FanotifyGroup Group { get; }
        public EventHandOff HandOff { get; }
        public Watcher Watcher { get; }
        public SuperblockWatch A { get; }
        public SuperblockWatch B { get; }

        public unsafe void Write(byte[] buffer)
        {
            fixed (byte* p = buffer)
                Assert.Equal(buffer.Length, (int)Libc.Write(_writeEnd, p, buffer.Length));
        }

        /// <summary>
        /// Reads <paramref name="buffer"/> while B's Add is still queued, in a deterministic order through
        /// the command queue: the loop's first pass adds A, then retiring A reads the group while B's Add
        /// waits behind (the inventory's mark-then-Add leaves the same window for real). Returns once B is added.
        /// </summary>
        public async Task ReadWhileBsAddIsQueued(byte[] buffer)
        {
            Write(buffer);
            Watcher.Add(A);
            var retired = Watcher.Retire(A);
            Watcher.Add(B);
            Watcher.Start();
            await retired.WaitAsync(TimeSpan.FromSeconds(5));
            Assert.True(Watcher.Flush(B, TimeSpan.FromSeconds(5)));
        }

        /// <summary>Every event the hand-off holds now.</summary>
        public List<FsErrorEvent> Taken()
        {
            var taken = new List<FsErrorEvent>();
            while (HandOff.Take(TimeSpan.FromMilliseconds(200), CancellationToken.None, out _) is { Event: { } ev })
                taken.Add(ev);
            return taken;
        }

        public void Dispose()
        {
            Watcher.Stop(TimeSpan.FromSeconds(2));
            Watcher.Dispose();
            Libc.Close(_writeEnd);
            HandOff.Dispose();
            Group.Dispose();
        }

        private static unsafe (int Read, int Write) Pipe()
        {
            var fds = stackalloc int[2];
            Assert.Equal(0, Libc.Pipe2(fds, Libc.O_NONBLOCK | Libc.O_CLOEXEC));
            return (fds[0], fds[1]);
        }
    }

    [Fact]
    public async Task Events_go_to_the_member_with_their_fsid_unknown_fsids_are_counted_and_an_event_without_one_warns_every_member()
    {
        using var rig = new SpillRig();
        var (watcher, a, b) = (rig.Watcher, rig.A, rig.B);
        watcher.Start();
        watcher.Add(a);
        watcher.Add(b);
        // Both Adds applied before anything is read (a flush runs after the commands queued before it):
        // this test is about members; an event read while an Add waits is the next test's subject.
        Assert.True(watcher.Flush(b, TimeSpan.FromSeconds(5)));
        var buffer = new EventBuilder()
            .Event().Fid(B.Fsid, EventBuilder.FileIdInvalid, []).Error(117, 3)                 // B's
            .Event().Fid(new FilesystemId(0x9999, 0x9999), EventBuilder.FileIdInvalid, []).Error(5, 1) // nobody's
            .Event().Fid(A.Fsid, EventBuilder.FileIdInvalid, []).Error(5, 2)                   // A's
            .Event().Error(74, 4)                                                              // no fsid at all
            .Build();
        rig.Write(buffer);
        Assert.True(watcher.Flush(a, TimeSpan.FromSeconds(5)));

        var taken = rig.Taken();
        Assert.Equal(4, taken.Count);
        Assert.Same(B, taken[0].Superblock);
        Assert.Equal((117, 3UL), (taken[0].Errno, (ulong)taken[0].Count));
        Assert.Same(A, taken[1].Superblock);
        Assert.Equal((5, 2UL), (taken[1].Errno, (ulong)taken[1].Count));
        // The event without a file id cannot be attributed: each member is told its count may be short.
        Assert.All(taken.Skip(2), ev => Assert.True(ev.IsOverflow));
        Assert.Equal([A, B], taken.Skip(2).Select(ev => ev.Superblock));
        Assert.Equal(1, watcher.UnmatchedEvents);
        Assert.Equal(1, watcher.ParseErrors);
        Assert.Equal((1L, 2L), (a.EventsRead, a.ErrorsRead));
        Assert.Equal((1L, 3L), (b.EventsRead, b.ErrorsRead));

        // Retiring one member leaves the group to the other; a shared group is never closed by a watch.
        await watcher.Retire(a).WaitAsync(TimeSpan.FromSeconds(5));
        Assert.True(rig.Group.Fd >= 0);
        var more = new EventBuilder().Event().Fid(B.Fsid, EventBuilder.FileIdInvalid, []).Error(117, 1).Build();
        rig.Write(more);
        Assert.True(watcher.Flush(b, TimeSpan.FromSeconds(5)));
        Assert.Same(B, rig.HandOff.Take(TimeSpan.FromSeconds(2), CancellationToken.None, out _)?.Event?.Superblock);
    }

    [Fact]
    public async Task An_event_read_before_its_filesystems_Add_reaches_the_read_loop_goes_to_that_filesystem_not_the_only_member()
    {
        // One shared member must not take every event of the group.
        using var rig = new SpillRig();
        var (watcher, a, b) = (rig.Watcher, rig.A, rig.B);
        await rig.ReadWhileBsAddIsQueued(new EventBuilder()
            .Event().Fid(B.Fsid, EventBuilder.FileIdInvalid, []).Error(117, 3)
            .Event().Fid(A.Fsid, EventBuilder.FileIdInvalid, []).Error(5, 2)
            .Event().Fid(new FilesystemId(0x9999, 0x9999), EventBuilder.FileIdInvalid, []).Error(5, 1)
            .Build());

        var taken = rig.Taken();
        Assert.Equal([B, A], taken.Select(ev => ev.Superblock));
        Assert.Equal((1L, 3L), (b.EventsRead, b.ErrorsRead));
        Assert.Equal((1L, 2L), (a.EventsRead, a.ErrorsRead));
        Assert.Equal(1, watcher.UnmatchedEvents);
    }

    [Fact]
    public async Task An_event_naming_no_filesystem_read_while_an_Add_is_queued_reaches_that_filesystem_too()
    {
        // B's Add still queued while the group is read: an event without a file id, an overflow and a
        // malformed tail could each be about B, whose mark is placed. B is told as A is.
        using var rig = new SpillRig();
        await rig.ReadWhileBsAddIsQueued(new EventBuilder()
            .Event().Error(74, 4)                                    // no file id
            .Event(mask: EventBuilder.FanQOverflow)                  // the shared queue overflowed
            .Tail([0xde, 0xad])                                      // a truncated event: the rest is unreadable
            .Build());

        var taken = rig.Taken();
        Assert.All(taken, ev => Assert.True(ev.IsOverflow));
        Assert.Equal([A, B, A, B, A, B], taken.Select(ev => ev.Superblock));
    }
}
