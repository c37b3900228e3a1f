using System.Diagnostics;
using System.Runtime.InteropServices;
using ErrorWatch.Interop;

namespace ErrorWatch.Bus;

/// <summary>
/// One connection to a message bus through sd-bus. Not thread-safe: one thread at a time makes calls
/// on it (sd-bus's rule), normally a <see cref="BusLoop"/>'s thread or a thread it let in.
/// </summary>
public sealed unsafe class BusConnection : IDisposable
{
    private nint _bus;

    private BusConnection(nint bus) => _bus = bus;

    public nint Handle => _bus;

    /// <summary>The system bus address: $DBUS_SYSTEM_BUS_ADDRESS, else the well-known socket.</summary>
    public static string SystemBusAddress =>
        Environment.GetEnvironmentVariable("DBUS_SYSTEM_BUS_ADDRESS") is { Length: > 0 } a ? a : "unix:path=/run/dbus/system_bus_socket";

    /// <summary>The session bus address: $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus.</summary>
    public static string? SessionBusAddress =>
        Environment.GetEnvironmentVariable("DBUS_SESSION_BUS_ADDRESS") is { Length: > 0 } a ? a
        : Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is { Length: > 0 } run ? $"unix:path={run}/bus" : null;

    /// <summary>"system", "session" or an address ("unix:path=/run/x/bus") → an address (null: none known).</summary>
    public static string? Resolve(string bus) => bus switch
    {
        "system" => SystemBusAddress,
        "session" or "user" => SessionBusAddress,
        _ => bus,
    };

    /// <summary>Connects and sends Hello (the reply is awaited by the first call that needs it).</summary>
    public static BusConnection Connect(string address, string description)
    {
        nint bus;
        BusException.Check(SdBus.New(&bus), "sd_bus_new");
        try
        {
            BusException.Check(SdBus.SetAddress(bus, address), $"bus address '{address}'");
            BusException.Check(SdBus.SetBusClient(bus, 1), "sd_bus_set_bus_client");
            SdBus.SetDescription(bus, description);
            BusException.Check(SdBus.Start(bus), $"connect to {address}");
        }
        catch
        {
            SdBus.FlushCloseUnref(bus);
            throw;
        }
        return new BusConnection(bus);
    }

    public bool IsOpen => _bus != 0 && SdBus.IsOpen(_bus) > 0;

    public string UniqueName
    {
        get
        {
            nint name;
            BusException.Check(SdBus.GetUniqueName(_bus, &name), "unique name");
            return Marshal.PtrToStringUTF8(name) ?? "";
        }
    }

    /// <summary>Dispatches everything pending (callbacks run here). False when the connection is gone.</summary>
    public bool Process() => Process(int.MaxValue, out _);

    /// <summary>
    /// Dispatches at most <paramref name="max"/> pending messages or events (callbacks run here); <paramref name="more"/>
    /// tells whether it stopped with more waiting. False when the connection is gone.
    /// </summary>
    public bool Process(int max, out bool more)
    {
        more = false;
        for (var i = 0; i < max; i++)
        {
            var r = SdBus.Process(_bus, null);
            if (r < 0)
                return false;
            if (r == 0)
                return true;
        }
        more = true;
        return true;
    }

    /// <summary>What to poll for, and for how long at most (milliseconds, -1 = no timeout of its own).</summary>
    internal Libc.PollFd PollFd(out int timeoutMs)
    {
        var fd = SdBus.GetFd(_bus);
        var events = SdBus.GetEvents(_bus);
        ulong until;
        timeoutMs = -1;
        if (SdBus.GetTimeout(_bus, &until) >= 0 && until != ulong.MaxValue)
        {
            // sd-bus answers in absolute CLOCK_MONOTONIC µs, the clock Stopwatch reads on Linux.
            var nowUs = (ulong)(Stopwatch.GetTimestamp() / (Stopwatch.Frequency / 1_000_000));
            timeoutMs = until <= nowUs ? 0 : (int)Math.Min(int.MaxValue, (until - nowUs + 999) / 1000);
        }
        return new Libc.PollFd { Fd = fd, Events = (short)(events < 0 ? Libc.POLLIN : events) };
    }

    /// <summary>Whether sd-bus holds output the socket has not taken yet (it asks to poll for POLLOUT).</summary>
    public bool WantsToWrite => SdBus.GetEvents(_bus) is var events and > 0 && (events & Libc.POLLOUT) != 0;

    public void RequestName(string name) =>
        BusException.Check(SdBus.RequestName(_bus, name, 0), $"own the name {name}");

    public BusMessage NewSignal(string path, string iface, string member)
    {
        nint m;
        BusException.Check(SdBus.MessageNewSignal(_bus, &m, path, iface, member), $"signal {iface}.{member}");
        return new BusMessage(m);
    }

