using System.Buffers.Binary;
using System.Text;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Health;
using ErrorWatch.Health.KernelLog;
using ErrorWatch.Kernel;
using ErrorWatch.Modules;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Reports;
using ErrorWatch.Tests.Kernel;
using ErrorWatch.Watching;
using static ErrorWatch.Tests.Decoding.TestEvents;

namespace ErrorWatch.Tests.Modules;

/// <summary>
/// A filesystem module defined here, outside ErrorWatch, registered like ext4's and XFS's (the shape
/// a btrfs module takes): its events, its health findings and its kernel log lines reach reports
/// through the same stages theirs do, and nothing but the registration names it.
/// </summary>
public sealed class ThirdModuleTests
{
    /// <summary>A made-up f_type no filesystem has ("TSTF").</summary>
    private const ulong TestMagic = 0x54535446;
    /// <summary>A handle type of its own (u64 object id, u32 generation), which the generic decoder cannot read.</summary>
    private const int TestHandleType = 0x77;
    /// <summary>An info record type only it sends.</summary>
    private const byte TestRecordType = 0xC9;

    private static readonly DeviceNumber Device = new(0, 77);
    private static readonly FilesystemId Fsid = new(0x7357, 0x7357);

    private static Superblock TestFs() => Make(Device, "testfs", TestMagic, "/dev/testfs0", Fsid, P("/srv/test"));

    private static byte[] Handle(ulong objectId, uint generation)
    {
        var handle = new byte[12];
        BinaryPrimitives.WriteUInt64LittleEndian(handle, objectId);
        BinaryPrimitives.WriteUInt32LittleEndian(handle.AsSpan(8), generation);
        return handle;
    }

    [Fact]
    public void Events_on_its_filesystem_are_decoded_by_it_into_reports()
    {
        var module = new TestModule();
        var modules = FilesystemModules.CreateDefault().Add(module);
        var sb = TestFs();
        var onFile = FsError(sb, EUCLEAN, count: 3, handleType: TestHandleType, handle: Handle(0x1_0000_0042, 9));
        var wholeFs = FsError(sb, EIO);

        // Without the module the generic decoder cannot read its handles: the module is what makes the difference.
        var without = Decoder().Decode(onFile);
        Assert.Equal("generic", without.Decoder);
        Assert.Null(without.Object.Inode);

        var decoder = Decoder(modules);
        var report = decoder.Decode(onFile);
        var whole = decoder.Decode(wholeFs);

        Assert.Same(module, modules.For(TestMagic));
        Assert.Equal("testfs", report.Decoder);
        Assert.Equal(ReportSource.Fanotify, report.Source);
        Assert.Equal(0x1_0000_0042ul, report.Object.Inode);
        Assert.Equal(9u, report.Object.Generation);
        Assert.Null(report.Object.HandleProblem);
        Assert.Equal("testfs: a tree block failed its check", report.Error.Meaning);
        Assert.Equal(ErrorCategory.Corruption, report.Category);
        Assert.Equal(Severity.Critical, report.Severity);
        Assert.Equal(3ul, report.Error.Count);
        Assert.Equal("testfs", report.Filesystem.Type);
        var details = Assert.IsType<ReportDetails>(report.Details["testfs"]);
        Assert.Equal("fanotify", details["seen_as"]);
        Assert.Equal("/dev/testfs0", details["device"]);

        Assert.Equal("testfs", whole.Decoder);
        Assert.True(whole.Object.WholeFilesystem);
        Assert.Equal("testfs: the device failed a read", whole.Error.Meaning);
        Assert.Equal(ErrorCategory.Io, whole.Category);
        Assert.Equal(2, module.TestDecoder.DetailsCalls);
    }

    [Fact]
    public void Its_own_info_records_are_decoded_by_it()
    {
        var modules = FilesystemModules.CreateDefault().Add(new TestModule());
        var sb = TestFs();
        var ev = Parse(sb, new EventBuilder()
            .Event()
            .Fid(sb.Fsid, TestHandleType, Handle(5, 1))
            .Error(EUCLEAN)
            .Record(TestRecordType, [0x2A, 0, 0, 0])
            .Build());

        var report = Decoder(modules).Decode(ev);
        // The same record on ext4 is nobody's: ext4's module has no decoder for it.
        var onExt4 = Decoder(modules).Decode(Parse(Decoding.TestEvents.Ext4(), new EventBuilder()
            .Event()
            .Fid(Ext4Fsid, EventBuilder.FileIdIno32Gen, EventBuilder.Ino32Gen(12, 3))
            .Error(EUCLEAN)
            .Record(TestRecordType, [0x2A, 0, 0, 0])
            .Build()));

        Assert.Equal(42L, Assert.IsType<ReportDetails>(report.Details["testfs"])["tree_level"]);
        Assert.Null(report.Details["unknown_records"]);
        Assert.Equal("ext4", onExt4.Decoder);
        Assert.NotNull(Assert.IsType<ReportDetails>(onExt4.Details["unknown_records"])[$"type_{TestRecordType}"]);
    }

