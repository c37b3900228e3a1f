using System.Text.Json;

namespace ErrorWatch.Bus;

/// <summary>
/// Writes what <see cref="BusMessage.ReadValue"/> returns as JSON, the way back from a report's
/// <c>a{sv}</c> (Publishing/DBus/ReportVariant): dictionaries (a{..}) → objects in their order on the bus, lists and
/// structs → arrays, strings and object paths → strings, numbers → numbers, booleans → booleans.
/// </summary>
public static class BusValueJson
{
    /// <summary>As report JSON is written: non-ASCII text stays readable; controls, quotes and backslashes are escaped.</summary>
    public static readonly JsonWriterOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static byte[] ToUtf8(object? value)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, Options))
            Write(writer, value);
        return buffer.ToArray();
    }

    public static void Write(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case string s: writer.WriteStringValue(s); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case byte y: writer.WriteNumberValue(y); break;
            case short n: writer.WriteNumberValue(n); break;
            case ushort q: writer.WriteNumberValue(q); break;
            case int i: writer.WriteNumberValue(i); break;
            case uint u: writer.WriteNumberValue(u); break;
            case long x: writer.WriteNumberValue(x); break;
            case ulong t: writer.WriteNumberValue(t); break;
            case double d when double.IsFinite(d): writer.WriteNumberValue(d); break;
            // JSON has no NaN or infinity.
            case double d: writer.WriteStringValue(d.ToString(System.Globalization.CultureInfo.InvariantCulture)); break;
            case IEnumerable<KeyValuePair<string, object?>> dictionary:
                writer.WriteStartObject();
                foreach (var (key, item) in dictionary)
                {
                    writer.WritePropertyName(key);
                    Write(writer, item);
                }
                writer.WriteEndObject();
                break;
            case System.Collections.IEnumerable list:
                writer.WriteStartArray();
                foreach (var item in list)
                    Write(writer, item);
                writer.WriteEndArray();
                break;
            default:
                throw new ArgumentException($"no JSON for a bus value of type {value.GetType().Name}", nameof(value));
        }
    }
}
