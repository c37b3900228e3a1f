using System.Diagnostics;
using System.Text;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Interop;

namespace ErrorWatch.Tests.Health;

/// <summary>
/// A fact that reads and writes the real /dev/kmsg: needs root (CAP_SYSLOG to read under
/// dmesg_restrict, write permission on the device) and printk_devkmsg not "off".
/// </summary>
public sealed class KmsgFactAttribute : FactAttribute
{
    public KmsgFactAttribute()
    {
        if (Libc.GetEuid() != 0)
            Skip = "needs root to read and write /dev/kmsg";
        else if (!File.Exists(KernelLogReader.DefaultPath))
            Skip = "no /dev/kmsg (container without it)";
        else if (File.Exists("/proc/sys/kernel/printk_devkmsg") && File.ReadAllText("/proc/sys/kernel/printk_devkmsg").Trim() == "off")
            Skip = "kernel.printk_devkmsg=off drops writes to /dev/kmsg";
    }
}

public class KernelLogReaderTests
{
    [Fact]
    public void MissingDevice_GivesAProblem_NotAnException()
    {
        using var reader = new KernelLogReader(KernelLogReader.StartAt.End, "/nonexistent/errorwatch-kmsg");

        Assert.False(reader.IsOpen);
        Assert.Equal(-1, reader.Fd);
        Assert.Contains("ENOENT", reader.Problem);
        Assert.Contains("does not exist", reader.Problem);
        Assert.Equal(0, reader.ReadAvailable(_ => Assert.Fail("no records from a closed reader")));
    }

    [Fact]
    public void A_masked_kmsg_that_opens_is_not_taken_for_the_kernel_log()
    {
        // What ProtectKernelLogs=yes leaves in a container: an empty regular file of mode 0 (root opens it with CAP_DAC_READ_SEARCH).
        var masked = Path.GetTempFileName();
        try
        {
            if (OperatingSystem.IsLinux())
                File.SetUnixFileMode(masked, UnixFileMode.None);
            using var reader = new KernelLogReader(KernelLogReader.StartAt.Beginning, masked);
            Assert.False(reader.IsOpen);
            Assert.Equal(-1, reader.Fd);
            Assert.Contains("is a regular file, not the kernel log device (char 1:11)", reader.Problem);
        }
        finally
        {
            File.Delete(masked);
        }
    }

    [KmsgFact]
    public void FakeXfsLine_WrittenByUserspace_ComesBackUntrusted()
    {
        var marker = $"errorwatch-test-{Guid.NewGuid():N}";
        using var reader = new KernelLogReader(KernelLogReader.StartAt.End);
        Assert.True(reader.IsOpen, reader.Problem);

        // "<4>" asks for level 4 and, by omission, facility 0 (kernel): the kernel must refuse the latter.
        WriteKmsg($"<4>XFS (loop99): Metadata corruption detected at x+0x1/0x2, xfs_dir3_data block 0x78 {marker}");
        var (facility, level, signal) = ReadBack(reader, marker);

        Assert.Equal(1, facility); // LOG_USER
        Assert.Equal(4, level);
        Assert.NotNull(signal);
        Assert.False(signal.IsTrusted);
        Assert.Equal("xfs", signal.FsType);
        Assert.Equal("loop99", signal.DeviceName);
        Assert.Equal(KernelLogKind.Corruption, signal.Kind);
        Assert.Equal(0x78ul, signal.Daddr);
        Assert.Equal(0, reader.Malformed);
        Assert.Null(reader.Problem);
    }

    [KmsgFact]
    public void PriorityTricks_CannotForgeKernelFacility()
    {
        using var reader = new KernelLogReader(KernelLogReader.StartAt.End);
        Assert.True(reader.IsOpen, reader.Problem);

        // <0>: facility 0 requested outright. <2048>: facility 256, which is 0 in the kernel's u8 field.
        // No prefix: default level, facility user.
        foreach (var (prefix, expectedLevel) in new[] { ("<0>", 0), ("<2048>", 0), ("<3>", 3), ("", -1) })
        {
            var marker = $"errorwatch-test-{Guid.NewGuid():N}";
            WriteKmsg($"{prefix}EXT4-fs (loop99): Remounting filesystem read-only {marker}");
            var (facility, level, signal) = ReadBack(reader, marker);

            Assert.Equal(1, facility);
            if (expectedLevel >= 0)
                Assert.Equal(expectedLevel, level);
            Assert.NotNull(signal);
            Assert.False(signal.IsTrusted);
        }
    }