    [Fact]
    public void Findings_of_its_health_source_become_reports_through_the_health_loop()
    {
        var module = new TestModule();
        var modules = FilesystemModules.CreateDefault().Add(module);
        var sb = TestFs();
        var watch = new SuperblockWatch(sb, null!);
        using var handOff = new EventHandOff();
        var watcher = new Watcher(handOff, Serilog.Core.Logger.None);
        var loop = new HealthLoop(new HealthOptions { KernelLog = false, CheckInterval = TimeSpan.FromHours(1) }, modules, watcher, handOff,
            HealthBaseline.InMemory(), Serilog.Core.Logger.None);
        try
        {
            loop.Add(watch);
            var source = Assert.Single(module.Sources);
            Assert.Same(watch, source.Context.Watch);
            Assert.Same(loop.Baseline, source.Context.Baseline);
            Assert.Contains($"/{Device}/", source.Context.Instance);
            Assert.Equal("testfs scrub counters", loop.Describe()[sb]);

            loop.Start();
            loop.Begin(watch);
            Assert.True(loop.WaitForFirstChecks(TimeSpan.FromSeconds(10)));
            var item = handOff.Take(TimeSpan.FromSeconds(10), CancellationToken.None, out var timedOut);
            Assert.False(timedOut);
            var finding = Assert.IsType<HealthFinding>(item!.Value.Finding);
            Assert.Equal([HealthTrigger.FirstWatch], source.Triggers);
            Assert.Equal(1, loop.Findings);

            // Decoded as the daemon decodes every finding: the module's decoder gives the meaning,
            // encodes the inode the source named as a handle, and adds its own details.
            var report = Decoder(modules).Decode(finding);
            Assert.Equal("testfs-scrub", report.Source);
            Assert.Equal("testfs", report.Decoder);
            Assert.Equal("the scrubber found 2 bad tree blocks", report.Finding);
            Assert.Equal(2ul, report.Error.Count);
            Assert.Equal(EUCLEAN, report.Error.Errno);
            Assert.Equal("testfs: a tree block failed its check", report.Error.Meaning);
            Assert.Equal(4242ul, report.Object.Inode);
            Assert.Equal(7u, report.Object.Generation);
            Assert.Equal(TestHandleType, report.Object.HandleType);
            Assert.Equal("extent tree", Assert.IsType<ReportDetails>(report.Details["testfs-scrub"])["tree"]);
            Assert.Equal("health", Assert.IsType<ReportDetails>(report.Details["testfs"])["seen_as"]);

            // Published as the daemon does after the outputs: the source hears of it, and a fanotify
            // report schedules a recheck, which finds nothing new.
            loop.Published(sb, report);
            Assert.Equal(2ul, source.Published);
            loop.Published(sb, Decoder(modules).Decode(FsError(sb, EIO)));
            Assert.Equal(3ul, source.Published);
            Assert.True(SpinWait.SpinUntil(() => source.Saw(HealthTrigger.FanotifyReport), TimeSpan.FromSeconds(10)));
            Assert.Equal(0, handOff.Count);
        }
        finally
        {
            loop.Stop(TimeSpan.FromSeconds(5));
            loop.Dispose();
        }
        // It asked for a last look at a stop, and got it; the loop disposed it on its way out.
        var stopped = Assert.Single(module.Sources);
        Assert.Equal(HealthTrigger.Stopping, stopped.Triggers[^1]);
        Assert.True(stopped.Disposed);
    }

    [Fact]
    public void Its_kernel_log_lines_are_read_by_its_dialect()
    {
        var matcher = new KernelLogMatcher(FilesystemModules.CreateDefault().Add(new TestModule()));

        var signal = Match(matcher, "TESTFS (testfs0): tree block 77 failed its check");
        Assert.NotNull(signal);
        Assert.Equal("testfs", signal.FsType);
        Assert.Equal("testfs0", signal.DeviceName);
        Assert.Equal(KernelLogKind.Corruption, signal.Kind);
        Assert.Equal(77ul, signal.Block);
        Assert.Null(Match(matcher, "TESTFS (testfs0): mounted"));
        // The shipped dialects are still asked beside it.
        Assert.Equal("ext4", Match(matcher, "EXT4-fs (loop0): Remounting filesystem read-only")!.FsType);
        // Without the module its lines are nobody's.
        Assert.Null(Match(new KernelLogMatcher(FilesystemModules.CreateDefault()), "TESTFS (testfs0): tree block 77 failed its check"));
    }

    private static KernelLogSignal? Match(KernelLogMatcher matcher, string message)
    {
        Assert.True(KmsgRecord.TryParse(Encoding.UTF8.GetBytes($"2,4711,123456789,-;{message}\n"), out var record, out var problem), problem);
        return matcher.TryMatch(record, out var signal) ? signal : null;
    }

