using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using ErrorWatch.Interop;

namespace ErrorWatch.Bus;

/// <summary>A D-Bus error from sd-bus: a negative errno, or an error reply with its D-Bus name.</summary>
public sealed class BusException : Exception
{
    public BusException(string what, int errno, string? name = null, string? message = null)
        : base(name is null ? $"{what}: {ErrnoTable.Name(errno)}" : $"{what}: {name}: {message}")
    {
        Errno = errno;
        ErrorName = name;
        ErrorMessage = message;
    }

    public int Errno { get; }
    /// <summary>The D-Bus error name of an error reply (org.freedesktop.DBus.Error.AccessDenied), else null.</summary>
    public string? ErrorName { get; }
    public string? ErrorMessage { get; }

    internal static int Check(int r, string what) => r < 0 ? throw new BusException(what, -r) : r;

    /// <summary>As <see cref="Check(int, string)"/>; the interpolated text is only made when the call failed
    /// (a report's signal is hundreds of calls, and formatting each one's description cost more than the call).</summary>
    internal static int Check(int r, [InterpolatedStringHandlerArgument(nameof(r))] ref FailureText what) =>
        r < 0 ? throw new BusException(what.ToStringAndClear(), -r) : r;
}

/// <summary>The description of an sd-bus call, formatted only when its result is an error.</summary>
[InterpolatedStringHandler]
public ref struct FailureText
{
    private DefaultInterpolatedStringHandler _text;
    private readonly bool _failed;

    public FailureText(int literalLength, int formattedCount, int result, out bool failed)
    {
        _failed = failed = result < 0;
        _text = failed ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
    }

    public void AppendLiteral(string value) => _text.AppendLiteral(value);
    public void AppendFormatted<T>(T value) => _text.AppendFormatted(value);
    public string ToStringAndClear() => _failed ? _text.ToStringAndClear() : "";
}

