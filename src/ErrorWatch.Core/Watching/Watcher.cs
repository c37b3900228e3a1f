using System.Collections.Concurrent;
using System.Diagnostics;
using ErrorWatch.Interop;
using ErrorWatch.Kernel;
using Serilog;

namespace ErrorWatch.Watching;

/// <summary>
/// The read loop: one thread polls every watched superblock's fanotify group, reads whole events
/// into one 64 KiB buffer, parses them in place and posts them to the <see cref="EventHandOff"/>.
/// An event's superblock is the one its group belongs to; in the shared spill group, the one whose
/// fsid the event carries (see <see cref="SuperblockWatch"/>).
/// It does nothing that can wait on a consumer. Watches are added and retired through a command
/// queue so that only the reading thread ever reads or closes a group fd; a retired group is read
/// until empty before it is closed, so events queued before an unmount are not lost.
/// In the daemon the reading is a role two event threads trade (<see cref="TradeWith"/>): the thread
/// that read a batch while the other one slept decodes it itself and wakes the other one to read on,
/// so no thread wake-up stands between read(2) and the decoder, and the reading never waits on one.
/// </summary>
public sealed unsafe class Watcher : IDisposable
{
    public const int BufferSize = 64 * 1024;

    private readonly EventHandOff _handOff;
    private readonly ILogger _log;
    private readonly WakeSignal _wake = new();
    private readonly ConcurrentQueue<Command> _commands = new();
    private readonly List<SuperblockWatch> _watches = new();
    // The groups polled, each with the superblocks it holds marks for (one, except the spill group).
    private readonly Dictionary<FanotifyGroup, List<SuperblockWatch>> _groups = new(ReferenceEqualityComparer.Instance);
    private readonly List<FanotifyGroup> _polled = new();
    private long _unmatched;
    private readonly byte[] _buffer = GC.AllocateArray<byte>(BufferSize, pinned: true);
    private readonly Thread _thread;
    private readonly ManualResetEventSlim _readingEnded = new();
    // In native memory: the reading thread waits in poll(2) nearly all its life (PollFdBuffer says why).
    private readonly PollFdBuffer _pollSet = new();
    private volatile Func<EventThreadWake, bool>? _decode;
    private volatile bool _stopping;
    private volatile bool _started;
    private long _parseErrors;
    private long _eventsRead;
    private readonly int _priorityBoost;

    /// <param name="priorityBoost">[Watch] PriorityBoost: how far the read loop runs ahead of ordinary work (<see cref="EventThreadPriority"/>).</param>
    public Watcher(EventHandOff handOff, ILogger log, int priorityBoost = 0)
    {
        _handOff = handOff;
        _log = log;
        _priorityBoost = priorityBoost;
        _thread = new Thread(Loop) { Name = EventThreadNames.First, IsBackground = true };
    }

    /// <summary>Proves to the watchdog that the read loop turns (or waits in poll with nothing to read).</summary>
    public LoopHeartbeat Heartbeat { get; } = new("fanotify read loop");

    public long EventsRead => Interlocked.Read(ref _eventsRead);
    /// <summary>Events in the spill group whose fsid matched no watched superblock (one unwatched while its mark stayed).</summary>
    public long UnmatchedEvents => Interlocked.Read(ref _unmatched);
    public long ParseErrors => Interlocked.Read(ref _parseErrors);

    public void Start()
    {
        _started = true;
        _thread.Start();
    }

    /// <summary>
    /// Lets the read loop hand the reading to the decode thread when that one sleeps and decode what it
    /// read itself: <paramref name="decode"/> takes and decodes on the calling thread until it is handed
    /// the reading back (true) or the decoding has ended (false). The decode thread calls
    /// <see cref="Read"/> when its take returns to read.
    /// </summary>
    internal void TradeWith(Func<EventThreadWake, bool> decode) => _decode = decode;

    public void Add(SuperblockWatch watch) => Send(new Command(watch, CommandKind.Add, null));

