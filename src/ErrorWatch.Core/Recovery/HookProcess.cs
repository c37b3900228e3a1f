using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using ErrorWatch.Interop;
using ErrorWatch.Watching;

namespace ErrorWatch.Recovery;

/// <summary>An executable hook's command line and environment, as bytes (no shell ever sees them).</summary>
public sealed record HookCommand
{
    /// <summary>Absolute path, executed directly (posix_spawn, never through a shell; no PATH search).</summary>
    public required string Executable { get; init; }
    /// <summary>argv, argv[0] included.</summary>
    public required IReadOnlyList<byte[]> Arguments { get; init; }
    /// <summary>"NAME=value" entries, values any bytes but NUL.</summary>
    public required IReadOnlyList<byte[]> Environment { get; init; }
    public required TimeSpan Timeout { get; init; }
    /// <summary>Between SIGTERM and SIGKILL to the process group at the timeout.</summary>
    public required TimeSpan KillGrace { get; init; }
}

/// <summary>One line a hook wrote (newline removed; longer lines come in pieces of <see cref="HookProcess.MaxLineBytes"/>).</summary>
public readonly record struct HookOutputLine(bool Stderr, byte[] Text);

/// <summary>
/// Runs one executable hook to its end: posix_spawn with argv and envp as raw bytes, in a process
/// group of its own (so the group can be signalled as one), with stdin from /dev/null, stdout and
/// stderr on pipes read line by line, working directory / and no file descriptor of the daemon
/// (closefrom 3), every signal at its default disposition and none blocked. Waits with a pidfd, so
/// the exit is seen without polling and the exited child stays unreaped (its pid, and with it the
/// process group id, cannot be reused) until the group has been dealt with:
/// <list type="bullet">
/// <item>at the timeout: SIGTERM to the group, SIGKILL to the group after the grace period;</item>
/// <item>when the hook exits: SIGTERM to what it left running in its group, SIGKILL to whatever is
/// still there once its output is read (at most a second later), as systemd ends a finished service's
/// control group; work that should outlive a hook belongs in a unit (systemd-run);</item>
/// <item>when ErrorWatch stops: SIGTERM, then SIGKILL after the stop grace.</item>
/// </list>
/// </summary>
public static unsafe class HookProcess
{
    public const int MaxLineBytes = 4096;

    /// <summary>How long output is still read after the hook exited (children it left may hold the pipes).</summary>
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(1);

    /// <summary>A process that survives SIGKILL this long is stuck in the kernel (uninterruptible I/O); it is left to a reaper thread.</summary>
    private static readonly TimeSpan Unkillable = TimeSpan.FromSeconds(10);

