using System.Runtime.InteropServices;

namespace ErrorWatch.Tests.Kernel;

/// <summary>
/// A buffer between two PROT_NONE guard pages (mmap + mprotect): a parse of an input placed flush
/// against a guard page faults on the first byte it reads outside the input, instead of reading
/// whatever follows in the managed heap. <see cref="AtEnd"/> puts the input's last byte just before
/// the trailing guard page (overreads), <see cref="AtStart"/> its first byte just after the leading
/// one (reads before the start). A fault kills the test host: loud, with the input lost, which is
/// why the fuzzer also logs the seed and iteration it is about to run when asked to.
/// </summary>
internal sealed unsafe partial class GuardedMemory : IDisposable
{
    private const int PROT_NONE = 0, PROT_READ = 1, PROT_WRITE = 2;
    private const int MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20;

    private readonly byte* _base;
    private readonly nuint _mappedLength;
    private readonly int _pageSize;

    public GuardedMemory(int capacity)
    {
        _pageSize = Environment.SystemPageSize;
        Capacity = (capacity + _pageSize - 1) / _pageSize * _pageSize;
        _mappedLength = (nuint)(Capacity + 2 * _pageSize);
        var p = Mmap(null, _mappedLength, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == (void*)-1)
            throw new InvalidOperationException($"mmap failed: errno {Marshal.GetLastPInvokeError()}");
        _base = (byte*)p;
        if (Mprotect(_base, (nuint)_pageSize, PROT_NONE) != 0 || Mprotect(DataStart + Capacity, (nuint)_pageSize, PROT_NONE) != 0)
            throw new InvalidOperationException($"mprotect failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>Bytes usable between the guard pages (a whole number of pages).</summary>
    public int Capacity { get; }

    private byte* DataStart => _base + _pageSize;

    /// <summary>Address of the first byte of the leading guard page and of the trailing one.</summary>
    public (nint Leading, nint Trailing) GuardPages => ((nint)_base, (nint)(DataStart + Capacity));

    /// <summary>Copies <paramref name="input"/> so that its last byte is the last readable byte.</summary>
    public ReadOnlySpan<byte> AtEnd(ReadOnlySpan<byte> input)
    {
        Check(input.Length);
        var destination = new Span<byte>(DataStart + Capacity - input.Length, input.Length);
        input.CopyTo(destination);
        return destination;
    }

    /// <summary>Copies <paramref name="input"/> so that its first byte is the first readable byte.</summary>
    public ReadOnlySpan<byte> AtStart(ReadOnlySpan<byte> input)
    {
        Check(input.Length);
        var destination = new Span<byte>(DataStart, input.Length);
        input.CopyTo(destination);
        return destination;
    }

    private void Check(int length)
    {
        if (length > Capacity)
            throw new ArgumentException($"input of {length} bytes exceeds the guarded capacity of {Capacity}");
    }

    public void Dispose() => Munmap(_base, _mappedLength);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* Mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(void* addr, nuint length, int prot);

    [LibraryImport("libc", EntryPoint = "munmap")]
    private static partial int Munmap(void* addr, nuint length);
}