/// <summary>
/// One sd_bus_message, written and read element by element in the order of its signature (the
/// C API's cursor model). Borrowed, not owned: whoever created or received it unrefs it.
/// </summary>
public readonly unsafe struct BusMessage
{
    public BusMessage(nint handle) => Handle = handle;

    public nint Handle { get; }

    public string? Sender => Marshal.PtrToStringUTF8(SdBus.MessageGetSender(Handle));
    public string? Member => Marshal.PtrToStringUTF8(SdBus.MessageGetMember(Handle));
    public string? Path => Marshal.PtrToStringUTF8(SdBus.MessageGetPath(Handle));
    public string Signature => Marshal.PtrToStringUTF8(SdBus.MessageGetSignature(Handle, 1)) ?? "";
    public bool AllowsInteractiveAuthorization => SdBus.MessageGetAllowInteractiveAuthorization(Handle) > 0;

    /// <summary>The error name and message when this is an error reply.</summary>
    public (string Name, string? Message)? Error
    {
        get
        {
            var e = SdBus.MessageGetError(Handle);
            if (e is null || e->Name == 0)
                return null;
            return (Marshal.PtrToStringUTF8(e->Name)!, Marshal.PtrToStringUTF8(e->Message));
        }
    }

    // ---- writing ----

    public void Append(string value)
    {
        value = StringText(value);
        // Most strings of a report are short: encoded on the stack, not into a new array each.
        if (value.Length <= 256)
        {
            var buffer = stackalloc byte[256 * 3 + 1];
            var bytes = new Span<byte>(buffer, 256 * 3 + 1);
            Utf8(value, bytes);
            BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeString, buffer), "append s");
            return;
        }
        fixed (byte* p = Utf8(value))
            BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeString, p), "append s");
    }

    public void AppendObjectPath(string value)
    {
        var bytes = Utf8(value);
        fixed (byte* p = bytes)
            BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeObjectPath, p), "append o");
    }

    public void Append(bool value)
    {
        var b = value ? 1 : 0;
        BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeBoolean, &b), "append b");
    }

    public void Append(byte value) => BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeByte, &value), "append y");
    public void Append(int value) => BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeInt32, &value), "append i");
    public void Append(uint value) => BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeUInt32, &value), "append u");
    public void Append(long value) => BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeInt64, &value), "append x");
    public void Append(ulong value) => BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeUInt64, &value), "append t");
    public void Append(double value) => BusException.Check(SdBus.MessageAppendBasic(Handle, SdBus.TypeDouble, &value), "append d");

    public void Open(char type, string contents) =>
        BusException.Check(SdBus.MessageOpenContainer(Handle, (byte)type, contents), $"open {type}{contents}");

    public void Close() => BusException.Check(SdBus.MessageCloseContainer(Handle), "close container");

    public void AppendStrings(IEnumerable<string> values)
    {
        Open('a', "s");
        foreach (var v in values)
            Append(v);
        Close();
    }

    /// <summary>One <c>{sv}</c> entry whose variant holds a string.</summary>
    public void AppendEntry(string key, string value)
    {
        Open('e', "sv");
        Append(key);
        Open('v', "s");
        Append(value);
        Close();
        Close();
    }

    // ---- reading ----

    /// <summary>Seals a message built here and rewinds it to its first argument, to read back what it would send.</summary>
    public void SealForReading()
    {
        BusException.Check(SdBus.MessageSeal(Handle, 1, 0), "seal");
        BusException.Check(SdBus.MessageRewind(Handle, 1), "rewind");
    }

    /// <summary>The next element's type code and container contents, or null at the end of the current container.</summary>
    public (char Type, string? Contents)? Peek()
    {
        byte type;
        byte* contents;
        var r = BusException.Check(SdBus.MessagePeekType(Handle, &type, &contents), "peek");
        if (r == 0)
            return null;
        return ((char)type, contents is null ? null : Marshal.PtrToStringUTF8((nint)contents));
    }

    public string ReadString() => ReadText(SdBus.TypeString);

    /// <summary>
    /// The next string's UTF-8 bytes where the message holds them, valid while the message is: no
    /// copy, so an argument can be judged (length, form) before a caller-sized string is made of it.
    /// </summary>
    public ReadOnlySpan<byte> ReadUtf8()
    {
        byte* p;
        BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeString, &p), "read s");
        return MemoryMarshal.CreateReadOnlySpanFromNullTerminated(p);
    }
    public string ReadObjectPath() => ReadText(SdBus.TypeObjectPath);

    private string ReadText(byte type)
    {
        byte* p;
        BusException.Check(SdBus.MessageReadBasic(Handle, type, &p), $"read {(char)type}");
        return Marshal.PtrToStringUTF8((nint)p) ?? "";
    }

    public bool ReadBoolean()
    {
        int b;
        BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeBoolean, &b), "read b");
        return b != 0;
    }

    public uint ReadUInt32()
    {
        uint v;
        BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeUInt32, &v), "read u");
        return v;
    }

    public ulong ReadUInt64()
    {
        ulong v;
        BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeUInt64, &v), "read t");
        return v;
    }

    public void Enter(char type, string? contents)
    {
        var bytes = contents is null ? null : Utf8(contents);
        fixed (byte* p = bytes)
            BusException.Check(SdBus.MessageEnterContainer(Handle, (byte)type, p), $"enter {type}{contents}");
    }

    public void Exit() => BusException.Check(SdBus.MessageExitContainer(Handle), "exit container");

    /// <summary>
    /// Reads the next complete value: strings and numbers as themselves, <c>a{..}</c> as a
    /// dictionary keyed by the key's text, other arrays as lists, structs as arrays, variants unwrapped.
    /// </summary>
    public object? ReadValue()
    {
        if (Peek() is not { } next)
            throw new BusException("read value", Libc.EBADMSG);
        var (type, contents) = next;
        switch (type)
        {
            case 's': return ReadString();
            case 'o': return ReadObjectPath();
            case 'g': return ReadText(SdBus.TypeSignature);
            case 'b': return ReadBoolean();
            case 'y': { byte v; BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeByte, &v), "read y"); return v; }
            case 'n': { short v; BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeInt16, &v), "read n"); return v; }
            case 'q': { ushort v; BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeUInt16, &v), "read q"); return v; }
            case 'i': { int v; BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeInt32, &v), "read i"); return v; }
            case 'u': return ReadUInt32();
            case 'x': { long v; BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeInt64, &v), "read x"); return v; }
            case 't': return ReadUInt64();
            case 'd': { double v; BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeDouble, &v), "read d"); return v; }
            case 'h': { int v; BusException.Check(SdBus.MessageReadBasic(Handle, SdBus.TypeUnixFd, &v), "read h"); return v; }
            case 'v':
            {
                Enter('v', contents);
                var value = ReadValue();
                Exit();
                return value;
            }
            case 'r':
            {
                Enter('r', contents);
                var fields = new List<object?>();
                while (Peek() is not null)
                    fields.Add(ReadValue());
                Exit();
                return fields.ToArray();
            }
            case 'a' when contents is not null && contents.StartsWith('{'):
            {
                Enter('a', contents);
                var dict = new Dictionary<string, object?>(StringComparer.Ordinal);
                var entry = contents[1..^1];
                while (Peek() is not null)
                {
                    Enter('e', entry);
                    var key = ReadValue();
                    dict[Convert.ToString(key, System.Globalization.CultureInfo.InvariantCulture) ?? ""] = ReadValue();
                    Exit();
                }
                Exit();
                return dict;
            }
            case 'a':
            {
                Enter('a', contents);
                var list = new List<object?>();
                while (Peek() is not null)
                    list.Add(ReadValue());
                Exit();
                return list;
            }
            default:
                throw new BusException($"read value of type '{type}'", Libc.EBADMSG);
        }
    }

    /// <summary>
    /// Text as a D-Bus string can hold it. sd-bus refuses a string holding a Unicode noncharacter
    /// (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF: systemd's unichar_is_valid) with EINVAL, which failed the
    /// whole message: a report's signal, or every report of a GetReports reply. Those become U+FFFD.
    /// Paths never hold one here (FsPath escapes them); a filesystem label read from disk may.
    /// Lone surrogates already become U+FFFD in the UTF-8 encoding.
    /// </summary>
    public static string StringText(string value)
    {
        if (!Filesystems.FsPath.HasNoncharacter(value))
            return value;
        var sb = new StringBuilder(value.Length);
        foreach (var rune in value.EnumerateRunes())
            sb.Append(Filesystems.FsPath.IsNoncharacter(rune.Value) ? "\uFFFD" : rune.ToString());
        return sb.ToString();
    }

    private static byte[] Utf8(string s)
    {
        var bytes = new byte[Encoding.UTF8.GetByteCount(s) + 1];
        Utf8(s, bytes);
        return bytes;
    }

    /// <summary>NUL-terminated UTF-8 into <paramref name="into"/> (room for 3 bytes a char and the NUL); a NUL inside the text would end it early, so it is refused.</summary>
    private static int Utf8(string s, Span<byte> into)
    {
        if (s.Contains('\0'))
            throw new ArgumentException("D-Bus strings cannot contain NUL", nameof(s));
        var n = Encoding.UTF8.GetBytes(s, into);
        into[n] = 0;
        return n;
    }
}
