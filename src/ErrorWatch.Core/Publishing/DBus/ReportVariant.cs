using ErrorWatch.Bus;
using ErrorWatch.Reports;

namespace ErrorWatch.Publishing.DBus;

/// <summary>
/// A report as D-Bus <c>a{sv}</c>, written from the typed report (<see cref="ReportFields"/>), live
/// (ReportAdded) or read back from the store (GetReport, GetReports) alike: each key has one type
/// whatever its value (docs/dbus-api.md): counts and inodes <c>t</c>, errnos and pids <c>i</c>,
/// generations <c>u</c>, integers in details <c>x</c>, strings <c>s</c>, booleans <c>b</c>, string
/// arrays <c>as</c>, objects <c>a{sv}</c>; a null is left out.
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

        public void Int32(string name, int value)
        {
            Entry(name, "i");
            m.Append(value);
            EndEntry();
        }

        public void UInt32(string name, uint value)
        {
            Entry(name, "u");
            m.Append(value);
            EndEntry();
        }

        public void Int64(string name, long value)
        {
            Entry(name, "x");
            m.Append(value);
            EndEntry();
        }

        public void UInt64(string name, ulong value)
        {
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
