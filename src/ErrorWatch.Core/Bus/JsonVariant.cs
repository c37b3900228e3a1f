using System.Text.Json;

namespace ErrorWatch.Bus;

/// <summary>
/// Writes a JSON object as D-Bus <c>a{sv}</c>, the one mapping every report on the bus uses:
/// objects → a{sv}, string arrays → as, other arrays → av, strings → s, integers → x (t above
/// int64), other numbers → d, booleans → b; JSON nulls are left out (a{sv} has no null).
/// </summary>
public static class JsonVariant
{
    /// <summary>Decides, by dotted key ("object.path"), whether a member is written.</summary>
    public delegate bool MemberFilter(string dottedKey);

    public static void WriteDictionary(BusMessage m, JsonElement obj, MemberFilter? include = null, string prefix = "")
    {
        m.Open('a', "{sv}");
        foreach (var property in obj.EnumerateObject())
        {
            if (property.Value.ValueKind == JsonValueKind.Null)
                continue;
            var name = property.Name;
            // The dotted key is only made for a filter to judge (a report's signal has no filter).
            var key = include is null ? "" : prefix.Length == 0 ? name : prefix + "." + name;
            if (include is not null && !include(key))
                continue;
            m.Open('e', "sv");
            m.Append(name);
            WriteVariant(m, property.Value, include, key);
            m.Close();
        }
        m.Close();
    }

    private static void WriteVariant(BusMessage m, JsonElement value, MemberFilter? include, string key)
    {
        switch (value.ValueKind)
        {
            case JsonValueKind.String:
                m.Open('v', "s");
                m.Append(value.GetString()!);
                m.Close();
                break;
            case JsonValueKind.True or JsonValueKind.False:
                m.Open('v', "b");
                m.Append(value.GetBoolean());
                m.Close();
                break;
            case JsonValueKind.Number when value.TryGetInt64(out var l):
                m.Open('v', "x");
                m.Append(l);
                m.Close();
                break;
            case JsonValueKind.Number when value.TryGetUInt64(out var ul):
                m.Open('v', "t");
                m.Append(ul);
                m.Close();
                break;
            case JsonValueKind.Number:
                m.Open('v', "d");
                m.Append(value.GetDouble());
                m.Close();
                break;
            case JsonValueKind.Object:
                m.Open('v', "a{sv}");
                WriteDictionary(m, value, include, key);
                m.Close();
                break;
            case JsonValueKind.Array when value.EnumerateArray().All(e => e.ValueKind == JsonValueKind.String):
                m.Open('v', "as");
                m.AppendStrings(value.EnumerateArray().Select(e => e.GetString()!));
                m.Close();
                break;
            case JsonValueKind.Array:
                m.Open('v', "av");
                m.Open('a', "v");
                foreach (var item in value.EnumerateArray())
                {
                    if (item.ValueKind == JsonValueKind.Null)
                        continue;
                    WriteVariant(m, item, include, key);
                }
                m.Close();
                m.Close();
                break;
        }
    }
}