    /// <param name="started">Called with the pid once the process exists (the ledger records it).</param>
    /// <param name="stop">ErrorWatch is stopping: the group gets SIGTERM, and SIGKILL after <paramref name="stopGrace"/>.</param>
    public static HookOutcome Run(HookCommand command, Action<HookOutputLine> output, CancellationToken stop, TimeSpan stopGrace, Action<int>? started = null)
    {
        var startedAt = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        HookOutcome Failed(string why) => new()
        {
            Result = HookOutcome.Failure, Detail = why, Started = startedAt, Duration = clock.Elapsed,
        };

        var pipes = stackalloc int[4];
        if (Spawn.Pipe2(pipes, Libc.O_CLOEXEC) != 0)
            return Failed($"could not be started: pipe2: {ErrnoTable.Name(Libc.LastErrno)}");
        if (Spawn.Pipe2(pipes + 2, Libc.O_CLOEXEC) != 0)
        {
            var errno = Libc.LastErrno;
            Libc.Close(pipes[0]);
            Libc.Close(pipes[1]);
            return Failed($"could not be started: pipe2: {ErrnoTable.Name(errno)}");
        }
        int stdoutRead = pipes[0], stdoutWrite = pipes[1], stderrRead = pipes[2], stderrWrite = pipes[3];

        var rc = SpawnChild(command, stdoutWrite, stderrWrite, out var pid);
        // The child has its copies (or there is no child): the write ends must go, or EOF never comes.
        Libc.Close(stdoutWrite);
        Libc.Close(stderrWrite);
        if (rc != 0)
        {
            Libc.Close(stdoutRead);
            Libc.Close(stderrRead);
            return Failed($"could not be started: {ErrnoTable.Name(rc)} ({Describe(rc)})");
        }
        try
        {
            started?.Invoke(pid);
        }
        catch (Exception)
        {
            // Recording the start is best effort; the run goes on.
        }

        var pidfd = Spawn.PidfdOpen(pid);
        var wake = new WakeSignal();
        var wakeOnStop = stop.Register(wake.Signal);
        var stdout = new LineSplitter(false, output);
        var stderr = new LineSplitter(true, output);
        bool stdoutOpen = true, stderrOpen = true, exited = false, exitHandled = false, killed = false, timedOut = false, interrupted = false;
        TimeSpan exitedAt = default, terminateAt = default, grace = default;
        var terminating = false;
        var buffer = new byte[16 * 1024];
        var fds = stackalloc Libc.PollFd[4];
        var kinds = stackalloc int[4];
        try
        {
            while (true)
            {
                var now = clock.Elapsed;
                if (!exited && !interrupted && stop.IsCancellationRequested)
                {
                    interrupted = true;
                    if (!terminating)
                    {
                        terminating = true;
                        terminateAt = now;
                        grace = stopGrace;
                        SignalGroup(pid, Spawn.SIGTERM);
                    }
                }
                if (!exited && !terminating && now >= command.Timeout)
                {
                    timedOut = terminating = true;
                    terminateAt = now;
                    grace = command.KillGrace;
                    SignalGroup(pid, Spawn.SIGTERM);
                }
                if (terminating && !killed && now >= terminateAt + grace)
                {
                    killed = true;
                    SignalGroup(pid, Spawn.SIGKILL);
                }
                if (exited && ((!stdoutOpen && !stderrOpen) || now >= exitedAt + Drain))
                    break;
                if (killed && !exited && now >= terminateAt + grace + Unkillable)
                    break;

                var wait = TimeSpan.MaxValue;
                if (!exited && !terminating)
                    wait = Min(wait, command.Timeout - now);
                if (terminating && !killed)
                    wait = Min(wait, terminateAt + grace - now);
                if (killed && !exited)
                    wait = Min(wait, terminateAt + grace + Unkillable - now);
                if (exited)
                    wait = Min(wait, exitedAt + Drain - now);
                if (pidfd < 0 && !exited)
                    wait = Min(wait, TimeSpan.FromMilliseconds(100)); // no pidfd: look again soon
                var timeoutMs = wait == TimeSpan.MaxValue ? -1 : (int)Math.Clamp(Math.Ceiling(wait.TotalMilliseconds), 0, int.MaxValue);

                var n = 0;
                if (stdoutOpen) { fds[n] = new Libc.PollFd { Fd = stdoutRead, Events = Libc.POLLIN }; kinds[n++] = 0; }
                if (stderrOpen) { fds[n] = new Libc.PollFd { Fd = stderrRead, Events = Libc.POLLIN }; kinds[n++] = 1; }
                if (!exited && pidfd >= 0) { fds[n] = new Libc.PollFd { Fd = pidfd, Events = Libc.POLLIN }; kinds[n++] = 2; }
                if (!interrupted) { fds[n] = wake.PollFd; kinds[n++] = 3; }
                var ready = Libc.Poll(fds, (nuint)n, timeoutMs);
                if (ready < 0 && Libc.LastErrno != Libc.EINTR)
                    throw new IOException($"poll: {ErrnoTable.Name(Libc.LastErrno)}");
                for (var i = 0; i < n && ready > 0; i++)
                {
                    if (fds[i].REvents == 0)
                        continue;
                    switch (kinds[i])
                    {
                        case 0:
                            stdoutOpen = ReadInto(stdoutRead, buffer, stdout);
                            break;
                        case 1:
                            stderrOpen = ReadInto(stderrRead, buffer, stderr);
                            break;
                        case 2:
                            exited = true;
                            break;
                        default:
                            wake.Drain();
                            break;
                    }
                }
                if (!exited && pidfd < 0)
                    exited = IsZombie(pid);
                if (exited && !exitHandled)
                {
                    exitHandled = true;
                    exitedAt = clock.Elapsed;
                    // What the hook left behind in its group is ended with it.
                    SignalGroup(pid, Spawn.SIGTERM);
                }
            }
            // Still unreaped, so the group id is still ours: anything left in it goes now.
            SignalGroup(pid, Spawn.SIGKILL);
        }
        finally
        {
            stdout.Flush();
            stderr.Flush();
            Libc.Close(stdoutRead);
            Libc.Close(stderrRead);
            if (pidfd >= 0)
                Libc.Close(pidfd);
            wakeOnStop.Dispose(); // waits for a callback in progress: the eventfd must outlive it
            wake.Dispose();
        }

        var duration = clock.Elapsed;
        var outputBytes = stdout.Bytes + stderr.Bytes;
        var outputLines = stdout.Lines + stderr.Lines;
        if (!exited)
        {
            // Stuck in uninterruptible sleep even after SIGKILL: reap it whenever it goes.
            new Thread(() => Reap(pid)) { IsBackground = true, Name = "hook reaper" }.Start();
            return new HookOutcome
            {
                Result = timedOut ? HookOutcome.TimedOut : HookOutcome.Failure,
                Detail = $"did not exit {Unkillable.TotalSeconds:0} s after SIGKILL (stuck in the kernel, uninterruptible I/O?)",
                Signal = "SIGKILL", Started = startedAt, Duration = duration, OutputBytes = outputBytes, OutputLines = outputLines,
                Interrupted = interrupted, Pid = pid,
            };
        }
        var status = Reap(pid);
        int? exitCode = Spawn.Exited(status) ? Spawn.ExitCode(status) : null;
        string? signal = Spawn.Signaled(status) ? Spawn.SignalName(Spawn.TermSignal(status)) : null;
        string result, detail;
        var how = exitCode is { } code ? $"exited with {code}" : $"ended by {signal}";
        if (interrupted)
        {
            result = HookOutcome.Failure;
            detail = $"stopped with ErrorWatch ({how}); it runs again at the next start";
        }
        else if (timedOut)
        {
            result = HookOutcome.TimedOut;
            detail = $"still running at the {SystemdValues.FormatTimeSpan(command.Timeout)} timeout: SIGTERM to its process group"
                + (killed ? $", SIGKILL after {SystemdValues.FormatTimeSpan(command.KillGrace)}" : "") + $"; {how}";
        }
        else
        {
            result = exitCode == 0 ? HookOutcome.Success : HookOutcome.Failure;
            detail = how;
        }
        return new HookOutcome
        {
            Result = result, Detail = detail, ExitCode = exitCode, Signal = signal, Started = startedAt, Duration = duration,
            OutputBytes = outputBytes, OutputLines = outputLines, Interrupted = interrupted, Pid = pid,
        };
    }

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static string Describe(int errno)
    {
        ErrnoTable.TryGet(errno, out _, out var text);
        return errno == Libc.ENOENT ? "no such file, or its #! interpreter is missing"
            : errno == 8 ? "not an executable and no #! line" : text;
    }

