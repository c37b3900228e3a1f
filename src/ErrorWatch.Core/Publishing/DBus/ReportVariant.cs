using ErrorWatch.Bus;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing.DBus;

/// <summary>
/// A live report as D-Bus <c>a{sv}</c>, written from the report itself (<see cref="ReportFields"/>)
/// rather than encoded to JSON and parsed back: on the way from the kernel to subscribers that
/// was a second encoding and a parse (docs/performance.md, latency). The value types are those
/// <see cref="JsonVariant"/> gives the same report's stored JSON (GetReport, GetReports), so a
/// client sees one shape either way: integers <c>x</c> (<c>t</c> above int64), strings <c>s</c>,
/// booleans <c>b</c>, string arrays <c>as</c>, objects <c>a{sv}</c>, nulls left out.
/// </summary>
public static class ReportVariant
{
    public static void Write(BusMessage m, CorruptionReport report)
    {
        m.Open('a', "{sv}");
        var fields = new Fields(m);
        ReportFields.Write(ref fields, report);
        m.Close();
    }

    private readonly struct Fields(BusMessage m) : IReportFieldWriter
    {
        public void StartObject(string name)
        {
            Entry(name, "a{sv}");
            m.Open('a', "{sv}");
        }

        public void EndObject()
        {
            m.Close();
            EndEntry();
        }

        public void String(string name, string? value)
        {
            if (value is null)
                return;
            Entry(name, "s");
            m.Append(value);
            EndEntry();
        }

        public void String(string name, ReadOnlySpan<char> value) => String(name, value.ToString());

        public void Number(string name, long value)
        {
            Entry(name, "x");
            m.Append(value);
            EndEntry();
        }

        public void Number(string name, ulong value)
        {
            if (value <= long.MaxValue)
            {
                Number(name, (long)value);
                return;
            }
            Entry(name, "t");
            m.Append(value);
            EndEntry();
        }

        public void Boolean(string name, bool value)
        {
            Entry(name, "b");
            m.Append(value);
            EndEntry();
        }

        public void StartStrings(string name)
        {
            Entry(name, "as");
            m.Open('a', "s");
        }

        public void StringItem(string value) => m.Append(value);

        public void EndStrings()
        {
            m.Close();
            EndEntry();
        }

        public void Bytes(string name, ReadOnlySpan<byte> value)
        {
            String(name, Convert.ToBase64String(value));
        }

        private void Entry(string name, string signature)
        {
            m.Open('e', "sv");
            m.Append(name);
            m.Open('v', signature);
        }

        private void EndEntry()
        {
            m.Close();
            m.Close();
        }
    }
}
