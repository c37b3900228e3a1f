using System.Collections.Concurrent;
using System.CommandLine;
using System.Runtime.InteropServices;
using ErrorWatch.Cli.Demo;
using ErrorWatch.Daemon;
using ErrorWatch.Decoding;
using ErrorWatch.Modules;
using ErrorWatch.Publishing;
using ErrorWatch.Reports;
using ErrorWatch.Watching;
using Serilog.Events;

namespace ErrorWatch.Cli;

/// <summary>
/// errorwatch demo: the whole pipeline on scratch filesystems of its own. Creates ext4 and XFS
/// images in a temporary directory, loop-mounts them, watches only them, breaks the ext4 one in
/// six ways and the XFS one in two, and shows each report as it arrives. Cleans up even when interrupted.
/// </summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var command = new Command("demo", "Show ErrorWatch at work on scratch loop-mounted ext4 and XFS filesystems (root)")
        {
            RunCommand.Output, RunCommand.LogLevel,
        };
        command.SetAction(parse => Execute(parse.GetValue(RunCommand.Output)!, SettingOptions.ValueOf(parse, Configuration.SettingKeys.LogLevel)));
        return command;
    }

    private static int Execute(string output, LogEventLevel level)
    {
        if (ScratchFilesystem.Unavailable() is { } why)
        {
            Console.Error.WriteLine($"errorwatch demo: cannot run here: {why}. The demo makes its own loop-mounted filesystems and never touches yours.");
            return 2;
        }
        if (!Tool.Exists("debugfs"))
        {
            Console.Error.WriteLine("errorwatch demo: debugfs (e2fsprogs) is not installed");
            return 2;
        }

        using var interrupted = new CancellationTokenSource();
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, ctx => { ctx.Cancel = true; interrupted.Cancel(); });
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, ctx => { ctx.Cancel = true; interrupted.Cancel(); });

        var log = Logging.Create(level == LogEventLevel.Information ? LogEventLevel.Warning : level);
        var dir = Directory.CreateTempSubdirectory("errorwatch-demo-").FullName;
        ScratchFilesystem? ext4 = null, xfs = null;
        try
        {
            Say($"Creating scratch filesystems in {dir}");
            // no_prefetch_block_bitmaps: the block group error below happens when the demo writes, not at mount.
            ext4 = ScratchFilesystem.Create(dir, "ext4", "ext4", 64, ["-L", "ew-demo", "-O", "metadata_csum"], "errors=continue,no_prefetch_block_bitmaps", root =>
            {
                Directory.CreateDirectory(Path.Combine(root, "projects"));
                Directory.CreateDirectory(Path.Combine(root, "projects", "broken-extents"));
                Directory.CreateDirectory(Path.Combine(root, "projects", "reports"));
                for (var i = 0; i < 4; i++)
                    File.WriteAllText(Path.Combine(root, "projects", "reports", $"q{i}.txt"), "numbers");
                Directory.CreateDirectory(Path.Combine(root, "photos"));
                File.WriteAllText(Path.Combine(root, "photos", "cat.jpg"), "not really a cat");
            });
            var brokenExtents = Inode(Path.Combine(ext4.MountPoint, "projects", "broken-extents"));
            var badChecksum = Inode(Path.Combine(ext4.MountPoint, "photos"));
            ext4.CorruptOffline(
                $"sif <{brokenExtents}> block[0] 0",      // zero the extent header magic
                $"sif <{badChecksum}> checksum 0x1234",   // wrong inode checksum (metadata_csum)
                "zap_block -f /projects/reports -p 0x41 0",  // overwrite a directory block
                "set_bg 0 free_blocks_count 100",           // descriptor disagrees with the block bitmap
                "set_bg 0 checksum calc");
            Say($"  ext4 {ext4.LoopDevice} at {ext4.MountPoint} (errors=continue, metadata_csum)");

            if (ScratchFilesystem.Unavailable("xfs") is null)
            {
                xfs = ScratchFilesystem.Create(dir, "xfs", "xfs", 320, ["-L", "ew-demo-xfs"], "", root =>
                {
                    Directory.CreateDirectory(Path.Combine(root, "mail"));
                    for (var i = 0; i < 200; i++)
                        File.WriteAllText(Path.Combine(root, "mail", $"message-with-a-long-name-{i:D4}"), "");
                });
                xfs.Unmount();
                // Break the directory's first data block (magic zeroed; xfs_db rewrites the CRC).
                Tool.Check("xfs_db", "-x", "-c", "path /mail", "-c", "dblock 0", "-c", "write -d dhdr.hdr.magic 0", xfs.Image);
                xfs.Mount("");
                Say($"  xfs  {xfs.LoopDevice} at {xfs.MountPoint}");
            }
            else
            {
                Say("  (mkfs.xfs not installed: XFS part skipped)");
            }

            var reports = new BlockingCollection<CorruptionReport>();
            var sinks = new List<IReportSink> { new CallbackSink(reports.Add) };
            sinks.Add(output == "json" ? new JsonLinesSink(Console.OpenStandardOutput()) : new TextSink(Console.Out));
            var include = new List<string> { ext4.MountPoint };
            if (xfs is not null)
                include.Add(xfs.MountPoint);
            using var daemon = new ErrorWatchDaemon(
                // The demo's filesystems are new and thrown away: keep their baseline with them, not in /var/lib.
                new DaemonOptions { Watch = new WatchOptions { Include = include }, StateDirectory = Path.Combine(Path.GetDirectoryName(ext4.Image)!, "state") },
                FilesystemModules.CreateDefault(), sinks, log);
            var capabilities = daemon.Start();
            Say("");
            Console.Out.Write(capabilities.ToText());
            Say("");
            using var stopDaemon = new CancellationTokenSource();
            var running = daemon.RunAsync(stopDaemon.Token);
            var baseline = ext4.ErrorsCount;
            ulong reported = 0;

            // After each injection, wait until the reports account for the growth of errors_count.
            void Settle()
            {
                var deadline = DateTime.UtcNow.AddSeconds(5);
                while ((ext4.ErrorsCount - baseline != reported || reported == 0) && DateTime.UtcNow < deadline)
                {
                    if (reports.TryTake(out var report, 100, interrupted.Token))
                        reported += Ext4Count(report);
                }
                while (reports.TryTake(out var late, 300, interrupted.Token))
                    reported += Ext4Count(late);
            }

            ulong Ext4Count(CorruptionReport report) => report.Filesystem.Device == ext4.LoopDevice ? report.Error.Count : 0;

            // XFS before 7.0 announces nothing: its health bits are the facts, read when the kernel log calls for a look.
            void XfsStep(string what, Action inject, Func<CorruptionReport, bool> expected)
            {
                interrupted.Token.ThrowIfCancellationRequested();
                Say($"-- {what}");
                inject();
                var deadline = DateTime.UtcNow.AddSeconds(10);
                while (DateTime.UtcNow < deadline)
                {
                    if (reports.TryTake(out var report, 100, interrupted.Token) && expected(report))
                        break;
                }
                while (reports.TryTake(out _, 300, interrupted.Token))
                {
                }
            }

            void Step(string what, Action inject)
            {
                interrupted.Token.ThrowIfCancellationRequested();
                Say($"-- {what}");
                inject();
                Settle();
            }

            Step("trigger_fs_error three times on the ext4 filesystem (whole filesystem, EUCLEAN)", () =>
            {
                for (var i = 0; i < 3; i++)
                    ext4.TriggerFsError("errorwatch demo");
            });
            Step("list a directory whose extent header was zeroed (inode error, EUCLEAN)", () =>
                Tool.Run("ls", Path.Combine(ext4.MountPoint, "projects", "broken-extents")));
            Step("stat a file in a directory whose inode checksum is wrong (EBADMSG = EFSBADCRC)", () =>
                Tool.Run("stat", Path.Combine(ext4.MountPoint, "photos", "cat.jpg")));
            Step("list a directory whose data block was overwritten (checksum failure; the inode is intact, so the path is found)", () =>
                Tool.Run("ls", Path.Combine(ext4.MountPoint, "projects", "reports")));
            Step("write a file where the block group descriptor disagrees with its bitmap (counted by ext4, never announced through fanotify: ext4-sysfs)", () =>
            {
                using var file = File.Create(Path.Combine(ext4.MountPoint, "new-photo.jpg"));
                file.Write(new byte[256 * 1024]);
                file.Flush(flushToDisk: true);
            });
            Step("mount -o remount,abort (ESHUTDOWN, then the read-only state: ext4-state)", () => ext4.Remount("abort"));
            if (xfs is not null)
            {
                XfsStep("list an XFS directory whose first block is corrupt (the inode's sick bits: xfs-health)",
                    () => Tool.Run("ls", Path.Combine(xfs.MountPoint, "mail")),
                    r => r.Source == ReportSource.XfsHealth);
                XfsStep("shut the XFS filesystem down (xfs_io -x -c shutdown: a forced-shutdown report)",
                    xfs.ShutDown,
                    r => r.Category == ErrorCategory.Shutdown);
            }

            var grown = ext4.ErrorsCount - baseline;
            Say("");
            Say($"ext4 errors_count grew by {grown}; ErrorWatch reported {reported} error(s) {(grown == reported ? "- every error accounted for" : "- MISMATCH")}");
            if (xfs is not null)
                Say("XFS announces errors through fanotify only from Linux 7.0; before that ErrorWatch reads XFS's own health bits (xfs-health).");
            stopDaemon.Cancel();
            running.GetAwaiter().GetResult();
            return grown == reported ? 0 : 1;
        }
        catch (OperationCanceledException)
        {
            Say("Interrupted; cleaning up.");
            return 130;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"errorwatch demo failed: {e.Message}");
            return 1;
        }
        finally
        {
            xfs?.Dispose();
            ext4?.Dispose();
            try
            {
                // The state (store, baseline) holds no mount: recursive there only. The scratch
                // directory itself goes only when empty, so a mount left behind is never walked into.
                var state = Path.Combine(dir, "state");
                if (Directory.Exists(state))
                    Directory.Delete(state, recursive: true);
                Directory.Delete(dir, recursive: false);
                Say($"Removed the scratch filesystems and {dir}.");
            }
            catch (IOException e)
            {
                Console.Error.WriteLine($"errorwatch demo: could not remove {dir}: {e.Message}");
            }
        }
    }

    private static ulong Inode(string path) => ulong.Parse(Tool.Check("stat", "-c", "%i", path).Trim());

    private static void Say(string line)
    {
        Console.Out.WriteLine(line);
        Console.Out.Flush();
    }
}
