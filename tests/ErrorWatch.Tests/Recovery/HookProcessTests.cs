using System.Diagnostics;
using System.Text;
using ErrorWatch.Recovery;

namespace ErrorWatch.Tests.Recovery;

/// <summary>
/// HookProcess on real processes: execve without a shell, raw bytes in argv and envp, stdin from
/// /dev/null, cwd /, nothing inherited but 0-2, default signal dispositions, output line by line,
/// and the process group ended at the timeout (SIGTERM, then SIGKILL) and when the hook exits.
/// </summary>
[Collection(TimingCollection.Name)]
public sealed class HookProcessTests : IDisposable
{
    private readonly HookDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static HookCommand Command(string path, TimeSpan? timeout = null, TimeSpan? grace = null, IEnumerable<byte[]>? args = null, IEnumerable<byte[]>? env = null) => new()
    {
        Executable = path,
        Arguments = [Encoding.UTF8.GetBytes(path), .. args ?? []],
        Environment = [.. (env ?? [Encoding.UTF8.GetBytes("PATH=/usr/bin:/bin")])],
        Timeout = timeout ?? TimeSpan.FromSeconds(20),
        KillGrace = grace ?? TimeSpan.FromSeconds(2),
    };

    private static (HookOutcome Outcome, List<HookOutputLine> Lines) Run(HookCommand command, CancellationToken stop = default)
    {
        var lines = new List<HookOutputLine>();
        var outcome = HookProcess.Run(command, lines.Add, stop, TimeSpan.FromMilliseconds(300));
        return (outcome, lines);
    }

    private static string Text(HookOutputLine line) => Encoding.UTF8.GetString(line.Text);