    /// <summary>
    /// Reads everything the kernel has queued for this group; completes when done. The ext4 health
    /// source calls it before comparing errors_count with fanotify counts: the kernel queues the
    /// event before it updates the counter, so after a flush every counted error that fanotify
    /// announced has been read.
    /// </summary>
    public bool Flush(SuperblockWatch watch, TimeSpan timeout)
    {
        if (!_started || _readingEnded.IsSet)
            return true;
        // A plain event, not a Task: completing it runs nothing on the read loop's thread and wakes no pool thread.
        using var done = new ManualResetEventSlim();
        Send(new Command(watch, CommandKind.Flush, null, done));
        return done.Wait(timeout);
    }

    /// <summary>Stops watching: the group is read until empty, then closed. Completes when done.</summary>
    public Task Retire(SuperblockWatch watch)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Send(new Command(watch, CommandKind.Retire, done));
        return done.Task;
    }

    /// <summary>Reads what is queued in every group, closes them and completes the hand-off.</summary>
    public bool Stop(TimeSpan timeout)
    {
        _stopping = true;
        Wake();
        // The reading may be on the other event thread by now: wait for it to end, not for a thread.
        return !_started || _readingEnded.Wait(timeout);
    }

    private void Send(Command command)
    {
        _commands.Enqueue(command);
        Wake();
    }

    private void Wake() => _wake.Signal();

    private enum CommandKind { Add, Retire, Flush }

    private readonly record struct Command(SuperblockWatch Watch, CommandKind Kind, TaskCompletionSource? Done, ManualResetEventSlim? Flushed = null);

    private void Loop()
    {
        EventThreadPriority.Raise(_priorityBoost, EventThreadNames.First, _log);
        using var own = new EventThreadWake();
        while (Read() && _decode is { } decode && decode(own))
        {
        }
    }

    /// <summary>
    /// Reads on the calling thread until it hands the reading over (true: the caller now decodes what it
    /// read) or the reading ends (false: stopping or failed; every group read empty and closed, the
    /// hand-off completed).
    /// </summary>
    internal bool Read()
    {
        try
        {
            while (!_stopping)
            {
                ApplyCommands();
                // A flush or a retirement may have read events.
                if (EndReads())
                    return true;
                var fds = _pollSet.Resize(_polled.Count + 1);
                fds[0] = _wake.PollFd;
                for (var i = 0; i < _polled.Count; i++)
                    fds[i + 1] = new Libc.PollFd { Fd = _polled[i].Fd, Events = Libc.POLLIN };

                Heartbeat.Waiting();
                var ready = _pollSet.Poll(-1);
                Heartbeat.Progress();
                if (ready < 0)
                {
                    if (Libc.LastErrno == Libc.EINTR)
                        continue;
                    _log.Fatal("poll on fanotify groups failed: {Errno}", ErrnoTable.Name(Libc.LastErrno));
                    break;
                }
                if ((fds[0].REvents & Libc.POLLIN) != 0)
                    _wake.Drain();
                for (var i = 1; i < fds.Length; i++)
                {
                    if (fds[i].REvents != 0 && i - 1 < _polled.Count)
                        ReadAll(_polled[i - 1]);
                }
                if (EndReads())
                    return true;
            }
        }
        catch (Exception e)
        {
            _log.Fatal(e, "The fanotify read loop failed");
        }
        EndReading();
        return false;
    }

    /// <summary>The batch is posted: true when the caller was handed the decoding (the daemon's decode thread slept).</summary>
    private bool EndReads() => _handOff.EndReads(handOver: _decode is not null);

    private void EndReading()
    {
        try
        {
            ApplyCommands();
            foreach (var group in _polled)
                ReadAll(group);
            foreach (var watch in _watches)
                watch.Dispose();
            _watches.Clear();
            _groups.Clear();
            _polled.Clear();
        }
        finally
        {
            _handOff.Complete();
            _readingEnded.Set();
        }
    }

    private void ApplyCommands()
    {
        while (_commands.TryDequeue(out var command))
        {
            if (command.Kind == CommandKind.Add)
            {
                _watches.Add(command.Watch);
                if (!_groups.TryGetValue(command.Watch.Group, out var members))
                {
                    _groups[command.Watch.Group] = members = new List<SuperblockWatch>();
                    _polled.Add(command.Watch.Group);
                }
                members.Add(command.Watch);
                continue;
            }
            if (command.Kind == CommandKind.Flush)
            {
                if (_watches.Contains(command.Watch))
                    ReadAll(command.Watch.Group);
                try
                {
                    command.Flushed?.Set();
                }
                catch (ObjectDisposedException)
                {
                    // the caller stopped waiting and disposed it
                }
                continue;
            }
            if (_watches.Remove(command.Watch))
            {
                // Read first: the group may hold its last events (or, shared, others' events).
                ReadAll(command.Watch.Group);
                var members = _groups[command.Watch.Group];
                members.Remove(command.Watch);
                if (members.Count == 0)
                {
                    _groups.Remove(command.Watch.Group);
                    _polled.Remove(command.Watch.Group);
                }
            }
            command.Watch.Dispose();
            command.Done?.SetResult();
        }
    }

    /// <summary>Reads the group until the kernel queue is empty (FAN_NONBLOCK gives EAGAIN).</summary>
    private void ReadAll(FanotifyGroup group)
    {
        if (!_groups.TryGetValue(group, out var members) || members.Count == 0)
            return;
        while (true)
        {
            var n = group.Read(_buffer);
            if (n == 0)
                return;
            if (n < 0)
            {
                _log.Error("read from the fanotify group of {Superblock} failed: {Errno}", Name(members), ErrnoTable.Name(-n));
                return;
            }
            Dispatch(group, members, _buffer.AsSpan(0, n));
        }
    }

    private static string Name(List<SuperblockWatch> members) =>
        members.Count == 1 ? members[0].Superblock.ToString() : $"the shared group of {members.Count} filesystems";

    /// <summary>
    /// The superblock an event is about: its own group's one, or in the spill group the member with the
    /// event's fsid (kept unique there by the inventory), or one whose Add is still queued: the inventory
    /// marks before it sends the Add, so the kernel can queue an event the read loop sees first. Null
    /// when none matches. A spill group with one member still matches by fsid: the next may be queued.
    /// </summary>
    private SuperblockWatch? Owner(FanotifyGroup group, List<SuperblockWatch> members, in EventRecords records)
    {
        if (members.Count == 1 && !members[0].SharesGroup)
            return members[0];
        if (!records.HasFid)
            return null;
        foreach (var member in members)
        {
            if (member.Superblock.Fsid == records.Fsid)
                return member;
        }
        if (_commands.IsEmpty)
            return null;
        foreach (var queued in QueuedAdds(group))
        {
            if (queued.Superblock.Fsid == records.Fsid)
                return queued;
        }
        return null;
    }

    /// <summary>
    /// Who an event of <paramref name="group"/> that names no filesystem (an overflow, no file id, a
    /// malformed buffer) may have been about: the members, and those whose Add is still queued (their
    /// marks are placed). The same view <see cref="Owner"/> attributes by; each is told.
    /// </summary>
    private List<SuperblockWatch> MembersNow(FanotifyGroup group, List<SuperblockWatch> members)
    {
        if (_commands.IsEmpty)
            return members;
        var now = new List<SuperblockWatch>(members);
        foreach (var queued in QueuedAdds(group))
        {
            if (!now.Contains(queued))
                now.Add(queued);
        }
        return now;
    }

    /// <summary>
    /// The watches of <paramref name="group"/> whose Add is queued and not retired by a later command.
    /// Rare (an event in the instant after a mark): the snapshot enumeration allocates, nothing else does.
    /// </summary>
    private List<SuperblockWatch> QueuedAdds(FanotifyGroup group)
    {
        var queued = new List<SuperblockWatch>();
        foreach (var command in _commands)
        {
            if (command.Watch.Group != group)
                continue;
            if (command.Kind == CommandKind.Add)
                queued.Add(command.Watch);
            else if (command.Kind == CommandKind.Retire)
                queued.Remove(command.Watch);
        }
        return queued;
    }

    private void Dispatch(FanotifyGroup group, List<SuperblockWatch> members, ReadOnlySpan<byte> buffer)
    {
        var timestamp = Stopwatch.GetTimestamp();
        var now = DateTimeOffset.UtcNow;
        var reader = new FanotifyEventReader(buffer);
        while (reader.TryRead(out var ev))
        {
            Interlocked.Increment(ref _eventsRead);
            if (ev.IsOverflow)
            {
                // A shared queue that overflowed lost events of any of its filesystems: each is told.
                foreach (var member in MembersNow(group, members))
                {
                    Interlocked.Increment(ref member._eventsRead);
                    _log.Warning("Kernel event queue overflowed for {Superblock}: error events were lost", member.Superblock);
                    _handOff.Post(FsErrorEvent.Lost(member.Superblock, now, timestamp, ev.Mask), deferWake: true);
                }
                continue;
            }
            if (!ev.IsFsError)
            {
                _log.Warning("Unexpected fanotify event mask 0x{Mask:x} at offset {Offset} for {Superblock}; ignored", ev.Mask, ev.Offset, Name(members));
                continue;
            }
            var records = ev.ReadRecords();
            if (Owner(group, members, records) is not { } watch)
            {
                if (!records.HasFid)
                {
                    // Unattributable in a shared group (malformed, no fsid): every filesystem in it is told
                    // its counts may be short, as for an overflow; never silent.
                    Interlocked.Increment(ref _parseErrors);
                    _log.Error("A FAN_FS_ERROR event without a file id in {Group} ({Problem}); each of its filesystems gets a lost-events report",
                        Name(members), records.Problem.ToString());
                    foreach (var member in MembersNow(group, members))
                        _handOff.Post(FsErrorEvent.Lost(member.Superblock, now, timestamp, ev.Mask, records.Problem), deferWake: true);
                    continue;
                }
                // Only a superblock unwatched while its mark stayed in the spill group (a configuration
                // change) gets here: it is not ours to report any more.
                if (Interlocked.Increment(ref _unmatched) == 1)
                    _log.Warning("An error event in the shared fanotify group names fsid {Fsid}, which no watched filesystem has; ignored (counted in unmatched events)",
                        records.HasFid ? records.Fsid.ToString() : "none");
                continue;
            }
            Interlocked.Increment(ref watch._eventsRead);
            if (records.Problem.IsError)
            {
                Interlocked.Increment(ref _parseErrors);
                _log.Error("Malformed FAN_FS_ERROR event from {Superblock}: {Problem}; reported with what could be read", watch.Superblock, records.Problem.ToString());
            }
            Interlocked.Add(ref watch._errorsRead, records.ErrorCount);
            _handOff.Post(FsErrorEvent.FromKernel(watch.Superblock, ev, records, now, timestamp), deferWake: true);
        }
        if (reader.Error.IsError)
        {
            Interlocked.Increment(ref _parseErrors);
            _log.Error("Malformed fanotify buffer from {Superblock} ({Length} bytes): {Problem}; the rest of this read is unusable",
                Name(members), buffer.Length, reader.Error.ToString());
            // Whatever followed is unknown: make that visible as a lost-events report, never silent.
            foreach (var member in MembersNow(group, members))
                _handOff.Post(FsErrorEvent.Lost(member.Superblock, now, timestamp, 0, reader.Error), deferWake: true);
        }
    }

    public void Dispose()
    {
        if (Stop(TimeSpan.FromSeconds(2)))
            _pollSet.Dispose();
        _wake.Dispose();
    }
}
