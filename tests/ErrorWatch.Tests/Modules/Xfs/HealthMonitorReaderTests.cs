using System.Buffers.Binary;
using ErrorWatch.Modules.Xfs;

namespace ErrorWatch.Tests.Modules.Xfs;

/// <summary>
/// Synthetic: Linux 7.0 ABI, this machine runs 6.18. Records are built by hand from the layout of
/// struct xfs_health_monitor_event (kernel-abi.md §7.5; v7 series numbering, to verify against 7.0).
/// </summary>
public class HealthMonitorReaderTests
{
    private const ulong TimeNs = 1_767_225_600_123_456_789; // 2026-01-01T00:00:00.123456789Z

    /// <summary>One 64-byte record; <paramref name="union"/> writes the 32-byte union at offset 16.</summary>
    internal static byte[] Record(uint domain, uint type, ulong timeNs = TimeNs, Action<Span<byte>>? union = null, ulong pad0 = 0, ulong pad1 = 0)
    {
        var r = new byte[HealthMonitorReader.RecordSize];
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(0), domain);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(4), type);
        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(8), timeNs);
        union?.Invoke(r.AsSpan(16, 32));
        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(48), pad0);
        BinaryPrimitives.WriteUInt64LittleEndian(r.AsSpan(56), pad1);
        return r;
    }

    private static Action<Span<byte>> U32At(int offset, uint value) => e => BinaryPrimitives.WriteUInt32LittleEndian(e.Slice(offset), value);

    private static HealthMonitorEvent Single(byte[] record)
    {
        var reader = new HealthMonitorReader(record);
        Assert.True(reader.TryRead(out var ev));
        Assert.False(reader.TryRead(out _));
        Assert.True(reader.AtEnd);
        Assert.False(reader.Error.IsError);
        return ev;
    }

    private static List<HealthMonitorEvent> ReadAll(byte[] buffer, out HealthMonitorParseError error, out HealthMonitorParseError warning)
    {
        var events = new List<HealthMonitorEvent>();
        var reader = new HealthMonitorReader(buffer);
        while (reader.TryRead(out var ev))
            events.Add(ev);
        error = reader.Error;
        warning = reader.Warning;
        return events;
    }

    // ---- every domain -----------------------------------------------------------------------

    [Fact]
    public void Mount_running_carries_nothing_but_time()
    {
        var ev = Single(Record(0, 0));

        Assert.Equal(HealthDomain.Mount, ev.Domain);
        Assert.Equal(HealthEventType.Running, ev.Type);
        Assert.Equal(TimeNs, ev.TimeNs);
        Assert.Equal(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero).AddTicks(1_234_567), ev.Time);
        Assert.Null(ev.LostCount);
        Assert.Null(ev.Mask);
        Assert.Null(ev.Inode);
        Assert.Null(ev.ShutdownReasons);
        Assert.Equal("health monitor running", ev.Describe());
    }

    [Fact]
    public void Mount_lost_decodes_the_count()
    {
        var ev = Single(Record(0, 1, union: e => BinaryPrimitives.WriteUInt64LittleEndian(e, 0x1_0000_0005)));

        Assert.Equal(HealthEventType.Lost, ev.Type);
        Assert.Equal(0x1_0000_0005UL, ev.LostCount);
        Assert.Equal("4294967301 health events lost", ev.Describe());
    }

    [Fact]
    public void Mount_unmount()
    {
        var ev = Single(Record(0, 2));

        Assert.Equal(HealthEventType.Unmount, ev.Type);
        Assert.Equal("filesystem unmounted", ev.Describe());
    }

    [Fact]
    public void Mount_shutdown_names_every_reason()
    {
        var ev = Single(Record(0, 6, union: U32At(0, (1u << 1) | (1u << 4))));

        Assert.Equal(HealthEventType.Shutdown, ev.Type);
        Assert.Equal(0x12u, ev.ShutdownReasons);
        Assert.Equal(["log I/O error", "corrupt on-disk metadata"], ev.ShutdownReasonNames);
        Assert.Equal("shutdown: log I/O error, corrupt on-disk metadata", ev.Describe());
    }

    [Fact]
    public void Shutdown_reason_bits_all_have_names_and_unknown_ones_are_numbered()
    {
        var ev = Single(Record(0, 6, union: U32At(0, 0x3fu | (1u << 9))));

        Assert.Equal(
            ["metadata I/O error", "log I/O error", "forced unmount", "corrupt in-memory metadata",
             "corrupt on-disk metadata", "device removed", "bit 9"],
            ev.ShutdownReasonNames);
    }

    [Fact]
    public void Filesystem_domain_decodes_the_mask()
    {
        var ev = Single(Record(1, 3, union: U32At(0, 1u << 0)));

        Assert.Equal(HealthDomain.Filesystem, ev.Domain);
        Assert.Equal(HealthEventType.Sick, ev.Type);
        Assert.Equal(1u, ev.Mask);
        Assert.Null(ev.Group);
        Assert.Equal("filesystem: summary counters sick", ev.Describe());
    }

    [Fact]
    public void Ag_domain_decodes_mask_and_group()
    {
        var ev = Single(Record(2, 4, union: e => { U32At(0, (1u << 6) | (1u << 7))(e); U32At(4, 3)(e); }));

        Assert.Equal(HealthDomain.Group, ev.Domain);
        Assert.Equal(HealthEventType.Corrupt, ev.Type);
        Assert.Equal(0xc0u, ev.Mask);
        Assert.Equal(3u, ev.Group);
        Assert.Equal(["inobt", "finobt"], ev.Structures.Select(s => s.Id));
        Assert.Equal("AG 3: inode btree, free inode btree corrupt", ev.Describe());
    }

    [Fact]
    public void Inode_domain_decodes_mask_generation_and_inode()
    {
        var ev = Single(Record(3, 4, union: e =>
        {
            U32At(0, 1u << 4)(e);
            U32At(4, 7)(e);
            BinaryPrimitives.WriteUInt64LittleEndian(e.Slice(8), 131);
        }));

        Assert.Equal(HealthDomain.Inode, ev.Domain);
        Assert.Equal(0x10u, ev.Mask);
        Assert.Equal(7u, ev.Generation);
        Assert.Equal(131UL, ev.Inode);
        Assert.Equal("inode 131 gen 7: directory corrupt", ev.Describe());
    }

    [Fact]
    public void Realtime_group_domain_uses_rtgroup_names()
    {
        var ev = Single(Record(4, 5, union: e => { U32At(0, 1u << 1)(e); U32At(4, 2)(e); }));

        Assert.Equal(HealthDomain.RealtimeGroup, ev.Domain);
        Assert.Equal(HealthEventType.Healthy, ev.Type);
        Assert.Equal(2u, ev.Group);
        Assert.Equal("realtime group 2: realtime bitmap healthy", ev.Describe());
    }

    [Theory]
    [InlineData(5u, HealthDomain.DataDevice, "media error at sector 4096, 8 sectors")]
    [InlineData(6u, HealthDomain.RealtimeDevice, "realtime device media error at sector 4096, 8 sectors")]
    [InlineData(7u, HealthDomain.LogDevice, "log device media error at sector 4096, 8 sectors")]
    public void Device_domains_decode_media_errors(uint domain, HealthDomain expected, string text)
    {
        var ev = Single(Record(domain, 7, union: e =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(e, 4096);
            BinaryPrimitives.WriteUInt64LittleEndian(e.Slice(8), 8);
        }));

        Assert.Equal(expected, ev.Domain);
        Assert.Equal(HealthEventType.MediaError, ev.Type);
        Assert.Equal(4096UL, ev.MediaDaddr);
        Assert.Equal(8UL, ev.MediaSectors);
        Assert.Null(ev.Inode);
        Assert.Equal(text, ev.Describe());
    }

    [Theory]
    [InlineData(8u, HealthEventType.BufferedRead, "inode 131 gen 7: buffered read failed, bytes 4096+8192: EIO")]
    [InlineData(9u, HealthEventType.BufferedWrite, "inode 131 gen 7: buffered write failed, bytes 4096+8192: EIO")]
    [InlineData(10u, HealthEventType.DirectRead, "inode 131 gen 7: direct read failed, bytes 4096+8192: EIO")]
    [InlineData(11u, HealthEventType.DirectWrite, "inode 131 gen 7: direct write failed, bytes 4096+8192: EIO")]
    [InlineData(12u, HealthEventType.DataLost, "inode 131 gen 7: data lost to a media error, bytes 4096+8192")]
    public void File_range_domain_decodes_every_type(uint type, HealthEventType expected, string text)
    {
        var ev = Single(Record(8, type, union: e =>
        {
            BinaryPrimitives.WriteUInt64LittleEndian(e, 4096);
            BinaryPrimitives.WriteUInt64LittleEndian(e.Slice(8), 8192);
            BinaryPrimitives.WriteUInt64LittleEndian(e.Slice(16), 131);
            U32At(24, 7)(e);
            U32At(28, 5)(e); // EIO, positive
        }));

        Assert.Equal(HealthDomain.FileRange, ev.Domain);
        Assert.Equal(expected, ev.Type);
        Assert.Equal(4096UL, ev.FilePosition);
        Assert.Equal(8192UL, ev.FileLength);
        Assert.Equal(131UL, ev.Inode);
        Assert.Equal(7u, ev.Generation);
        Assert.Equal(5, ev.FileError);
        Assert.Equal(text, ev.Describe());
    }

    [Fact]
    public void Every_known_type_has_its_v7_number()
    {
        // The numbering this code assumes, in one place to compare with the 7.0 header.
        Assert.Equal(
            [0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 10u, 11u, 12u],
            Enum.GetValues<HealthEventType>().Select(t => (uint)t));
        Assert.Equal([0u, 1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u], Enum.GetValues<HealthDomain>().Select(d => (uint)d));
    }

    [Fact]
    public void Several_records_in_one_buffer_are_read_in_order()
    {
        var buffer = Record(0, 0).Concat(Record(3, 3, union: e => BinaryPrimitives.WriteUInt64LittleEndian(e.Slice(8), 200)))
            .Concat(Record(0, 2)).ToArray();

        var events = ReadAll(buffer, out var error, out var warning);

        Assert.Equal([HealthEventType.Running, HealthEventType.Sick, HealthEventType.Unmount], events.Select(e => e.Type));
        Assert.Equal(200UL, events[1].Inode);
        Assert.False(error.IsError);
        Assert.False(warning.IsError);
    }

    // ---- malformed and unknown ----------------------------------------------------------------

    [Theory]
    [InlineData(1)]
    [InlineData(16)]
    [InlineData(63)]
    public void Partial_record_stops_with_its_offset(int trailing)
    {
        var buffer = Record(0, 0).Concat(Record(0, 2).AsSpan(0, trailing).ToArray()).ToArray();

        var events = ReadAll(buffer, out var error, out _);

        Assert.Single(events);
        Assert.Equal(HealthMonitorProblem.TruncatedRecord, error.Problem);
        Assert.Equal(64, error.Offset);
        Assert.Equal(trailing, error.Value);
        Assert.Contains("offset 64", error.ToString());
    }

    [Fact]
    public void Buffer_shorter_than_a_record_fails_at_offset_zero()
    {
        var reader = new HealthMonitorReader(new byte[40]);

        Assert.False(reader.TryRead(out _));
        Assert.Equal(new HealthMonitorParseError(0, HealthMonitorProblem.TruncatedRecord, 40), reader.Error);
        Assert.False(reader.TryRead(out _)); // stays stopped
    }

    [Fact]
    public void Empty_buffer_is_no_error()
    {
        var reader = new HealthMonitorReader([]);

        Assert.False(reader.TryRead(out _));
        Assert.False(reader.Error.IsError);
        Assert.True(reader.AtEnd);
    }

    [Fact]
    public void Unknown_domain_is_kept_raw_and_decodes_nothing()
    {
        var ev = Single(Record(42, 3, union: e => e.Fill(0xab)));

        Assert.Equal(42u, (uint)ev.Domain);
        Assert.False(ev.IsKnownDomain);
        Assert.Null(ev.Mask);
        Assert.Null(ev.Inode);
        Assert.Null(ev.MediaDaddr);
        Assert.Equal("unknown health event: domain 42, type sick", ev.Describe());
    }

    [Fact]
    public void Unknown_type_is_kept_raw()
    {
        var ev = Single(Record(3, 99, union: e => { U32At(0, 1u << 4)(e); BinaryPrimitives.WriteUInt64LittleEndian(e.Slice(8), 131); }));

        Assert.Equal(99u, (uint)ev.Type);
        Assert.False(ev.IsKnownType);
        Assert.Equal(131UL, ev.Inode); // the domain still says how to read the union
        Assert.Equal("inode 131 gen 0: directory unknown type 99", ev.Describe());

        var mount = Single(Record(0, 77));
        Assert.Equal(77u, (uint)mount.Type);
        Assert.Equal("filesystem: unknown type 77", mount.Describe());
    }

    [Fact]
    public void Non_zero_pad_is_reported_with_its_offset_and_the_record_still_decoded()
    {
        var buffer = Record(0, 0).Concat(Record(3, 3, union: U32At(0, 1u << 4), pad1: 0x8000)).Concat(Record(0, 2, pad0: 1)).ToArray();

        var events = ReadAll(buffer, out var error, out var warning);

        Assert.Equal(3, events.Count);
        Assert.False(error.IsError);
        Assert.Equal(new HealthMonitorParseError(64, HealthMonitorProblem.NonZeroPad, 0x8000), warning); // the first one
        Assert.False(events[0].PadNonZero);
        Assert.True(events[1].PadNonZero);
        Assert.True(events[2].PadNonZero);
        Assert.Equal(0x10u, events[1].Mask);
    }

    [Fact]
    public void Largest_time_decodes_without_throwing()
    {
        var ev = Single(Record(0, 0, timeNs: ulong.MaxValue));

        Assert.Equal(ulong.MaxValue, ev.TimeNs);
        Assert.Equal(2554, ev.Time.Year);
    }

    [Fact]
    public void Random_bytes_of_random_lengths_never_throw()
    {
        var random = new Random(20260101);
        for (var round = 0; round < 5000; round++)
        {
            var buffer = new byte[random.Next(0, 64 * 6)];
            random.NextBytes(buffer);
            // Mostly small domain/type numbers so that every decoder branch runs on garbage too.
            for (var at = 0; at + 8 <= buffer.Length && random.Next(4) != 0; at += 64)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(at), (uint)random.Next(0, 11));
                BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(at + 4), (uint)random.Next(0, 15));
            }

            var events = ReadAll(buffer, out var error, out _);

            Assert.Equal(buffer.Length / 64, events.Count);
            Assert.Equal(buffer.Length % 64 != 0, error.IsError);
            foreach (var ev in events)
            {
                Assert.NotNull(ev.Describe());
                Assert.NotNull(ev.ShutdownReasonNames);
                Assert.NotNull(ev.Structures);
            }
        }
    }
}