    [Fact]
    public void Arguments_and_environment_reach_the_hook_byte_for_byte_without_a_shell()
    {
        var marker = Path.Combine(_dir.Path, "pwned");
        byte[] hostile = [.. "a\nb \"c\" 'd' $(touch "u8.ToArray(), .. Encoding.UTF8.GetBytes(marker), .. ") `touch "u8.ToArray(), .. Encoding.UTF8.GetBytes(marker), .. "` ; e\t"u8.ToArray(), 0xff, 0xfe, .. "\x1b[31m"u8.ToArray()];
        var hook = _dir.Write("all-args", $"""
            #!/bin/sh
            printf '%s' "$1" > '{_dir.Out}/arg1'
            printf '%s' "$ERRORWATCH_PATH" > '{_dir.Out}/env'
            env -0 > '{_dir.Out}/all'
            """);
        var (outcome, _) = Run(Command(hook, args: [hostile], env: [Encoding.UTF8.GetBytes("PATH=/usr/bin:/bin"), [.. "ERRORWATCH_PATH="u8.ToArray(), .. hostile]]));
        Assert.Equal(HookOutcome.Success, outcome.Result);
        Assert.Equal(hostile, File.ReadAllBytes(Path.Combine(_dir.Out, "arg1")));
        Assert.Equal(hostile, File.ReadAllBytes(Path.Combine(_dir.Out, "env")));
        var env = HookDirectory.ParseEnv(File.ReadAllBytes(Path.Combine(_dir.Out, "all")));
        // Exactly what was passed (the shell adds PWD, and SHLVL where it counts levels), nothing of ours.
        Assert.Equal(["ERRORWATCH_PATH", "PATH", "PWD"], env.Keys.Where(k => k != "SHLVL").Order(StringComparer.Ordinal));
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void Stdin_is_dev_null_the_directory_is_root_only_0_to_2_are_open_and_no_signal_is_ignored_or_blocked()
    {
        // Programs run directly (no shell in between, which would open and block things of its own).
        static List<string> Lines(string program, params string[] args)
        {
            var (outcome, lines) = Run(Command(program, args: args.Select(Encoding.UTF8.GetBytes)));
            Assert.Equal(HookOutcome.Success, outcome.Result);
            return lines.Select(Text).ToList();
        }
        Assert.Equal(["/"], Lines("/usr/bin/pwd"));
        Assert.Equal(["/dev/null"], Lines("/usr/bin/readlink", "/proc/self/fd/0"));
        Assert.Equal([], Lines("/usr/bin/cat"));
        // 0, 1, 2, and the directory ls itself opened to list them.
        Assert.Equal(["0", "1", "2", "3"], Lines("/usr/bin/ls", "/proc/self/fd"));
        var status = Lines("/usr/bin/grep", "-E", "^Sig(Blk|Ign):", "/proc/self/status");
        Assert.Contains("SigBlk:\t0000000000000000", status);
        // .NET ignores SIGPIPE; the hook must not inherit that (glibc keeps its two internal signals, 32 and 33, to itself).
        Assert.Equal(0UL, Convert.ToUInt64(status.Single(l => l.StartsWith("SigIgn:", StringComparison.Ordinal))[8..], 16) & 0x7fffffffUL);
    }

    [Fact]
    public void Output_is_read_line_by_line_from_both_streams_and_counted()
    {
        var hook = _dir.Write("all-output", """
            #!/bin/sh
            echo one
            echo two >&2
            printf 'no newline at the end'
            """);
        var (outcome, lines) = Run(Command(hook));
        Assert.Equal(HookOutcome.Success, outcome.Result);
        Assert.Equal("exited with 0", outcome.Detail);
        Assert.Contains(lines, l => !l.Stderr && Text(l) == "one");
        Assert.Contains(lines, l => l.Stderr && Text(l) == "two");
        Assert.Contains(lines, l => !l.Stderr && Text(l) == "no newline at the end");
        Assert.Equal(3, outcome.OutputLines);
        Assert.Equal(4 + 4 + 21, outcome.OutputBytes);
    }

    [Fact]
    public void A_long_line_comes_in_pieces_and_every_byte_is_counted()
    {
        var hook = _dir.Write("all-long", "#!/bin/sh\nhead -c 10000 /dev/zero | tr '\\0' x\necho\n");
        var (outcome, lines) = Run(Command(hook));
        Assert.Equal(10001, outcome.OutputBytes);
        Assert.Equal([4096, 4096, 1808], lines.Select(l => l.Text.Length));
    }

    [Fact]
    public void Exit_codes_signals_and_unstartable_files_are_outcomes()
    {
        var (failed, _) = Run(Command(_dir.Write("all-exit", "#!/bin/sh\nexit 3\n")));
        Assert.Equal((HookOutcome.Failure, 3, "exited with 3"), (failed.Result, failed.ExitCode!.Value, failed.Detail));

        var (signalled, _) = Run(Command(_dir.Write("all-abort", "#!/bin/sh\nkill -SEGV $$\n")));
        Assert.Equal(HookOutcome.Failure, signalled.Result);
        Assert.Equal("SIGSEGV", signalled.Signal);
        Assert.Null(signalled.ExitCode);

        // No #! line: execve says ENOEXEC, and nothing falls back to a shell.
        var (noShebang, _) = Run(Command(_dir.Write("all-noshebang", "touch /tmp/never\n")));
        Assert.Equal(HookOutcome.Failure, noShebang.Result);
        Assert.Contains("ENOEXEC", noShebang.Detail);

        var (missing, _) = Run(Command(Path.Combine(_dir.Hooks, "all-missing")));
        Assert.Contains("ENOENT", missing.Detail);
    }

    [Fact]
    public void A_hook_that_ignores_SIGTERM_is_killed_with_its_children_at_the_timeout()
    {
        var children = Path.Combine(_dir.Out, "children");
        var hook = _dir.Write("all-stubborn", $"""
            #!/bin/sh
            trap '' TERM
            sleep 600 &
            echo $! > '{children}'
            sh -c 'trap "" TERM; sleep 600' &
            echo $! >> '{children}'
            echo started
            while :; do sleep 1; done
            """);
        var clock = Stopwatch.StartNew();
        var (outcome, lines) = Run(Command(hook, timeout: TimeSpan.FromSeconds(1), grace: TimeSpan.FromSeconds(1)));
        var elapsed = clock.Elapsed;
        Assert.Equal(HookOutcome.TimedOut, outcome.Result);
        Assert.Equal("SIGKILL", outcome.Signal);
        Assert.Contains("SIGTERM to its process group, SIGKILL after 1s", outcome.Detail);
        Assert.True(elapsed >= TimeSpan.FromSeconds(2) && elapsed < TimeSpan.FromSeconds(6), $"took {elapsed}");
        Assert.Contains(lines, l => Text(l) == "started");
        var pids = File.ReadAllLines(children).Select(int.Parse).ToList();
        Assert.Equal(2, pids.Count);
        Assert.True(SpinWait.SpinUntil(() => pids.All(p => !OwnProcess.Alive(p)), TimeSpan.FromSeconds(5)), "a child of the hook survived");
    }

    [Fact]
    public void What_a_hook_leaves_running_in_its_group_is_ended_when_it_exits()
    {
        var child = Path.Combine(_dir.Out, "child");
        var hook = _dir.Write("all-leaver", $"""
            #!/bin/sh
            sleep 600 > /dev/null 2>&1 &
            echo $! > '{child}'
            exit 0
            """);
        var clock = Stopwatch.StartNew();
        var (outcome, _) = Run(Command(hook));
        Assert.Equal(HookOutcome.Success, outcome.Result);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
        var pid = int.Parse(File.ReadAllText(child).Trim());
        Assert.True(SpinWait.SpinUntil(() => !OwnProcess.Alive(pid), TimeSpan.FromSeconds(5)), "the hook's background child survived it");
    }

    [Fact]
    public void Stopping_ends_a_running_hook_quickly_and_says_it_was_interrupted()
    {
        var hook = _dir.Write("all-slow", "#!/bin/sh\nsleep 600\n");
        using var stop = new CancellationTokenSource();
        var clock = Stopwatch.StartNew();
        stop.CancelAfter(TimeSpan.FromMilliseconds(300));
        var (outcome, _) = Run(Command(hook), stop.Token);
        Assert.True(outcome.Interrupted);
        Assert.Equal("SIGTERM", outcome.Signal);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(2), $"took {clock.Elapsed}");
        Assert.Contains("runs again at the next start", outcome.Detail);
    }
}
