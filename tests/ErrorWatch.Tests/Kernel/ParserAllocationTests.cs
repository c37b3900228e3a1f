using ErrorWatch.Kernel;

namespace ErrorWatch.Tests.Kernel;

/// <summary>The event loop runs for every read(2); decoding a buffer must not allocate.</summary>
public class ParserAllocationTests
{
    [Fact]
    public void DecodingTheStormBuffer_AllocatesNothing()
    {
        var buffer = TestPaths.ReadFixture("ext4-storm-buffer.bin");

        var warmUp = Decode(buffer); // JIT and any one-time static initialisation happen here
        var before = GC.GetAllocatedBytesForCurrentThread();
        var measured = Decode(buffer);
        var after = GC.GetAllocatedBytesForCurrentThread();

        // README: 601 events, 1200 errors; the work must really have been done both times.
        Assert.Equal((601, 1200u), warmUp);
        Assert.Equal(warmUp, measured);
        Assert.Equal(0, after - before);
    }

    private static (int Events, uint Errors) Decode(ReadOnlySpan<byte> buffer)
    {
        var events = 0;
        uint errors = 0;
        var reader = new FanotifyEventReader(buffer);
        while (reader.TryRead(out var ev))
        {
            events++;
            foreach (var rec in ev.Records)
            {
                if (rec.TryGetFid(out var fid, out _) && fid.Handle.Length > 128)
                    return (-1, 0);
            }
            var records = ev.ReadRecords();
            if (records.Problem.IsError || !records.HasFid)
                return (-1, 0);
            errors += records.ErrorCount;
        }
        return reader.Error.IsError ? (-1, 0) : (events, errors);
    }
}
