using System.Buffers.Binary;
using System.Text;

namespace ErrorWatch.Tests.Metrics;

/// <summary>
/// Reads one counter's value out of an OTLP ExportMetricsServiceRequest (protobuf), enough to check
/// that a cumulative sum came through an outage whole. Field numbers from
/// opentelemetry/proto/metrics/v1/metrics.proto: ResourceMetrics.scope_metrics=2,
/// ScopeMetrics.metrics=2, Metric.name=1 .sum=7, Sum.data_points=1, NumberDataPoint.as_double=4 .as_int=6.
/// </summary>
internal static class OtlpSums
{
    /// <summary>The sum over the data points of metric <paramref name="name"/>, or null when the request does not carry it.</summary>
    public static double? Total(byte[] request, string name)
    {
        double? total = null;
        foreach (var resource in Fields(request, 1))
        foreach (var scope in Fields(resource, 2))
        foreach (var metric in Fields(scope, 2))
        {
            if (Fields(metric, 1).Select(n => Encoding.UTF8.GetString(n)).FirstOrDefault() != name)
                continue;
            foreach (var sum in Fields(metric, 7))
            foreach (var point in Fields(sum, 1))
                total = (total ?? 0) + PointValue(point);
        }
        return total;
    }

    private static double PointValue(byte[] point)
    {
        var at = 0;
        while (at < point.Length)
        {
            var (field, wire) = Key(point, ref at);
            if (wire == 1)
            {
                var raw = BinaryPrimitives.ReadInt64LittleEndian(point.AsSpan(at, 8));
                at += 8;
                if (field == 6)
                    return raw;
                if (field == 4)
                    return BitConverter.Int64BitsToDouble(raw);
                continue;
            }
            Skip(point, ref at, wire);
        }
        return 0;
    }

    /// <summary>The length-delimited values of field <paramref name="number"/>.</summary>
    private static IEnumerable<byte[]> Fields(byte[] message, int number)
    {
        var found = new List<byte[]>();
        var at = 0;
        while (at < message.Length)
        {
            var (field, wire) = Key(message, ref at);
            if (wire == 2)
            {
                var length = (int)Varint(message, ref at);
                if (field == number)
                    found.Add(message[at..(at + length)]);
                at += length;
                continue;
            }
            Skip(message, ref at, wire);
        }
        return found;
    }

    private static (int Field, int Wire) Key(byte[] data, ref int at)
    {
        var key = Varint(data, ref at);
        return ((int)(key >> 3), (int)(key & 7));
    }

    private static void Skip(byte[] data, ref int at, int wire)
    {
        switch (wire)
        {
            case 0: Varint(data, ref at); break;
            case 1: at += 8; break;
            case 2: at += (int)Varint(data, ref at); break;
            case 5: at += 4; break;
            default: throw new FormatException($"protobuf wire type {wire} at byte {at}");
        }
    }

    private static ulong Varint(byte[] data, ref int at)
    {
        ulong value = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = data[at++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80)
                return value;
        }
    }
}
