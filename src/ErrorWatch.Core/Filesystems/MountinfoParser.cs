using System.Text;

namespace ErrorWatch.Filesystems;

/// <summary>
/// Parses /proc/self/mountinfo (Documentation/filesystems/proc.rst §3.5): "id parent maj:min root
/// mountpoint options [optional fields] - fstype source superoptions". Paths are octal-escaped by
/// the kernel (\040 space, \011 tab, \012 newline, \134 backslash) and may hold any other byte.
/// </summary>
public static class MountinfoParser
{
    public static List<MountEntry> Parse(ReadOnlySpan<byte> text, Action<string>? onBadLine = null)
    {
        var entries = new List<MountEntry>();
        var lineNumber = 0;
        while (!text.IsEmpty)
        {
            lineNumber++;
            var newline = text.IndexOf((byte)'\n');
            var line = newline < 0 ? text : text[..newline];
            text = newline < 0 ? default : text[(newline + 1)..];
            if (line.IsEmpty)
                continue;
            if (TryParseLine(line, out var entry))
                entries.Add(entry);
            else
                onBadLine?.Invoke($"mountinfo line {lineNumber} is malformed: {FsPath.Escape(line)}");
        }
        return entries;
    }

    public static bool TryParseLine(ReadOnlySpan<byte> line, out MountEntry entry)
    {
        entry = null!;
        Span<Range> fields = stackalloc Range[64];
        var count = SplitFields(line, fields);
        if (count < 10 || count == fields.Length)
            return false;
        var separator = -1;
        for (var i = 6; i < count; i++)
        {
            if (line[fields[i]] is [(byte)'-'])
            {
                separator = i;
                break;
            }
        }
        if (separator < 0 || separator + 3 > count)
            return false;
        if (!ulong.TryParse(line[fields[0]], out var id) || !ulong.TryParse(line[fields[1]], out var parent))
            return false;
        if (!DeviceNumber.TryParse(Encoding.ASCII.GetString(line[fields[2]]), out var device))
            return false;

        var options = Encoding.UTF8.GetString(line[fields[5]]);
        var superOptions = separator + 3 < count ? Encoding.UTF8.GetString(Unescape(line[fields[separator + 3]])) : "";
        entry = new MountEntry
        {
            Id = id,
            ParentId = parent,
            Device = device,
            Root = new FsPath(Unescape(line[fields[3]])),
            MountPoint = new FsPath(Unescape(line[fields[4]])),
            Options = options,
            FsType = Encoding.UTF8.GetString(Unescape(line[fields[separator + 1]])),
            Source = Encoding.UTF8.GetString(Unescape(line[fields[separator + 2]])),
            SuperOptions = superOptions,
            ReadOnly = HasOption(options, "ro"),
            SuperblockReadOnly = HasOption(superOptions, "ro"),
            UniqueId = false,
        };
        return true;
    }

    private static int SplitFields(ReadOnlySpan<byte> line, Span<Range> fields)
    {
        var count = 0;
        var i = 0;
        while (i < line.Length && count < fields.Length)
        {
            while (i < line.Length && line[i] == (byte)' ')
                i++;
            if (i == line.Length)
                break;
            var start = i;
            while (i < line.Length && line[i] != (byte)' ')
                i++;
            fields[count++] = new Range(start, i);
        }
        return count;
    }

    internal static bool HasOption(string options, string name)
    {
        foreach (var part in options.Split(','))
            if (part == name)
                return true;
        return false;
    }

    /// <summary>Undoes the kernel's mangle(): backslash followed by three octal digits.</summary>
    public static byte[] Unescape(ReadOnlySpan<byte> field)
    {
        var result = new byte[field.Length];
        var n = 0;
        for (var i = 0; i < field.Length; i++)
        {
            if (field[i] == (byte)'\\' && i + 3 < field.Length && IsOctal(field[i + 1]) && IsOctal(field[i + 2]) && IsOctal(field[i + 3]))
            {
                result[n++] = (byte)(((field[i + 1] - '0') << 6) | ((field[i + 2] - '0') << 3) | (field[i + 3] - '0'));
                i += 3;
            }
            else
            {
                result[n++] = field[i];
            }
        }
        return result.AsSpan(0, n).ToArray();
    }

    private static bool IsOctal(byte b) => b >= (byte)'0' && b <= (byte)'7';
}
