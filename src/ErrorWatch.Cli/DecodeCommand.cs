using System.CommandLine;
using System.Diagnostics;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Kernel;
using ErrorWatch.Modules;
using ErrorWatch.Publishing;

namespace ErrorWatch.Cli;

/// <summary>errorwatch decode FILE: decodes a raw fanotify read buffer offline, printing the same reports as run.</summary>
internal static class DecodeCommand
{
    private static readonly Argument<FileInfo> File = new("file") { Description = "Raw bytes as returned by read(2) on a fanotify group" };

    private static readonly Option<string> FsType = new("--fs-type")
    {
        Description = "Decoder to use: ext4, xfs, generic, or auto (XFS for 64-bit inode handles, else ext4)",
        DefaultValueFactory = _ => "auto",
    };

    public static Command Create()
    {
        var command = new Command("decode", "Decode a captured fanotify event buffer (e.g. shared/fixtures/fanotify/*.bin)")
        {
            File, FsType, RunCommand.Output,
        };
        command.SetAction(parse => Execute(parse.GetValue(File)!, parse.GetValue(FsType)!, parse.GetValue(RunCommand.Output)!));
        return command;
    }

    private static int Execute(FileInfo file, string fsType, string output)
    {
        byte[] buffer;
        try
        {
            buffer = System.IO.File.ReadAllBytes(file.FullName);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"errorwatch decode: cannot read {file.FullName}: {e.Message}");
            return 2;
        }

        var modules = FilesystemModules.CreateDefault();
        // No reader PID: the PID in a capture is another process's, whatever this one's happens to be.
        var decoder = new EventDecoder(modules, new PathResolver { Enabled = false, DisabledReason = "not resolved: decoded offline from a file" }, readerPid: null);
        IReportSink sink = output == "json" ? new JsonLinesSink(Console.OpenStandardOutput()) : new TextSink(Console.Out);
        var now = DateTimeOffset.UtcNow;
        var failed = false;

        var reader = new FanotifyEventReader(buffer);
        while (reader.TryRead(out var ev))
        {
            var records = ev.ReadRecords();
            var superblock = OfflineSuperblock(modules, file, fsType, records);
            FsErrorEvent fsEvent;
            if (ev.IsOverflow)
                fsEvent = FsErrorEvent.Lost(superblock, now, Stopwatch.GetTimestamp(), ev.Mask);
            else if (ev.IsFsError)
                fsEvent = FsErrorEvent.FromKernel(superblock, ev, records, now, Stopwatch.GetTimestamp());
            else
            {
                Console.Error.WriteLine($"{file.Name}: offset {ev.Offset}: not a FAN_FS_ERROR event (mask 0x{ev.Mask:x}{(records.HasMountId ? $", mount id 0x{records.MountId:x}" : "")}); skipped");
                continue;
            }
            if (records.Problem.IsError)
            {
                Console.Error.WriteLine($"{file.Name}: {records.Problem}");
                failed = true;
            }
            if (output != "none")
                sink.Publish(decoder.Decode(fsEvent));
        }
        if (reader.Error.IsError)
        {
            Console.Error.WriteLine($"{file.Name}: {reader.Error}");
            return 1;
        }
        return failed ? 1 : 0;
    }

    private static Superblock OfflineSuperblock(FilesystemModules modules, FileInfo file, string fsType, in EventRecords records)
    {
        var type = fsType == "auto"
            ? (records.HandleType & 0x80) != 0 && records.HandleType != Interop.Fanotify.FILEID_INVALID ? "xfs" : "ext4"
            : fsType;
        // The module serving that type; any other (generic) gets the fallback.
        var magic = modules.ForType(type)?.Magic ?? FilesystemModules.AnyFilesystem;
        return new Superblock(default, type, [])
        {
            Magic = magic,
            Fsid = records.Fsid,
            DevicePath = $"(decoded from {file.Name})",
        };
    }
}
