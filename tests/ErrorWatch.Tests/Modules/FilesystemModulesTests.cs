using System.Buffers.Binary;
using ErrorWatch.Decoding;
using ErrorWatch.Filesystems;
using ErrorWatch.Kernel;
using ErrorWatch.Modules;
using ErrorWatch.Modules.Ext4;
using ErrorWatch.Modules.Xfs;
using ErrorWatch.Reports;
using ErrorWatch.Tests.Kernel;
using ErrorWatch.Watching;
using static ErrorWatch.Tests.Decoding.TestEvents;

namespace ErrorWatch.Tests.Modules;

/// <summary>
/// The extensibility requirement: "A test registers a decoder from outside the core assembly and sees
/// it used". Everything registered here is defined in this test assembly. Info record type 200 plays
/// the filesystem-specific error blob of the original FAN_FS_ERROR proposal (kernel-abi.md §9);
/// unknown record types must be skipped by hdr.len (§2.2).
/// </summary>
public class FilesystemModulesTests
{
    private const byte VendorRecord = 200;

    /// <summary>The payload of the type-200 record: u32 version 2, u32 code 0xcafe.</summary>
    private static readonly byte[] Payload = [0x02, 0, 0, 0, 0xfe, 0xca, 0, 0];

    /// <summary>The whole record as it sits in the event: hdr { type 200, pad 0, len 12 } + payload.</summary>
    private static readonly byte[] RecordBytes = [VendorRecord, 0, 12, 0, 0x02, 0, 0, 0, 0xfe, 0xca, 0, 0];

    /// <summary>An IInfoRecordDecoder from outside the core: records every call, writes a details section.</summary>
    private sealed class VendorRecordDecoder(string section = "vendor") : IInfoRecordDecoder
    {
        public List<(ulong Magic, byte Type, byte[] Record)> Calls { get; } = new();

        public void Decode(DecodeContext context, byte recordType, ReadOnlySpan<byte> record)
        {
            Calls.Add((context.Superblock.Magic, recordType, record.ToArray()));
            var body = record[4..];
            context.Details.Section(section)
                .Set("version", BinaryPrimitives.ReadUInt32LittleEndian(body))
                .Set("code", $"0x{BinaryPrimitives.ReadUInt32LittleEndian(body[4..]):x}");
        }
    }

    private sealed class ThrowingRecordDecoder : IInfoRecordDecoder
    {
        public void Decode(DecodeContext context, byte recordType, ReadOnlySpan<byte> record) =>
            throw new InvalidOperationException("record decoder blew up");
    }

    /// <summary>
    /// A whole filesystem decoder from outside the core, for btrfs: FILEID_BTRFS_WITHOUT_PARENT (0x4d),
    /// 20 bytes = u64 objectid, u64 root objectid, u32 generation.
    /// </summary>
    private sealed class TestBtrfsDecoder : IFilesystemDecoder
    {
        public int DetailsCalls { get; private set; }

        public string Name => "test-btrfs";

        public FileObject DecodeHandle(int handleType, ReadOnlySpan<byte> handle)
        {
            if (handleType != 0x4d || handle.Length < 20)
                return FileObject.WholeFilesystem;
            return new FileObject
            {
                HandleType = handleType,
                HandleHex = Convert.ToHexStringLower(handle),
                Inode = BinaryPrimitives.ReadUInt64LittleEndian(handle),
                Generation = BinaryPrimitives.ReadUInt32LittleEndian(handle[16..]),
            };
        }

        public ErrorMeaning DescribeError(int errno) =>
            new(errno, "BTRFS_E" + errno, "btrfs test description", ErrorCategory.Corruption, "btrfs says the tree is broken");

        public void AddDetails(DecodeContext context)
        {
            DetailsCalls++;
            context.Details.Section(Name).Set("root_objectid", BinaryPrimitives.ReadUInt64LittleEndian(context.Event!.Handle.AsSpan(8)));
        }
    }

    private sealed class ThrowingDetailsDecoder : IFilesystemDecoder
    {
        public string Name => "fragile";
        public FileObject DecodeHandle(int handleType, ReadOnlySpan<byte> handle) => new GenericDecoder().DecodeHandle(handleType, handle);
        public ErrorMeaning DescribeError(int errno) => ErrorMeaning.Generic(errno);
        public void AddDetails(DecodeContext context) => throw new InvalidOperationException("sysfs went away");
    }

    private sealed class ThrowingHandleDecoder : IFilesystemDecoder
    {
        public string Name => "fragile-handle";
        public FileObject DecodeHandle(int handleType, ReadOnlySpan<byte> handle) => throw new IndexOutOfRangeException("short handle");
        public ErrorMeaning DescribeError(int errno) => ErrorMeaning.Generic(errno);
        public void AddDetails(DecodeContext context) { }
    }