    private sealed class TestModule : IFilesystemModule
    {
        public ulong Magic => TestMagic;
        public IReadOnlyList<string> TypeNames { get; } = ["testfs"];
        public TestDecoder TestDecoder { get; } = new();
        public IFilesystemDecoder Decoder => TestDecoder;
        public IKernelLogDialect KernelLog { get; } = new TestKernelLog();
        public List<TestHealth> Sources { get; } = new();

        public IInfoRecordDecoder? InfoRecord(byte recordType) => recordType == TestRecordType ? new TreeLevelRecord() : null;

        public IHealthSource CreateHealthSource(HealthSourceContext context)
        {
            var source = new TestHealth(context);
            Sources.Add(source);
            return source;
        }
    }

    private sealed class TestDecoder : IFilesystemDecoder
    {
        public int DetailsCalls;

        public string Name => "testfs";

        public FileObject DecodeHandle(int handleType, ReadOnlySpan<byte> handle) =>
            handleType == TestHandleType && handle.Length == 12
                ? new FileObject
                {
                    Inode = BinaryPrimitives.ReadUInt64LittleEndian(handle),
                    Generation = BinaryPrimitives.ReadUInt32LittleEndian(handle[8..]),
                    HandleType = handleType,
                    HandleHex = Convert.ToHexStringLower(handle),
                }
                : FileObject.WholeFilesystem;

        public (int Type, byte[] Handle)? EncodeHandle(ulong inode, uint? generation) =>
            generation is { } g ? (TestHandleType, Handle(inode, g)) : null;

        public ErrorMeaning DescribeError(int errno) => errno switch
        {
            EUCLEAN => ErrorMeaning.Generic(errno) with { Category = ErrorCategory.Corruption, Meaning = "testfs: a tree block failed its check" },
            EIO => ErrorMeaning.Generic(errno) with { Category = ErrorCategory.Io, Meaning = "testfs: the device failed a read" },
            _ => ErrorMeaning.Generic(errno),
        };

        public void AddDetails(DecodeContext context)
        {
            Interlocked.Increment(ref DetailsCalls);
            context.Details.Section(Name)
                .Set("seen_as", context.Event is not null ? "fanotify" : "health")
                .Set("device", context.Superblock.DevicePath);
        }
    }

    private sealed class TreeLevelRecord : IInfoRecordDecoder
    {
        public void Decode(DecodeContext context, byte recordType, ReadOnlySpan<byte> record) =>
            context.Details.Section("testfs").Set("tree_level", BinaryPrimitives.ReadUInt32LittleEndian(record[^4..]));
    }

    private sealed class TestHealth(HealthSourceContext context) : IHealthSource
    {
        private ulong _published;

        public HealthSourceContext Context { get; } = context;
        public List<HealthTrigger> Triggers { get; } = new();
        public ulong Published => Interlocked.Read(ref _published);
        public bool Disposed { get; private set; }

        public bool Saw(HealthTrigger trigger)
        {
            lock (Triggers)
                return Triggers.Contains(trigger);
        }
        public Superblock Superblock => Context.Watch.Superblock;
        public int PollFd => -1;
        public short PollEvents => 0;
        public bool CheckAtStop => true;

        public string Describe() => "testfs scrub counters";

        public bool OnReady(List<HealthFinding> findings) => false;

        public void Check(HealthTrigger trigger, List<HealthFinding> findings)
        {
            lock (Triggers)
                Triggers.Add(trigger);
            if (trigger != HealthTrigger.FirstWatch)
                return;
            findings.Add(new HealthFinding
            {
                Superblock = Superblock,
                Source = "testfs-scrub",
                Time = DateTimeOffset.UtcNow,
                Errno = EUCLEAN,
                Count = 2,
                What = "the scrubber found 2 bad tree blocks",
                Inode = 4242,
                Generation = 7,
                Details = new ReportDetails().Set("tree", "extent tree"),
                Trigger = trigger,
            });
        }

        public void Hint(in KernelLogSignal signal)
        {
        }

        void IHealthSource.Published(CorruptionReport report) => Interlocked.Add(ref _published, report.Error.Count);

        public void Dispose() => Disposed = true;
    }

    /// <summary>"TESTFS (dev): tree block N failed its check" is a corruption; anything else of its is chatter.</summary>
    private sealed class TestKernelLog : IKernelLogDialect
    {
        private const string Head = "TESTFS (";

        public bool Claims(ReadOnlySpan<byte> message) => message.StartsWith("TESTFS ("u8);

        public bool TryParse(string text, ref KernelLogLine line)
        {
            var close = text.IndexOf("): ", Head.Length, StringComparison.Ordinal);
            if (close < 0)
                return false;
            var rest = text.AsSpan(close + 3);
            if (!rest.StartsWith("tree block ", StringComparison.Ordinal))
                return false;
            line.Device = text[Head.Length..close];
            line.Kind = KernelLogKind.Corruption;
            line.Block = KernelLogText.DecimalPrefix(rest["tree block ".Length..]);
            return true;
        }
    }
}
