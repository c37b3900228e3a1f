using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using ErrorWatch.Interop;

namespace ErrorWatch.Bus;

/// <summary>What an exported object answers: method calls and property reads for its paths.</summary>
public interface IBusObject
{
    /// <summary>
    /// Handles a call: reply (now or later, exactly once) and return 1, or return a negative errno
    /// after <see cref="BusCall.Fail"/> has set the error.
    /// </summary>
    int Call(BusCall call);

    /// <summary>Appends the value of <paramref name="property"/> of the object at <paramref name="path"/> to <paramref name="reply"/>.</summary>
    void GetProperty(string path, string property, BusMessage reply);

    /// <summary>Whether an object exists at <paramref name="path"/> (for fallback vtables).</summary>
    bool Exists(string path);

    /// <summary>The child objects' paths under a fallback prefix, for introspection and ObjectManager.</summary>
    IEnumerable<string> Children(string prefix);
}

/// <summary>An incoming method call as a handler sees it.</summary>
public readonly unsafe struct BusCall
{
    private readonly SdBus.Error* _error;

    internal BusCall(BusMessage message, SdBus.Error* error)
    {
        Message = message;
        _error = error;
    }

    public BusMessage Message { get; }
    public string Member => Message.Member ?? "";
    public string Path => Message.Path ?? "";

    /// <summary>Sets the error sd-bus replies with; return the result from the handler.</summary>
    public int Fail(string name, string message) => SdBus.ErrorSet(_error, name, message);
}

/// <summary>
/// One D-Bus interface as an sd-bus vtable (sd-bus then validates signatures, generates
/// Introspect, answers org.freedesktop.DBus.Properties and feeds ObjectManager). The entries and
/// their strings live in native memory for the process lifetime, as sd-bus requires.
/// </summary>
public sealed unsafe class BusInterface
{
    private readonly List<SdBus.VtableEntry> _entries = new();
    private SdBus.VtableEntry* _native;

    public BusInterface(string name)
    {
        Name = name;
        _entries.Add(new SdBus.VtableEntry
        {
            TypeAndFlags = SdBus.VtableStart,
            A = sizeof(SdBus.VtableEntry),
            B = (nint)SdBus.VtableFeatureParamNames,
            C = SdBus.VtableFormatReference(),
        });
    }

    public string Name { get; }

    /// <summary>A method; access control is the handler's job (every method is UNPRIVILEGED to sd-bus).</summary>
    public BusInterface Method(string member, string signature, string result, string[] inNames, string[] outNames)
    {
        _entries.Add(new SdBus.VtableEntry
        {
            TypeAndFlags = SdBus.VtableMethod | (SdBus.VtableUnprivileged << 8),
            A = Native(member),
            B = Native(signature),
            C = Native(result),
            D = (nint)(delegate* unmanaged[Cdecl]<nint, nint, SdBus.Error*, int>)&OnMethod,
            E = 0,
            F = Names(inNames.Concat(outNames)),
        });
        return this;
    }

    public BusInterface Signal(string member, string signature, params string[] names)
    {
        _entries.Add(new SdBus.VtableEntry
        {
            TypeAndFlags = SdBus.VtableSignal,
            A = Native(member),
            B = Native(signature),
            C = Names(names),
        });
        return this;
    }

    /// <summary>A read-only property: constant, or announced through PropertiesChanged when it changes.</summary>
    public BusInterface Property(string member, string signature, bool constant = false)
    {
        var flags = constant ? SdBus.VtablePropertyConst : SdBus.VtablePropertyEmitsChange;
        _entries.Add(new SdBus.VtableEntry
        {
            TypeAndFlags = SdBus.VtableProperty | (flags << 8),
            A = Native(member),
            B = Native(signature),
            C = (nint)(delegate* unmanaged[Cdecl]<nint, nint, nint, nint, nint, nint, SdBus.Error*, int>)&OnGetProperty,
        });
        return this;
    }

    private SdBus.VtableEntry* Table()
    {
        if (_native is not null)
            return _native;
        var all = _entries.Append(new SdBus.VtableEntry { TypeAndFlags = SdBus.VtableEnd }).ToArray();
        var table = (SdBus.VtableEntry*)NativeMemory.AllocZeroed((nuint)(all.Length * sizeof(SdBus.VtableEntry)));
        for (var i = 0; i < all.Length; i++)
            table[i] = all[i];
        return _native = table;
    }

    /// <summary>Exports this interface at one path (floating slot: it lives as long as the connection).</summary>
    public void Export(BusConnection bus, string path, BusObjectHandle target) =>
        BusException.Check(SdBus.AddObjectVtable(bus.Handle, null, path, Name, Table(), target.Value), $"export {Name} at {path}");