    /// <summary>[FID] [ERROR] [type 200], the unknown record last.</summary>
    private static FsErrorEvent EventWithVendorRecord(Superblock sb, int handleType, byte[] handle, int errno = EUCLEAN) =>
        Parse(sb, new EventBuilder()
            .Event()
            .Fid(sb.Fsid, handleType, handle)
            .Error(errno, 2)
            .Record(VendorRecord, Payload)
            .Build());

    private static FsErrorEvent Ext4EventWithVendorRecord() =>
        EventWithVendorRecord(Decoding.TestEvents.Ext4(), EventBuilder.FileIdIno32Gen, EventBuilder.Ino32Gen(12, 3));

    private static FsErrorEvent XfsEventWithVendorRecord() =>
        EventWithVendorRecord(Decoding.TestEvents.Xfs(), EventBuilder.FileIdIno64Gen, EventBuilder.Ino64Gen(0x1_0000_0083, 3));

    private static ReportDetails Section(CorruptionReport report, string name) =>
        Assert.IsType<ReportDetails>(report.Details[name]);

    [Fact]
    public void VendorRecord_IsKeptByTheParserForDispatch()
    {
        var ev = Ext4EventWithVendorRecord();

        // The FID and ERROR records are still read although an unknown record follows.
        Assert.Equal(EUCLEAN, ev.Errno);
        Assert.Equal(2u, ev.Count);
        Assert.NotNull(ev.UnknownRecords);
        Assert.False(ev.Problem.IsError, ev.Problem.ToString());
    }

    [Fact]
    public void RecordDecoderForExt4_IsCalledWithTheExactRecordBytes()
    {
        var vendor = new VendorRecordDecoder();
        var registry = FilesystemModules.CreateDefault().RegisterRecord(Ext4Module.SuperMagic, VendorRecord, vendor);

        var report = Decoder(registry).Decode(Ext4EventWithVendorRecord());

        var call = Assert.Single(vendor.Calls);
        Assert.Equal(Ext4Module.SuperMagic, call.Magic);
        Assert.Equal(VendorRecord, call.Type);
        Assert.Equal(RecordBytes, call.Record);

        var details = Section(report, "vendor");
        Assert.Equal(2L, details["version"]);
        Assert.Equal("0xcafe", details["code"]);
        Assert.Null(report.Details["unknown_records"]); // handled, so not dumped as unknown

        // The rest of the report is untouched by the extra record.
        Assert.Equal("ext4", report.Decoder);
        Assert.Equal(12ul, report.Object.Inode);
        Assert.Equal(2ul, report.Error.Count);
        Assert.Null(report.ParseProblem);
    }

    [Fact]
    public void RecordDecoder_IsFoundWhereverTheRecordSitsInTheEvent()
    {
        // filesystem-monitoring.rst: record order is not guaranteed.
        var vendor = new VendorRecordDecoder();
        var registry = FilesystemModules.CreateDefault().RegisterRecord(Ext4Module.SuperMagic, VendorRecord, vendor);
        var sb = Decoding.TestEvents.Ext4();
        var ev = Parse(sb, new EventBuilder()
            .Event()
            .Record(VendorRecord, Payload)
            .Fid(sb.Fsid, EventBuilder.FileIdIno32Gen, EventBuilder.Ino32Gen(12, 3))
            .Error(EUCLEAN)
            .Build());

        var report = Decoder(registry).Decode(ev);

        Assert.Equal(RecordBytes, Assert.Single(vendor.Calls).Record);
        Assert.Equal(12ul, report.Object.Inode);
    }

    [Fact]
    public void RecordOnXfs_WithNoDecoderForXfs_LandsInUnknownRecordsAsHex()
    {
        var ext4Only = new VendorRecordDecoder();
        var registry = FilesystemModules.CreateDefault().RegisterRecord(Ext4Module.SuperMagic, VendorRecord, ext4Only);

        var report = Decoder(registry).Decode(XfsEventWithVendorRecord());

        Assert.Empty(ext4Only.Calls);
        var unknown = Section(report, "unknown_records");
        Assert.Equal("c8000c0002000000feca0000", unknown["type_200"]);
        Assert.Null(report.Details["vendor"]);
        Assert.Equal(0x1_0000_0083ul, report.Object.Inode);
    }