    /// <summary>The group's id is the hook's pid (POSIX_SPAWN_SETPGROUP with 0). ESRCH (nothing left) is fine.</summary>
    private static void SignalGroup(int pid, int signal) => Spawn.Kill(-pid, signal);

    private static int Reap(int pid)
    {
        int status;
        while (true)
        {
            var rc = Spawn.WaitPid(pid, &status, 0);
            if (rc == pid)
                return status;
            if (rc < 0 && Libc.LastErrno == Libc.EINTR)
                continue;
            return 0;
        }
    }

    /// <summary>Without a pidfd: /proc/PID/stat says Z once the process exited and waits to be reaped.</summary>
    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var close = stat.LastIndexOf(')');
            return close > 0 && close + 2 < stat.Length && stat[close + 2] == 'Z';
        }
        catch (IOException)
        {
            return true;
        }
    }

    /// <summary>Reads what is there; false at EOF (or an error), when the pipe is done.</summary>
    private static bool ReadInto(int fd, byte[] buffer, LineSplitter lines)
    {
        fixed (byte* p = buffer)
        {
            while (true)
            {
                var n = Libc.Read(fd, p, buffer.Length);
                if (n > 0)
                {
                    lines.Feed(buffer.AsSpan(0, (int)n));
                    return true;
                }
                if (n < 0 && Libc.LastErrno == Libc.EINTR)
                    continue;
                return false;
            }
        }
    }

    private static int SpawnChild(HookCommand command, int stdoutWrite, int stderrWrite, out int pid)
    {
        pid = 0;
        using var path = new NativeStrings([Encoding.UTF8.GetBytes(command.Executable)]);
        using var argv = new NativeStrings(command.Arguments);
        using var envp = new NativeStrings(command.Environment);
        var actions = NativeMemory.AlignedAlloc(Spawn.FileActionsSize, 16);
        var attr = NativeMemory.AlignedAlloc(Spawn.AttrSize, 16);
        var mask = NativeMemory.AlignedAlloc(Spawn.SigsetSize, 16);
        var defaults = NativeMemory.AlignedAlloc(Spawn.SigsetSize, 16);
        var actionsReady = false;
        var attrReady = false;
        try
        {
            int rc;
            if ((rc = Spawn.FileActionsInit(actions)) != 0)
                return rc;
            actionsReady = true;
            if ((rc = Spawn.FileActionsAddOpen(actions, 0, "/dev/null", Libc.O_RDONLY, 0)) != 0
                || (rc = Spawn.FileActionsAddDup2(actions, stdoutWrite, 1)) != 0
                || (rc = Spawn.FileActionsAddDup2(actions, stderrWrite, 2)) != 0
                || (rc = Spawn.FileActionsAddChdir(actions, "/")) != 0)
                return rc;
            try
            {
                // No descriptor of the daemon (fanotify groups, the store) may reach a hook, CLOEXEC or not.
                if ((rc = Spawn.FileActionsAddCloseFrom(actions, 3)) != 0)
                    return rc;
            }
            catch (EntryPointNotFoundException)
            {
                // glibc before 2.34: every descriptor ErrorWatch opens is O_CLOEXEC already.
            }
            if ((rc = Spawn.AttrInit(attr)) != 0)
                return rc;
            attrReady = true;
            Spawn.SigEmptySet(mask);
            Spawn.SigFillSet(defaults);
            // .NET ignores SIGPIPE and blocks signals on its threads; ignored signals would survive execve.
            if ((rc = Spawn.AttrSetFlags(attr, Spawn.POSIX_SPAWN_SETPGROUP | Spawn.POSIX_SPAWN_SETSIGMASK | Spawn.POSIX_SPAWN_SETSIGDEF)) != 0
                || (rc = Spawn.AttrSetPgroup(attr, 0)) != 0
                || (rc = Spawn.AttrSetSigmask(attr, mask)) != 0
                || (rc = Spawn.AttrSetSigdefault(attr, defaults)) != 0)
                return rc;
            int child;
            rc = Spawn.PosixSpawn(&child, path.Pointers[0], actions, attr, argv.Pointers, envp.Pointers);
            pid = child;
            return rc;
        }
        finally
        {
            if (actionsReady)
                Spawn.FileActionsDestroy(actions);
            if (attrReady)
                Spawn.AttrDestroy(attr);
            NativeMemory.AlignedFree(actions);
            NativeMemory.AlignedFree(attr);
            NativeMemory.AlignedFree(mask);
            NativeMemory.AlignedFree(defaults);
        }
    }

    /// <summary>A NULL-terminated array of NUL-terminated byte strings in one native block.</summary>
    private sealed class NativeStrings : IDisposable
    {
        private readonly byte* _block;

        public NativeStrings(IReadOnlyList<byte[]> items)
        {
            var pointerBytes = (items.Count + 1) * sizeof(byte*);
            var total = pointerBytes + items.Sum(i => i.Length + 1);
            _block = (byte*)NativeMemory.AllocZeroed((nuint)total);
            Pointers = (byte**)_block;
            var text = _block + pointerBytes;
            for (var i = 0; i < items.Count; i++)
            {
                Pointers[i] = text;
                items[i].CopyTo(new Span<byte>(text, items[i].Length));
                text += items[i].Length + 1;
            }
            Pointers[items.Count] = null;
        }

        public byte** Pointers { get; }

        public void Dispose() => NativeMemory.Free(_block);
    }

    /// <summary>Cuts a stream into lines as it arrives; a line longer than <see cref="MaxLineBytes"/> is passed on in pieces.</summary>
    private sealed class LineSplitter(bool stderr, Action<HookOutputLine> output)
    {
        private readonly byte[] _line = new byte[MaxLineBytes];
        private int _length;

        public long Bytes { get; private set; }
        public long Lines { get; private set; }

        public void Feed(ReadOnlySpan<byte> data)
        {
            Bytes += data.Length;
            while (!data.IsEmpty)
            {
                var newline = data.IndexOf((byte)'\n');
                var take = newline < 0 ? data.Length : newline;
                var room = MaxLineBytes - _length;
                if (take > room)
                {
                    data[..room].CopyTo(_line.AsSpan(_length));
                    _length = MaxLineBytes;
                    Emit();
                    data = data[room..];
                    continue;
                }
                data[..take].CopyTo(_line.AsSpan(_length));
                _length += take;
                if (newline < 0)
                    return;
                Emit();
                data = data[(newline + 1)..];
            }
        }

        public void Flush()
        {
            if (_length > 0)
                Emit();
        }

        private void Emit()
        {
            Lines++;
            var text = _line.AsSpan(0, _length).ToArray();
            _length = 0;
            try
            {
                output(new HookOutputLine(stderr, text));
            }
            catch (Exception)
            {
                // Whoever takes the output must not stop the hook from being waited for.
            }
        }
    }
}
