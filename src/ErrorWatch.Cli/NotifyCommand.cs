using System.CommandLine;
using System.Runtime.InteropServices;
using ErrorWatch.Cli.Clients;
using ErrorWatch.Configuration;

namespace ErrorWatch.Cli;

/// <summary>
/// errorwatch notify: the user-session agent. Follows ReportAdded on the system bus and shows desktop
/// notifications on the session bus, at most one per filesystem per interval.
/// </summary>
internal static class NotifyCommand
{
    private static readonly Option<string> SystemBus = new("--bus")
    {
        Description = "The bus ErrorWatch is on: system (default; honours DBUS_SYSTEM_BUS_ADDRESS) or a bus address",
        DefaultValueFactory = _ => "system",
    };

    private static readonly Option<string> SessionBus = new("--session-bus")
    {
        Description = "The bus of the notification server: session (default: $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus) or a bus address",
        DefaultValueFactory = _ => "session",
    };

    private static readonly Option<string> Interval = new("--interval")
    {
        Description = "At most one notification per filesystem per interval (60s, 5min, 1h); reports inside it are counted into one 'N more errors' at its end",
        DefaultValueFactory = _ => "60s",
    };

    public static Command Create()
    {
        var command = new Command("notify", "Show desktop notifications for the service's reports (run it in your desktop session)")
        {
            SystemBus, SessionBus, Interval,
        };
        SystemBus.Validators.Add(r => StatusCommand.ValidateBus(r, "--bus"));
        SessionBus.Validators.Add(r => StatusCommand.ValidateBus(r, "--session-bus"));
        Interval.Validators.Add(result =>
        {
            if (result.Tokens.Count > 0 && ParseInterval(result.Tokens[^1].Value, out _) is { } problem)
                result.AddError(problem);
        });
        command.SetAction(parse => Execute(parse));
        return command;
    }

    internal static string? ParseInterval(string text, out TimeSpan interval)
    {
        if (!SystemdValues.TryParseTimeSpan(text, out interval, out var error))
            return $"--interval '{text}': {error}";
        if (interval < TimeSpan.FromMilliseconds(100) || interval > TimeSpan.FromDays(1))
            return $"--interval must be between 100ms and 1d, not {text}";
        return null;
    }

    private static int Execute(ParseResult parse)
    {
        ParseInterval(parse.GetValue(Interval)!, out var interval);
        var log = Logging.ForCommand("notify");
        var gate = new object();
        var throttle = new NotificationThrottle<AddedReport>(interval, TimeProvider.System);
        var notifier = new DesktopNotifier(parse.GetValue(SessionBus)!, log, (key, id) =>
        {
            lock (gate)
                throttle.Delivered(key, id);
        });
        Timer? timer = null;

        void Schedule(DateTimeOffset? next)
        {
            if (next is not { } due)
                return;
            // Never a busy loop, whatever the clocks say.
            var wait = due - DateTimeOffset.UtcNow;
            timer!.Change(wait < TimeSpan.FromMilliseconds(10) ? TimeSpan.FromMilliseconds(10) : wait, Timeout.InfiniteTimeSpan);
        }

        void ShowDue()
        {
            IReadOnlyList<ThrottledNotification<AddedReport>> due;
            lock (gate)
            {
                due = throttle.TakeDue();
                Schedule(throttle.NextDue);
            }
            foreach (var n in due)
                notifier.Show(n);
        }

        timer = new Timer(_ => ShowDue());
        var follower = new ReportFollower(parse.GetValue(SystemBus)!, log, report =>
        {
            ThrottledNotification<AddedReport>? now;
            lock (gate)
            {
                now = throttle.Offer(report.FilesystemKey, report, Math.Max(1, report.ErrorCount), DesktopNotification.IsCritical(report.Event));
                Schedule(throttle.NextDue);
            }
            if (now is not null)
                notifier.Show(now);
        });

        var stop = new ManualResetEventSlim();
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Set(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Set(); });
        log.Information("Notifications for {Bus} go to {Session}, at most one per filesystem every {Interval}",
            ErrorWatchClient.Describe(parse.GetValue(SystemBus)!), ErrorWatchClient.Describe(parse.GetValue(SessionBus)!), SystemdValues.FormatTimeSpan(interval));
        notifier.Start();
        follower.Start();
        stop.Wait();
        // Like watch: a loop thread still in a call does not hold up the exit.
        timer.Dispose();
        Parallel.Invoke(() => follower.Stop(TimeSpan.FromMilliseconds(500)), () => notifier.Stop(TimeSpan.FromMilliseconds(500)));
        return 0;
    }
}
