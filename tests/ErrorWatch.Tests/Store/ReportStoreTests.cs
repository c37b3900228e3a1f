using System.Collections.Immutable;
using System.Text.Json;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Reports;
using ErrorWatch.Store;
using ErrorWatch.Publishing;

namespace ErrorWatch.Tests.Store;

[Collection(TimingCollection.Name)]
public sealed class ReportStoreTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("errorwatch-store-").FullName;

    public void Dispose() => Directory.Delete(_state, recursive: true);

    internal static CorruptionReport Report(int n, string device = "/dev/sdb1", DateTimeOffset? time = null, FsPath? path = null) => new()
    {
        Id = Guid.CreateVersion7(time ?? DateTimeOffset.UtcNow).ToString(),
        Time = time ?? DateTimeOffset.UtcNow,
        Host = "test",
        Source = "fanotify",
        Category = ErrorCategory.Corruption,
        Severity = Severity.Critical,
        Filesystem = new FilesystemInfo { Device = device, MajorMinor = new DeviceNumber(8, 17), Type = "ext4", Uuid = Guid.Parse("6b1a2f4e-0a39-4e4c-9d76-4f1c2a0b7e11"), Mountpoints = [FsPath.FromString("/srv")], Fsid = "0" },
        Error = new ErrorInfo { Errno = 117, RawErrno = 117, Name = "EUCLEAN", Description = "", Meaning = "", Count = (ulong)n },
        Object = new ObjectInfo { Inode = (ulong)n, WholeFilesystem = false, Path = path },
        Decoder = "ext4",
    };

    private List<JsonElement> ReadAll(out IReadOnlyList<string> problems)
    {
        var all = new List<JsonElement>();
        problems = StoredReports.Query(_state, new ReportQuery(), (in StoredRecord r) =>
        {
            all.Add(JsonDocument.Parse(r.Json.ToArray()).RootElement.Clone());
            return true;
        }).Problems;
        return all;
    }

    private string OnlySegment() => Assert.Single(Directory.GetFiles(Path.Combine(_state, ReportStore.DirectoryName), "*.log"));

    [Fact]
    public void Damage_found_when_the_daemon_starts_is_named_once_not_again_by_the_totals_read_after_the_open()
    {
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
            for (var i = 0; i < 3; i++)
                store.Append(Report(i));
        var segment = OnlySegment();
        var bytes = File.ReadAllBytes(segment);
        var second = StoreRecord.HeaderSize + BitConverter.ToInt32(bytes, 4) + StoreRecord.HeaderSize + 10;
        bytes[second] ^= 0x20;
        File.WriteAllBytes(segment, bytes);

        var log = new Recovery.LogCapture();
        // The daemon's order: the store opens, then the ledger reads it for the totals.
        using var reopened = ReportStore.Open(_state, new StoreOptions(), log.Logger);
        _ = new FilesystemLedger(_state, log.Logger);
        Assert.Single(log.Messages(Serilog.Events.LogEventLevel.Warning), m => m.Contains("damaged record"));
        Assert.Single(reopened.Problems, p => p.Contains("damaged record"));
    }

    [Fact]
    public void A_batch_read_starts_at_its_position_stops_at_the_bound_and_the_count_and_crosses_segments()
    {
        var ends = new List<StorePosition>();
        using var store = ReportStore.Open(_state, new StoreOptions { SegmentRecords = 3 }, Serilog.Core.Logger.None);
        var start = store.End!.Value;
        for (var i = 0; i < 8; i++)
            ends.Add(store.Append(Report(i))!.Value);

        // In batches of 2 up to the 7th record's end: every record once, in order, the 8th not yet.
        var seen = new List<ulong>();
        var at = start;
        var problems = new List<string>();
        for (var calls = 0; calls < 10; calls++)
        {
            var batch = new List<StorePosition>();
            var next = StoredReports.ReadBatch(_state, at, ends[6], 2, (in StoredRecord r) =>
            {
                seen.Add(r.Report().Object.Inode!.Value);
                batch.Add(r.End);
                return true;
            }, problems);
            Assert.True(batch.Count <= 2);
            if (batch.Count > 0)
                Assert.Equal(batch[^1], next);
            at = next;
        }
        Assert.Empty(problems);
        Assert.Equal(Enumerable.Range(0, 7).Select(i => (ulong)i), seen);
        Assert.Equal(ends[6], at);

        // Retention took the first segment before it was read: named, and the reading goes on after it.
        File.Delete(Path.Combine(_state, ReportStore.DirectoryName, $"{start.Segment:D10}.log"));
        var after = new List<ulong>();
        StoredReports.ReadBatch(_state, ends[0], ends[7], 100, (in StoredRecord r) =>
        {
            after.Add(r.Report().Object.Inode!.Value);
            return true;
        }, problems);
        Assert.Equal([3UL, 4, 5, 6, 7], after);
        Assert.Contains(problems, p => p.Contains("removed by retention"));
    }

    [Fact]
    public void Reports_come_back_in_order_byte_exact_across_reopen()
    {
        var hostile = new FsPath([.. "/srv/a\nb"u8, 0xff]); // a newline and a byte that is not UTF-8
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
        {
            for (var i = 1; i <= 50; i++)
                store.Append(Report(i, path: i == 7 ? hostile : null));
            Assert.Equal(50, store.Count);
        }
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
        {
            Assert.Equal(50, store.Count);
            Assert.Empty(store.Problems);
            store.Append(Report(51));
        }
        var all = ReadAll(out var problems);
        Assert.Empty(problems);
        Assert.Equal(Enumerable.Range(1, 51).Select(i => (ulong)i), all.Select(r => r.GetProperty("error").GetProperty("count").GetUInt64()));
        var seventh = all[6].GetProperty("object");
        Assert.Equal("L3Nydi9hCmL/", seventh.GetProperty("path_base64").GetString()); // exact bytes, newline and 0xff included
    }

    [Fact]
    public void Appends_are_synced_on_the_timer_once_per_burst_and_not_by_the_appender()
    {
        var options = new StoreOptions { SyncInterval = TimeSpan.FromSeconds(1) };
        using var store = ReportStore.Open(_state, options, Serilog.Core.Logger.None);
        Assert.Equal(0, store.Syncs);
        // A first report long after the last sync (here: none yet) is synced at once, on the timer's thread.
        store.Append(Report(1));
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(5);
        while (store.Syncs == 0 && DateTime.UtcNow < deadline)
            Thread.Sleep(5);
        Assert.Equal(1, store.Syncs);

        // A burst within one interval is one more sync, SyncInterval after the first.
        var burst = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 2; i <= 40; i++)
            store.Append(Report(i));
        Assert.True(burst.Elapsed < TimeSpan.FromMilliseconds(800), $"the burst took {burst.Elapsed}");
        Assert.Equal(1, store.Syncs);
        while (store.Syncs == 1 && DateTime.UtcNow < deadline)
            Thread.Sleep(5);
        Assert.Equal(2, store.Syncs);
        Thread.Sleep(1500);
        Assert.Equal(2, store.Syncs); // nothing new appended: no further sync
    }

    [Fact]
    public void A_torn_last_record_is_named_and_cut_and_earlier_ones_survive()
    {
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
            for (var i = 1; i <= 5; i++)
                store.Append(Report(i));
        var segment = OnlySegment();
        var whole = new FileInfo(segment).Length;
        // What kill -9 inside write(2) leaves: the start of a record.
        var torn = StoreRecord.Encode(System.Text.Encoding.UTF8.GetBytes("{\"id\":\"x\",\"time\":\"2026-11-21T00:00:00Z\"}"))[..30];
        using (var f = new FileStream(segment, FileMode.Append))
            f.Write(torn);

        Assert.Equal(5, ReadAll(out var readerProblems).Count); // a reader skips it quietly: a write may be in progress
        Assert.Empty(readerProblems);
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
        {
            Assert.Contains(store.Problems, p => p.Contains("torn record"));
            Assert.Equal(whole, new FileInfo(segment).Length);
            store.Append(Report(6));
        }
        Assert.Equal(6, ReadAll(out _).Count);
    }

    [Fact]
    public void Damage_in_the_middle_costs_only_the_damaged_record()
    {
        using (var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None))
            for (var i = 1; i <= 5; i++)
                store.Append(Report(i));
        var segment = OnlySegment();
        var bytes = File.ReadAllBytes(segment);
        var second = bytes.AsSpan(StoreRecord.HeaderSize).IndexOf("EWR1"u8) + StoreRecord.HeaderSize;
        bytes[second + StoreRecord.HeaderSize + 10] ^= 0xff; // flip a byte inside record 2's JSON
        File.WriteAllBytes(segment, bytes);

        var all = ReadAll(out var problems);
        Assert.Equal(new ulong[] { 1, 3, 4, 5 }, all.Select(r => r.GetProperty("error").GetProperty("count").GetUInt64()));
        Assert.Contains(problems, p => p.Contains("checksum mismatch"));
    }

    [Fact]
    public void Garbage_files_never_throw()
    {
        var dir = Path.Combine(_state, ReportStore.DirectoryName);
        Directory.CreateDirectory(dir);
        var random = new Random(42);
        for (var n = 1; n <= 20; n++)
        {
            var junk = new byte[random.Next(0, 5000)];
            random.NextBytes(junk);
            if (n % 3 == 0 && junk.Length > 8)
                "EWR1"u8.CopyTo(junk.AsSpan(random.Next(0, junk.Length - 4)));
            File.WriteAllBytes(Path.Combine(dir, $"{n:D10}.log"), junk);
        }
        ReadAll(out _);
        using var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None);
        store.Append(Report(1));
        Assert.Contains(ReadAll(out _), r => r.GetProperty("error").GetProperty("count").GetUInt64() == 1);
    }

    [Fact]
    public void Retention_drops_whole_old_segments_by_count_and_age()
    {
        var options = new StoreOptions { SegmentRecords = 10, MaxReports = 25 };
        using (var store = ReportStore.Open(_state, options, Serilog.Core.Logger.None))
            for (var i = 1; i <= 60; i++)
                store.Append(Report(i));
        var kept = ReadAll(out _).Select(r => r.GetProperty("error").GetProperty("count").GetUInt64()).ToList();
        Assert.InRange(kept.Count, 20, 25); // never more than MaxReports; segments shrink to a tenth of it
        Assert.Equal(60UL, kept[^1]);
        Assert.Equal(Enumerable.Range(61 - kept.Count, kept.Count).Select(i => (ulong)i), kept); // the newest, contiguous

        Directory.Delete(Path.Combine(_state, ReportStore.DirectoryName), true);
        var old = DateTimeOffset.UtcNow.AddDays(-100);
        using (var store = ReportStore.Open(_state, new StoreOptions { SegmentRecords = 5, MaxAge = TimeSpan.FromDays(90) }, Serilog.Core.Logger.None))
        {
            for (var i = 1; i <= 10; i++)
                store.Append(Report(i, time: old));
            for (var i = 11; i <= 12; i++)
                store.Append(Report(i));
        }
        Assert.Equal(new ulong[] { 11, 12 }, ReadAll(out _).Select(r => r.GetProperty("error").GetProperty("count").GetUInt64()));
    }

    [Fact]
    public void A_second_writer_is_refused_with_the_reason()
    {
        using var first = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None);
        var e = Assert.Throws<StoreLockedException>(() => ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None));
        Assert.Contains("another ErrorWatch", e.Message);
    }

    [Theory]
    [InlineData("01a1fdd6-fa34-7ad0-96c4-e8e52e760982", true, false)]
    [InlineData("2026-11-21T10:00:00Z", false, true)]
    [InlineData("30min", false, true)]
    [InlineData("7d", false, true)]
    [InlineData("yesterday", false, false)]
    [InlineData("10x", false, false)]
    public void Since_takes_an_id_a_time_or_an_age(string since, bool isId, bool isTime)
    {
        var query = ReportQuery.WithSince(new ReportQuery(), since, DateTimeOffset.UtcNow, out var problem);
        if (!isId && !isTime)
        {
            Assert.Null(query);
            Assert.Contains(since, problem);
            return;
        }
        Assert.NotNull(query);
        Assert.Equal(isId, query.AfterId is not null);
        Assert.Equal(isTime, query.Since is not null);
    }

    /// <summary>Ten segments of five reports, an hour apart each segment, the first ten hours ago.</summary>
    private List<CorruptionReport> HoursOfReports(ReportStore store)
    {
        var start = DateTimeOffset.UtcNow.AddHours(-10);
        var reports = new List<CorruptionReport>();
        for (var i = 0; i < 50; i++)
        {
            var report = Report(i + 1, device: i % 2 == 0 ? "/dev/sdb1" : "/dev/sdc1", time: start.AddHours(i / 5).AddSeconds(i % 5));
            store.Append(report);
            reports.Add(report);
        }
        return reports;
    }

    /// <summary>Every record of segment <paramref name="number"/> but its first made unreadable: a read that goes there names damage.</summary>
    private void Damage(long number)
    {
        var path = Path.Combine(_state, ReportStore.DirectoryName, $"{number:D10}.log");
        var bytes = File.ReadAllBytes(path);
        var first = StoreRecord.HeaderSize + BitConverter.ToInt32(bytes, 4);
        for (var i = first; i < bytes.Length; i++)
            bytes[i] = 0x55;
        File.WriteAllBytes(path, bytes);
    }

    private List<string> Ids(ReportQuery query, out QueryResult result)
    {
        var ids = new List<string>();
        result = StoredReports.Query(_state, query, (in StoredRecord r) =>
        {
            ids.Add(r.Report().Id);
            return true;
        });
        return ids;
    }

    [Fact]
    public void A_report_is_found_by_id_reading_only_the_segments_its_time_allows()
    {
        using var store = ReportStore.Open(_state, new StoreOptions { SegmentRecords = 5 }, Serilog.Core.Logger.None);
        var reports = HoursOfReports(store);
        Assert.Equal(10, ReportStore.SegmentFiles(Path.Combine(_state, ReportStore.DirectoryName)).Count());
        // Segments 2 to 9 damaged: a whole-store scan would name them.
        for (var segment = 2; segment <= 9; segment++)
            Damage(segment);

        var problems = new List<string>();
        var found = StoredReports.Find(_state, reports[47].Id, problems);
        Assert.Equal(reports[47].Id, found?.Id);
        Assert.Equal(reports[47].Object.Inode, found!.Object.Inode);
        Assert.Equal(reports[1].Id, StoredReports.Find(_state, reports[1].Id, problems)?.Id);
        Assert.Empty(problems);

        // One in a damaged segment is not found, and the damage met is named.
        Assert.Null(StoredReports.Find(_state, reports[22].Id, problems));
        Assert.Contains(problems, p => p.Contains("0000000005.log") && p.Contains("damaged record"));
        Assert.DoesNotContain(problems, p => p.Contains("0000000002.log") || p.Contains("0000000009.log"));

        // An id of a time within the store that no report has: only the segment of that time is read.
        problems.Clear();
        Assert.Null(StoredReports.Find(_state, Guid.CreateVersion7(reports[45].Time.AddMinutes(30)).ToString(), problems));
        Assert.Empty(problems);
    }

    [Fact]
    public void Since_a_time_reads_from_the_segment_that_time_falls_in()
    {
        using var store = ReportStore.Open(_state, new StoreOptions { SegmentRecords = 5 }, Serilog.Core.Logger.None);
        var reports = HoursOfReports(store);
        for (var segment = 1; segment <= 6; segment++)
            Damage(segment);

        var since = reports[35].Time.AddMilliseconds(-1);
        var ids = Ids(new ReportQuery { Since = since }, out var result);
        Assert.Equal(reports.Skip(35).Select(r => r.Id), ids);
        Assert.Empty(result.Problems);
    }

    [Fact]
    public void After_an_id_means_stored_after_it_even_within_one_millisecond()
    {
        using var store = ReportStore.Open(_state, new StoreOptions { SegmentRecords = 3 }, Serilog.Core.Logger.None);
        var time = DateTimeOffset.UtcNow;
        // Two reports of one millisecond whose random id bits order them against the store's order.
        var millisecond = Guid.CreateVersion7(time).ToString()[..15];
        var first = Report(1, time: time) with { Id = millisecond + "fff-8000-000000000001" };
        var second = Report(2, time: time) with { Id = millisecond + "000-8000-000000000001" };
        first = first with { Time = StoredReports.IdTime(first.Id)!.Value };
        second = second with { Time = first.Time };
        store.Append(Report(0, time: first.Time.AddSeconds(-1)));
        store.Append(first);
        store.Append(second);
        store.Append(Report(3, time: first.Time.AddSeconds(1)));

        var ids = Ids(new ReportQuery { AfterId = first.Id }, out var result);
        Assert.True(result.AfterIdFound);
        Assert.Equal(2, ids.Count);
        Assert.Equal(second.Id, ids[0]);

        // An id the store no longer holds: the reports made after the time it carries.
        var gone = Guid.CreateVersion7(first.Time.AddMilliseconds(500)).ToString();
        ids = Ids(new ReportQuery { AfterId = gone }, out result);
        Assert.False(result.AfterIdFound);
        Assert.Single(ids);
    }

    [Fact]
    public void Per_filesystem_by_device_number_mount_point_label_or_uuid()
    {
        using var store = ReportStore.Open(_state, new StoreOptions(), Serilog.Core.Logger.None);
        var early = Report(1, time: DateTimeOffset.UtcNow.AddMinutes(-5));
        var late = Report(2, device: "/dev/sdc1") with { Filesystem = Report(2).Filesystem with { Device = "/dev/sdc1", Label = "data", MajorMinor = new DeviceNumber(8, 33) } };
        store.Append(early);
        store.Append(late);
        foreach (var name in new[] { "/dev/sdc1", "8:33", "data" })
            Assert.Equal([late.Id], Ids(new ReportQuery { Filesystem = name }, out _));
        Assert.Equal([early.Id, late.Id], Ids(new ReportQuery { Filesystem = "/srv" }, out _));
        Assert.Equal([early.Id, late.Id], Ids(new ReportQuery { Filesystem = "6b1a2f4e-0a39-4e4c-9d76-4f1c2a0b7e11" }, out _));
        Assert.Empty(Ids(new ReportQuery { Filesystem = "/home" }, out _));
        Assert.Equal([late.Id], Ids(new ReportQuery { Filesystem = "/srv", AfterId = early.Id }, out _));
    }

    [EndToEnd.LoopFact]
    public void A_full_state_filesystem_holds_reports_and_writes_them_in_order_once_space_returns()
    {
        using var tmpfs = new Faults.ScratchTmpfs("256k");
        using (var store = ReportStore.Open(tmpfs.Path, new StoreOptions(), Serilog.Core.Logger.None))
        {
            store.Append(Report(1));
            tmpfs.Fill();
            for (var i = 2; i <= 40; i++)
                store.Append(Report(i));
            Assert.Contains("ENOSPC", store.Failure);
            // The segment's last page had room for a few more records; everything after is held.
            Assert.InRange(store.HeldReports, 30, 39);
            tmpfs.Free();
            store.Append(Report(41));
            Assert.Null(store.Failure);
            Assert.Equal(0, store.HeldReports);
        }
        var all = ReadAllIn(tmpfs.Path, out var problems);
        Assert.Empty(problems); // a record the full disk took only part of was cut, not left as damage
        Assert.Equal(Enumerable.Range(1, 41).Select(i => (long)i), all.Select(r => r.GetProperty("error").GetProperty("count").GetInt64()));
    }

    [EndToEnd.LoopFact]
    public void Past_the_memory_backlog_reports_fold_per_filesystem_and_the_counts_still_add_up()
    {
        using var tmpfs = new Faults.ScratchTmpfs("256k");
        tmpfs.Fill();
        var options = new StoreOptions { MaxHeldBytes = 8 * 1024 };
        using (var store = ReportStore.Open(tmpfs.Path, options, Serilog.Core.Logger.None))
        {
            for (var i = 1; i <= 200; i++)
                store.Append(Report(i, device: i % 2 == 0 ? "/dev/sdb1" : "/dev/sdc1") with
                {
                    Filesystem = Report(i).Filesystem with { MajorMinor = new DeviceNumber(8, i % 2 == 0 ? 17u : 33u) },
                });
            Assert.Equal(200, store.HeldReports);
            tmpfs.Free();
            store.Append(Report(201));
        }
        var all = ReadAllIn(tmpfs.Path, out var problems);
        Assert.Empty(problems);
        Assert.Equal(Enumerable.Range(1, 201).Sum(i => (long)i), all.Sum(r => r.GetProperty("error").GetProperty("count").GetInt64()));
        var folded = all.Where(r => r.TryGetProperty("finding", out var f) && f.ValueKind == JsonValueKind.String && f.GetString()!.Contains("folded into this one")).ToList();
        Assert.Equal(2, folded.Count); // one per filesystem
        Assert.All(folded, r => Assert.Contains("ENOSPC", r.GetProperty("finding").GetString()));
        Assert.True(all.Count < 201, "some reports were folded");
    }

    [EndToEnd.LoopFact]
    public void A_read_only_state_directory_does_not_stop_the_store_and_a_retry_writes_once_it_is_writable()
    {
        using var tmpfs = new Faults.ScratchTmpfs("1m", readOnly: true);
        using var store = ReportStore.Open(tmpfs.Path, new StoreOptions { RetryInterval = TimeSpan.FromMilliseconds(100) }, Serilog.Core.Logger.None);
        Assert.Matches("EROFS|Read-only file system", store.Failure ?? "");
        for (var i = 1; i <= 5; i++)
            store.Append(Report(i));
        Assert.Equal(5, store.HeldReports);
        tmpfs.Remount(readOnly: false);
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (store.HeldReports > 0 && DateTime.UtcNow < deadline)
            Thread.Sleep(50);
        Assert.Equal(0, store.HeldReports); // the retry timer wrote them, no new report needed
        Assert.Equal(5, store.Count);
    }

    private static List<JsonElement> ReadAllIn(string state, out IReadOnlyList<string> problems)
    {
        var all = new List<JsonElement>();
        problems = StoredReports.Query(state, new ReportQuery(), (in StoredRecord r) =>
        {
            all.Add(JsonDocument.Parse(r.Json.ToArray()).RootElement.Clone());
            return true;
        }).Problems;
        return all;
    }
}