    public BusMessage NewMethodCall(string? destination, string path, string iface, string member)
    {
        nint m;
        BusException.Check(SdBus.MessageNewMethodCall(_bus, &m, destination, path, iface, member), $"call {iface}.{member}");
        return new BusMessage(m);
    }

    /// <summary>Queues a message (sent as the loop flushes) and releases the caller's reference.</summary>
    public void Send(BusMessage message)
    {
        try
        {
            BusException.Check(SdBus.Send(_bus, message.Handle, null), $"send {message.Member}");
        }
        finally
        {
            SdBus.MessageUnref(message.Handle);
        }
    }

    /// <summary>
    /// Calls and waits for the reply (other messages are queued meanwhile, not dispatched). The call
    /// message is released; the caller releases the reply with <see cref="Release"/>. An error reply
    /// throws with its D-Bus name.
    /// </summary>
    public BusMessage Call(BusMessage call, TimeSpan timeout)
    {
        var error = new SdBus.Error();
        nint reply = 0;
        try
        {
            var r = SdBus.Call(_bus, call.Handle, (ulong)(timeout.TotalMilliseconds * 1000), &error, &reply);
            if (r < 0)
            {
                var name = error.Name == 0 ? null : Marshal.PtrToStringUTF8(error.Name);
                throw new BusException($"{call.Member}", -r, name, error.Message == 0 ? null : Marshal.PtrToStringUTF8(error.Message));
            }
            return new BusMessage(reply);
        }
        finally
        {
            SdBus.ErrorFree(&error);
            SdBus.MessageUnref(call.Handle);
        }
    }

    public static void Release(BusMessage message) => SdBus.MessageUnref(message.Handle);

    /// <summary>A reference of the caller's own to a message, to answer a call later; given back with <see cref="Release"/>.</summary>
    public static BusMessage Hold(BusMessage message) => new(SdBus.MessageRef(message.Handle));

    /// <summary>An empty method return for <paramref name="call"/>; fill it, then <see cref="Reply"/>.</summary>
    public static BusMessage NewReturn(BusMessage call)
    {
        nint m;
        BusException.Check(SdBus.MessageNewMethodReturn(call.Handle, &m), $"reply to {call.Member}");
        return new BusMessage(m);
    }

    /// <summary>Sends a reply on the connection its call came from, and releases it.</summary>
    public static void Reply(BusMessage reply)
    {
        try
        {
            BusException.Check(SdBus.Send(0, reply.Handle, null), "send reply");
        }
        finally
        {
            SdBus.MessageUnref(reply.Handle);
        }
    }

    /// <summary>Replies to <paramref name="call"/> with a D-Bus error.</summary>
    public static void ReplyError(BusMessage call, string name, string message)
    {
        var error = new SdBus.Error();
        try
        {
            SdBus.ErrorSet(&error, name, message);
            SdBus.ReplyMethodError(call.Handle, &error);
        }
        finally
        {
            SdBus.ErrorFree(&error);
        }
    }

    /// <summary>systemd's escaping of <paramref name="id"/> as the last element of an object path under <paramref name="prefix"/>.</summary>
    public static string EncodePath(string prefix, string id)
    {
        nint path;
        BusException.Check(SdBus.PathEncode(prefix, id, &path), $"object path for '{id}'");
        try
        {
            return Marshal.PtrToStringUTF8(path)!;
        }
        finally
        {
            NativeMemory.Free((void*)path);
        }
    }

    public void EmitPropertiesChanged(string path, string iface, IReadOnlyList<string> names)
    {
        using var strv = new NativeStrv(names);
        BusException.Check(SdBus.EmitPropertiesChanged(_bus, path, iface, strv.Pointer), $"PropertiesChanged on {path}");
    }

    public void EmitInterfacesAdded(string path, params string[] interfaces)
    {
        using var strv = new NativeStrv(interfaces);
        BusException.Check(SdBus.EmitInterfacesAdded(_bus, path, strv.Pointer), $"InterfacesAdded for {path}");
    }

    public void EmitInterfacesRemoved(string path, params string[] interfaces)
    {
        using var strv = new NativeStrv(interfaces);
        BusException.Check(SdBus.EmitInterfacesRemoved(_bus, path, strv.Pointer), $"InterfacesRemoved for {path}");
    }

    public void AddObjectManager(string path)
    {
        BusException.Check(SdBus.AddObjectManager(_bus, null, path), $"object manager at {path}");
    }

    public void Flush() => SdBus.Flush(_bus);

    public void Dispose()
    {
        if (_bus != 0)
            SdBus.FlushCloseUnref(_bus);
        _bus = 0;
    }
}
