using System.CommandLine;
using System.Runtime.InteropServices;
using ErrorWatch.Bus;
using ErrorWatch.Cli.Clients;
using ErrorWatch.Store;

namespace ErrorWatch.Cli;

/// <summary>errorwatch watch (and list --live): every report the running service announces, as it announces it.</summary>
internal static class WatchCommand
{
    private static readonly Option<bool> Json = new("--json")
    {
        Description = "One JSON object per report and line, converted from the ReportAdded signal (schema: docs/report-schema.md; null fields are absent)",
    };

    private static readonly Option<string> Filesystem = new("--filesystem", "-f")
    {
        Description = "Only reports about this filesystem (device, major:minor, UUID, label or mount point)",
    };

    public static Command Create()
    {
        var command = new Command("watch", "Follow the running service's reports as they happen (ReportAdded), until Ctrl-C")
        {
            StatusCommand.Bus, Json, Filesystem,
        };
        command.SetAction(parse => Follow("watch", parse.GetValue(StatusCommand.Bus)!, parse.GetValue(Json), parse.GetValue(Filesystem)));
        return command;
    }

    /// <summary>
    /// Prints each ReportAdded until SIGINT or SIGTERM (exit 0). Exits 3 at once when the bus cannot be
    /// reached or the service is not on it; once following, it waits out both.
    /// </summary>
    public static int Follow(string command, string bus, bool json, string? filesystem)
    {
        var log = Logging.ForCommand(command);
        try
        {
            // A first look, so that a wrong bus or a stopped service is an answer, not a wait.
            using var probe = ErrorWatchClient.Connect(bus);
            probe.RequireService();
        }
        catch (ServiceUnavailableException e)
        {
            Console.Error.WriteLine($"errorwatch {command}: {e.Message}");
            return ServiceUnavailableException.ExitCode;
        }
        catch (BusException e)
        {
            Console.Error.WriteLine($"errorwatch {command}: {e.Message}");
            return 1;
        }

        var stdout = Console.OpenStandardOutput();
        var stop = new ManualResetEventSlim(); // never disposed: the loop thread may still set it as the process exits
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; stop.Set(); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; stop.Set(); });
        // Not disposed: its thread may still be in a call when the process exits, which ends it anyway.
        var follower = new ReportFollower(bus, log, report =>
        {
            if (filesystem is not null && !report.IsOn(filesystem))
                return;
            try
            {
                if (json)
                    stdout.Write(report.ToJson());
                else
                    stdout.Write(System.Text.Encoding.UTF8.GetBytes(ListCommand.TextLine(
                        report.Time ?? DateTimeOffset.UtcNow, report.Severity, report.Summary, report.Source, report.Id)));
                stdout.WriteByte((byte)'\n');
                stdout.Flush();
            }
            catch (IOException)
            {
                // Whoever read the output is gone (EPIPE): nothing left to do.
                stop.Set();
            }
        });
        follower.Start();
        stop.Wait();
        // The loop thread is told to stop and given a moment; exit 0 within a second either way.
        follower.Stop(TimeSpan.FromMilliseconds(500));
        return 0;
    }
}