    /// <summary>Exports this interface for every child of <paramref name="prefix"/> that <see cref="IBusObject.Exists"/> says is there.</summary>
    public void ExportFallback(BusConnection bus, string prefix, BusObjectHandle target)
    {
        BusException.Check(SdBus.AddFallbackVtable(bus.Handle, null, prefix, Name, Table(),
            (delegate* unmanaged[Cdecl]<nint, nint, nint, nint, nint*, SdBus.Error*, int>)&OnFind, target.Value), $"export {Name} under {prefix}");
        BusException.Check(SdBus.AddNodeEnumerator(bus.Handle, null, prefix,
            (delegate* unmanaged[Cdecl]<nint, nint, nint, byte***, SdBus.Error*, int>)&OnEnumerate, target.Value), $"enumerate {prefix}");
    }

    private static nint Native(string s) => (nint)Utf8(s + "\0");

    /// <summary>Argument names as sd-bus wants them: each NUL-terminated, then one more NUL.</summary>
    private static nint Names(IEnumerable<string> names) => (nint)Utf8(string.Concat(names.Select(n => n + "\0")) + "\0");

    private static byte* Utf8(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s);
        var p = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
        bytes.CopyTo(new Span<byte>(p, bytes.Length));
        return p;
    }

    // ---- callbacks: nothing may escape into native code, so every exception becomes an error reply ----

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnMethod(nint message, nint userdata, SdBus.Error* error)
    {
        var call = new BusCall(new BusMessage(message), error);
        try
        {
            return BusObjectHandle.Target(userdata).Call(call);
        }
        catch (BusException e)
        {
            return call.Fail("org.freedesktop.DBus.Error.InvalidArgs", e.Message);
        }
        catch (Exception e)
        {
            return call.Fail("org.freedesktop.DBus.Error.Failed", e.Message);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnGetProperty(nint bus, nint path, nint iface, nint property, nint reply, nint userdata, SdBus.Error* error)
    {
        try
        {
            BusObjectHandle.Target(userdata).GetProperty(Marshal.PtrToStringUTF8(path) ?? "", Marshal.PtrToStringUTF8(property) ?? "", new BusMessage(reply));
            return 1;
        }
        catch (Exception e)
        {
            return SdBus.ErrorSet(error, "org.freedesktop.DBus.Error.Failed", e.Message);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnFind(nint bus, nint path, nint iface, nint userdata, nint* found, SdBus.Error* error)
    {
        try
        {
            if (!BusObjectHandle.Target(userdata).Exists(Marshal.PtrToStringUTF8(path) ?? ""))
                return 0;
            *found = userdata;
            return 1;
        }
        catch (Exception)
        {
            return 0;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnEnumerate(nint bus, nint prefix, nint userdata, byte*** nodes, SdBus.Error* error)
    {
        try
        {
            var children = BusObjectHandle.Target(userdata).Children(Marshal.PtrToStringUTF8(prefix) ?? "").ToArray();
            // A NULL-terminated strv sd-bus frees with free(): NativeMemory.Alloc is malloc.
            var strv = (byte**)NativeMemory.Alloc((nuint)((children.Length + 1) * sizeof(byte*)));
            for (var i = 0; i < children.Length; i++)
                strv[i] = Utf8(children[i] + "\0");
            strv[children.Length] = null;
            *nodes = strv;
            return 0;
        }
        catch (Exception e)
        {
            return SdBus.ErrorSet(error, "org.freedesktop.DBus.Error.Failed", e.Message);
        }
    }
}

/// <summary>A GCHandle to an <see cref="IBusObject"/>, passed to sd-bus as userdata.</summary>
public readonly struct BusObjectHandle : IDisposable
{
    private readonly GCHandle _handle;

    public BusObjectHandle(IBusObject target) => _handle = GCHandle.Alloc(target);

    public nint Value => GCHandle.ToIntPtr(_handle);

    public static IBusObject Target(nint userdata) => (IBusObject)GCHandle.FromIntPtr(userdata).Target!;

    public void Dispose()
    {
        if (_handle.IsAllocated)
            _handle.Free();
    }
}

/// <summary>Null-terminated UTF-8 string arrays (char**) for the *_strv calls, freed after the call.</summary>
public sealed unsafe class NativeStrv : IDisposable
{
    private readonly byte** _strv;
    private readonly int _count;

    public NativeStrv(IReadOnlyList<string> items)
    {
        _count = items.Count;
        _strv = (byte**)NativeMemory.AllocZeroed((nuint)((_count + 1) * sizeof(byte*)));
        for (var i = 0; i < _count; i++)
        {
            var bytes = Encoding.UTF8.GetBytes(items[i] + "\0");
            _strv[i] = (byte*)NativeMemory.Alloc((nuint)bytes.Length);
            bytes.CopyTo(new Span<byte>(_strv[i], bytes.Length));
        }
    }

    public byte** Pointer => _strv;

    public void Dispose()
    {
        for (var i = 0; i < _count; i++)
            NativeMemory.Free(_strv[i]);
        NativeMemory.Free(_strv);
    }
}
