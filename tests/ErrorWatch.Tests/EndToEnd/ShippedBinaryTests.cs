using System.Buffers.Binary;
using System.Text;

namespace ErrorWatch.Tests.EndToEnd;

/// <summary>
/// The executable the end-to-end tests run (<see cref="ErrorWatchBinary"/>) is the one that ships:
/// packaging/publish.sh's NativeAOT output, one ELF file with its symbols beside the publish, and no
/// .NET runtime or JIT in the running process. Should the tests ever run a JIT build again, these fail.
/// </summary>
public sealed class ShippedBinaryTests
{
    /// <summary>What a JIT build maps (the apphost's host, the runtime, the JIT) and NativeAOT never does.</summary>
    private static readonly string[] RuntimeFiles = ["libhostfxr.so", "libhostpolicy.so", "libcoreclr.so", "libclrjit.so", "System.Private.CoreLib.dll"];

    [Fact]
    public void It_is_one_NativeAOT_executable_whose_symbols_beside_the_publish_have_its_build_id()
    {
        var binary = ErrorWatchBinary.Path;
        var image = ElfImage.Read(binary);
        // ILC's compiled managed code: an apphost or a ReadyToRun build has no such section.
        Assert.True(image.Sections.ContainsKey("__managedcode"), $"{binary} has no __managedcode section: not a NativeAOT build (sections: {string.Join(' ', image.Sections.Keys)})");
        var publish = Directory.GetFileSystemEntries(Path.GetDirectoryName(binary)!);
        Assert.True(publish.SequenceEqual([binary]), $"the publish holds more than {binary}: {string.Join(", ", publish)}");
        Assert.Equal("errorwatch.dbg", image.DebugLink);
        var symbols = ErrorWatchBinary.SymbolsPath;
        Assert.True(File.Exists(symbols), $"no symbols at {symbols} (packaging/publish.sh puts them there)");
        Assert.NotNull(image.BuildId);
        Assert.Equal(Convert.ToHexStringLower(image.BuildId), Convert.ToHexStringLower(ElfImage.Read(symbols).BuildId ?? []));
    }

    [Fact]
    public void While_it_runs_no_dotnet_runtime_or_JIT_is_mapped_into_it()
    {
        using var decode = DecodeStandardInput.Start();
        decode.WaitUntilReading();

        Assert.Equal(ErrorWatchBinary.Path, new FileInfo($"/proc/{decode.Process.Id}/exe").LinkTarget);
        var mapped = File.ReadLines($"/proc/{decode.Process.Id}/maps")
            .Select(l => l.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f.Length == 6 && f[5].StartsWith('/'))
            .Select(f => f[5])
            .Distinct()
            .ToList();
        var runtime = mapped.Where(f => RuntimeFiles.Contains(Path.GetFileName(f)) || f.EndsWith(".dll", StringComparison.Ordinal)).ToList();
        Assert.True(runtime.Count == 0, $"a .NET runtime is mapped into {ErrorWatchBinary.Path}: {string.Join(", ", runtime)}");
        // Besides itself, only the C libraries it links (libc, libm, the loader).
        var others = mapped.Where(f => f != ErrorWatchBinary.Path && !Path.GetFileName(f).StartsWith("lib", StringComparison.Ordinal) && !Path.GetFileName(f).StartsWith("ld-", StringComparison.Ordinal)).ToList();
        Assert.True(others.Count == 0, "unexpected files mapped: " + string.Join(", ", others));
    }
}

/// <summary>The parts of an ELF64 little-endian file these tests look at: section names, the GNU build id, the debug link.</summary>
internal sealed class ElfImage
{
    private const uint NoteGnuBuildId = 3;

    private ElfImage(Dictionary<string, ReadOnlyMemory<byte>> sections) => Sections = sections;

    /// <summary>Each section's contents by name (empty for sections with no bytes in the file, such as .bss).</summary>
    public Dictionary<string, ReadOnlyMemory<byte>> Sections { get; }

    public byte[]? BuildId => Sections.TryGetValue(".note.gnu.build-id", out var note) ? NoteDescriptor(note, "GNU", NoteGnuBuildId) : null;

    /// <summary>The symbols file name in .gnu_debuglink (NUL-terminated, then padding and a CRC-32).</summary>
    public string? DebugLink => Sections.TryGetValue(".gnu_debuglink", out var link) ? Encoding.ASCII.GetString(link.Span[..link.Span.IndexOf((byte)0)]) : null;

    public static ElfImage Read(string path)
    {
        var file = File.ReadAllBytes(path);
        Assert.True(file.Length > 64 && file.AsSpan(0, 4).SequenceEqual("\u007fELF"u8), $"{path} is not an ELF file");
        Assert.True(file[4] == 2 && file[5] == 1, $"{path} is not ELF64 little-endian");
        var sectionHeaders = (int)BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(0x28));
        var entrySize = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(0x3a));
        var count = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(0x3c));
        var namesIndex = BinaryPrimitives.ReadUInt16LittleEndian(file.AsSpan(0x3e));

        (uint Name, uint Type, int Offset, int Size) Header(int i)
        {
            var h = file.AsSpan(sectionHeaders + i * entrySize);
            return (BinaryPrimitives.ReadUInt32LittleEndian(h), BinaryPrimitives.ReadUInt32LittleEndian(h[4..]),
                (int)BinaryPrimitives.ReadUInt64LittleEndian(h[24..]), (int)BinaryPrimitives.ReadUInt64LittleEndian(h[32..]));
        }

        const uint noBits = 8;
        var names = Header(namesIndex);
        var sections = new Dictionary<string, ReadOnlyMemory<byte>>();
        for (var i = 1; i < count; i++)
        {
            var (name, type, offset, size) = Header(i);
            var nameBytes = file.AsSpan(names.Offset + (int)name);
            sections[Encoding.ASCII.GetString(nameBytes[..nameBytes.IndexOf((byte)0)])] = type == noBits ? ReadOnlyMemory<byte>.Empty : file.AsMemory(offset, size);
        }
        return new ElfImage(sections);
    }

    private static byte[]? NoteDescriptor(ReadOnlyMemory<byte> section, string owner, uint type)
    {
        static int Aligned(int n) => (n + 3) & ~3;
        var notes = section.Span;
        for (var at = 0; at + 12 <= notes.Length;)
        {
            var nameSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(notes[at..]);
            var descriptorSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(notes[(at + 4)..]);
            var noteType = BinaryPrimitives.ReadUInt32LittleEndian(notes[(at + 8)..]);
            var name = Encoding.ASCII.GetString(notes.Slice(at + 12, nameSize)).TrimEnd('\0');
            var descriptor = at + 12 + Aligned(nameSize);
            if (name == owner && noteType == type)
                return notes.Slice(descriptor, descriptorSize).ToArray();
            at = descriptor + Aligned(descriptorSize);
        }
        return null;
    }
}