    [Fact]
    public void RegistryLookup_FallsBackOnlyWhereNothingIsRegistered()
    {
        var vendor = new VendorRecordDecoder();
        var registry = FilesystemModules.CreateDefault().RegisterRecord(Ext4Module.SuperMagic, VendorRecord, vendor);

        Assert.Same(vendor, registry.ForRecord(Ext4Module.SuperMagic, VendorRecord));
        Assert.Null(registry.ForRecord(XfsModule.SuperMagic, VendorRecord));
        Assert.Null(registry.ForRecord(Ext4Module.SuperMagic, (byte)(VendorRecord + 1)));
        Assert.IsType<Ext4Decoder>(registry.For(Ext4Module.SuperMagic).Decoder);
        Assert.IsType<XfsDecoder>(registry.For(XfsModule.SuperMagic).Decoder);
        Assert.Same(registry.Fallback, registry.For(BtrfsMagic));
        Assert.Equal("generic", registry.Fallback.Decoder.Name);
    }

    [Fact]
    public void RecordDecoderForAnyFilesystem_AppliesToEveryFilesystem()
    {
        var any = new VendorRecordDecoder();
        var registry = FilesystemModules.CreateDefault().RegisterRecord(FilesystemModules.AnyFilesystem, VendorRecord, any);
        var decoder = Decoder(registry);
        var btrfs = Make(new DeviceNumber(0, 40), "btrfs", BtrfsMagic, "/dev/vdb", new FilesystemId(9, 9));

        var reports = new[]
        {
            decoder.Decode(Ext4EventWithVendorRecord()),
            decoder.Decode(XfsEventWithVendorRecord()),
            decoder.Decode(EventWithVendorRecord(btrfs, EventBuilder.FileIdInvalid, [])),
        };

        Assert.Equal(new[] { Ext4Module.SuperMagic, XfsModule.SuperMagic, BtrfsMagic }, any.Calls.Select(c => c.Magic));
        Assert.All(any.Calls, c => Assert.Equal(RecordBytes, c.Record));
        Assert.All(reports, r => Assert.Equal("0xcafe", Section(r, "vendor")["code"]));
        Assert.All(reports, r => Assert.Null(r.Details["unknown_records"]));
        Assert.Same(any, registry.ForRecord(0x12345678, VendorRecord));
    }

    [Fact]
    public void RecordDecoderForOneFilesystem_WinsOverAnyFilesystem()
    {
        var specific = new VendorRecordDecoder("specific");
        var any = new VendorRecordDecoder("any");
        var registry = FilesystemModules.CreateDefault()
            .RegisterRecord(FilesystemModules.AnyFilesystem, VendorRecord, any)
            .RegisterRecord(Ext4Module.SuperMagic, VendorRecord, specific);
        var decoder = Decoder(registry);

        var ext4Report = decoder.Decode(Ext4EventWithVendorRecord());
        var xfsReport = decoder.Decode(XfsEventWithVendorRecord());

        Assert.Equal(new[] { Ext4Module.SuperMagic }, specific.Calls.Select(c => c.Magic));
        Assert.Equal(new[] { XfsModule.SuperMagic }, any.Calls.Select(c => c.Magic));
        Assert.NotNull(ext4Report.Details["specific"]);
        Assert.Null(ext4Report.Details["any"]);
        Assert.NotNull(xfsReport.Details["any"]);
    }

    [Fact]
    public void WholeFilesystemDecoder_RegisteredForANewMagic_IsUsed()
    {
        var btrfs = Make(new DeviceNumber(0, 40), "btrfs", BtrfsMagic, "/dev/vdb", new FilesystemId(9, 9), P("/data"));
        var handle = new byte[20];
        BinaryPrimitives.WriteUInt64LittleEndian(handle, 257);           // objectid
        BinaryPrimitives.WriteUInt64LittleEndian(handle.AsSpan(8), 5);   // root objectid (FS_TREE)
        BinaryPrimitives.WriteUInt32LittleEndian(handle.AsSpan(16), 9);  // generation
        var ev = FsError(btrfs, EUCLEAN, handleType: 0x4d, handle: handle);

        // Without a btrfs decoder the generic one cannot read type 0x4d.
        var before = Decoder().Decode(ev);
        Assert.Equal("generic", before.Decoder);
        Assert.NotNull(before.Object.HandleProblem);
        Assert.Null(before.Object.Inode);

        var mine = new TestBtrfsDecoder();
        var registry = FilesystemModules.CreateDefault().Add(new DecoderModule(BtrfsMagic, mine));
        var report = Decoder(registry).Decode(ev);

        Assert.Same(mine, registry.For(BtrfsMagic).Decoder);
        Assert.Contains("test-btrfs", registry.Names);
        Assert.Equal("test-btrfs", report.Decoder);
        Assert.Equal("btrfs says the tree is broken", report.Error.Meaning);
        Assert.Equal("BTRFS_E117", report.Error.Name);
        Assert.Equal("btrfs test description", report.Error.Description);
        Assert.Equal(ErrorCategory.Corruption, report.Category);
        Assert.Equal(Severity.Critical, report.Severity);
        Assert.Equal(257ul, report.Object.Inode);
        Assert.Equal(9u, report.Object.Generation);
        Assert.Null(report.Object.HandleProblem);
        Assert.Equal(1, mine.DetailsCalls);
        Assert.Equal(5L, Section(report, "test-btrfs")["root_objectid"]);
        Assert.Contains("btrfs says the tree is broken", report.Summary);
        Assert.Equal("btrfs", report.Filesystem.Type);
    }