    [KmsgFact]
    public void Beginning_ReadsOldRecords_InSequenceOrder_UpToTheLimit()
    {
        // Logged before the open: reading from the beginning must reach it.
        var marker = $"errorwatch-test-{Guid.NewGuid():N}";
        WriteKmsg($"<6>before the open {marker}");
        using var reader = new KernelLogReader(KernelLogReader.StartAt.Beginning);
        Assert.True(reader.IsOpen, reader.Problem);

        var sequences = new List<ulong>();
        var kernelRecords = 0;
        var sawMarker = false;
        void Seen(KmsgRecord record)
        {
            sequences.Add(record.Sequence);
            kernelRecords += record.IsFromKernel ? 1 : 0;
            sawMarker |= record.MessageText.EndsWith(marker, StringComparison.Ordinal);
        }
        var read = reader.ReadAvailable(Seen, maxRecords: 50);

        Assert.Equal(sequences.Count, read);
        Assert.InRange(read, 1, 50);
        Assert.Equal(sequences.Order(), sequences);
        Assert.Equal(sequences[^1], reader.LastSequence);

        // The rest of the ring, in order after the first batch. The kernel's own lines are somewhere in
        // it (boot, or a test run's loop devices and mounts); the oldest ones may all be lines earlier
        // tests wrote, so they are not looked for among the first 50 only.
        while (reader.ReadAvailable(Seen, maxRecords: 4096) > 0)
        {
        }
        Assert.Equal(sequences.Order(), sequences);
        Assert.True(sawMarker, "a line logged before the open was not read from the beginning");
        Assert.True(kernelRecords > 0, "no record from the kernel itself in the whole ring");
        Assert.Null(reader.Problem);
    }

    [KmsgFact]
    public void End_SkipsEverythingAlreadyLogged()
    {
        using var reader = new KernelLogReader(KernelLogReader.StartAt.End);
        Assert.True(reader.IsOpen, reader.Problem);

        var marker = $"errorwatch-test-{Guid.NewGuid():N}";
        WriteKmsg($"<6>first after seek {marker}");
        var messages = new List<string>();
        WaitReadable(reader);
        reader.ReadAvailable(record => messages.Add(record.MessageText));

        // Other processes may log in between, but nothing from before the open is read again.
        Assert.Contains(messages, m => m.Contains(marker, StringComparison.Ordinal));
        Assert.DoesNotContain(messages, m => m.StartsWith("Linux version", StringComparison.Ordinal));
    }

    private static (int Facility, int Level, KernelLogSignal? Signal) ReadBack(KernelLogReader reader, string marker)
    {
        var deadline = Stopwatch.StartNew();
        (int, int, KernelLogSignal?)? found = null;
        while (found is null && deadline.Elapsed < TimeSpan.FromSeconds(10))
        {
            WaitReadable(reader);
            reader.ReadAvailable(record =>
            {
                if (!record.MessageText.Contains(marker, StringComparison.Ordinal))
                    return;
                KernelLogLines.Default.TryMatch(record, out var signal);
                found = (record.Facility, record.Level, signal);
            });
        }
        Assert.True(found is not null, $"the line marked {marker} did not come back from /dev/kmsg (ratelimited?)");
        return found.Value;
    }

    private static unsafe void WaitReadable(KernelLogReader reader)
    {
        var pollFd = new Libc.PollFd { Fd = reader.Fd, Events = Libc.POLLIN };
        Libc.Poll(&pollFd, 1, 2000);
    }

    /// <summary>
    /// One write(2) is one record. It must end in a newline: the printk ring buffer keeps a record
    /// without one open for continuation, and readers only see it once the next record is logged.
    /// A fresh descriptor each time, since the write ratelimit is per open file.
    /// </summary>
    private static unsafe void WriteKmsg(string line)
    {
        var fd = Libc.Open(KernelLogReader.DefaultPath, Libc.O_WRONLY | Libc.O_CLOEXEC);
        Assert.True(fd >= 0, $"open /dev/kmsg for writing: errno {Libc.LastErrno}");
        using var owned = new FileDescriptor(fd);
        var bytes = Encoding.UTF8.GetBytes(line + "\n");
        fixed (byte* p = bytes)
            Assert.Equal(bytes.Length, (int)Libc.Write(fd, p, bytes.Length));
    }
}