    [Fact]
    public void DecoderWhoseAddDetailsThrows_StillYieldsAReport()
    {
        const ulong magic = 0x01021994;
        var sb = Make(new DeviceNumber(8, 16), "fragilefs", magic, "/dev/sdb", new FilesystemId(1, 2), P("/mnt/f"));
        var registry = FilesystemModules.CreateDefault().Add(new DecoderModule(magic, new ThrowingDetailsDecoder()));

        var report = Decoder(registry).Decode(FsError(sb, EIO, count: 4, handleType: EventBuilder.FileIdIno32Gen, handle: EventBuilder.Ino32Gen(77, 1)));

        Assert.Equal("fragile", report.Decoder);
        Assert.Equal("sysfs went away", Section(report, "fragile")["decoder_error"]);
        Assert.Equal(EIO, report.Error.Errno);
        Assert.Equal(4ul, report.Error.Count);
        Assert.Equal(77ul, report.Object.Inode);
        Assert.Equal(DisabledReason, report.Object.PathError);
    }

    [Fact]
    public void RecordDecoderThatThrows_StillYieldsAReport()
    {
        var registry = FilesystemModules.CreateDefault().RegisterRecord(Ext4Module.SuperMagic, VendorRecord, new ThrowingRecordDecoder());

        var report = Decoder(registry).Decode(Ext4EventWithVendorRecord());

        Assert.Equal("record decoder blew up", Section(report, "unknown_records")["type_200_decoder_error"]);
        Assert.Equal(EUCLEAN, report.Error.Errno);
        Assert.Equal(12ul, report.Object.Inode);
    }

    [Fact]
    public void DecoderWhoseDecodeHandleThrows_StillYieldsAReport()
    {
        const ulong magic = 0x01021995;
        var sb = Make(new DeviceNumber(8, 32), "fragilefs", magic, "/dev/sdc", new FilesystemId(1, 3));
        var registry = FilesystemModules.CreateDefault().Add(new DecoderModule(magic, new ThrowingHandleDecoder()));

        var report = Decoder(registry).Decode(FsError(sb, EUCLEAN, count: 3, handleType: EventBuilder.FileIdIno32Gen, handle: EventBuilder.Ino32Gen(12, 1)));

        // "A decoder bug must cost its details, never the report."
        Assert.Equal(EUCLEAN, report.Error.Errno);
        Assert.Equal(3ul, report.Error.Count);
    }

    [Fact]
    public void AModuleIsRegisteredOnce_ASecondForItsMagicIsRefused()
    {
        var modules = FilesystemModules.CreateDefault();

        var twice = Assert.Throws<InvalidOperationException>(() => modules.Add(new DecoderModule(Ext4Module.SuperMagic, new TestBtrfsDecoder())));
        Assert.Contains("0xef53", twice.Message);
        Assert.IsType<Ext4Decoder>(modules.For(Ext4Module.SuperMagic).Decoder);
        Assert.Throws<InvalidOperationException>(() => modules.Add(new DecoderModule(FilesystemModules.AnyFilesystem, new TestBtrfsDecoder())));
    }

    [Fact]
    public void ModulesAreFoundByEveryMountTypeTheyServe()
    {
        var modules = FilesystemModules.CreateDefault();

        Assert.All(new[] { "ext4", "ext3", "ext2" }, t => Assert.Equal(Ext4Module.SuperMagic, modules.ForType(t)!.Magic));
        Assert.Equal(XfsModule.SuperMagic, modules.ForType("xfs")!.Magic);
        Assert.Null(modules.ForType("btrfs"));
        Assert.Equal(["ext4", "xfs"], modules.Registered.Select(m => m.TypeNames[0]).Order());
        // What is watched by default is what the shipped modules serve.
        Assert.Equal(WatchOptions.DefaultTypes.Order(), modules.Registered.SelectMany(m => m.TypeNames).Order());
    }

    /// <summary>A module that is only a decoder, for the tests that register one for a new magic.</summary>
    private sealed record DecoderModule(ulong Magic, IFilesystemDecoder Decoder) : IFilesystemModule
    {
        public IReadOnlyList<string> TypeNames => [];
    }
}
