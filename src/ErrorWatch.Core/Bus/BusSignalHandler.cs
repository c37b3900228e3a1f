using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using ErrorWatch.Interop;

namespace ErrorWatch.Bus;

/// <summary>
/// Receives the signals that match rules select, on whichever connections the rules are added to
/// (a <see cref="BusLoop"/> adds them again after each reconnection). The handler runs on the
/// connection's thread; nothing it throws reaches sd-bus. Dispose only once no connection that
/// holds one of its matches is open any more (the matches refer to it).
/// </summary>
public sealed unsafe class BusSignalHandler : IDisposable
{
    private readonly Action<BusMessage> _handle;
    private readonly Action<Exception> _failed;
    private GCHandle _self;

    /// <param name="handle">Reads the signal (borrowed: valid during the call only).</param>
    /// <param name="failed">Told what <paramref name="handle"/> threw; the signal is then dropped.</param>
    public BusSignalHandler(Action<BusMessage> handle, Action<Exception> failed)
    {
        _handle = handle;
        _failed = failed;
        _self = GCHandle.Alloc(this);
    }

    /// <summary>Signals from <paramref name="sender"/> (a well-known name is matched by the bus daemon against its current owner).</summary>
    public void Match(BusConnection bus, string? sender, string? path, string? iface, string? member) =>
        BusException.Check(SdBus.MatchSignal(bus.Handle, null, sender, path, iface, member,
            (delegate* unmanaged[Cdecl]<nint, nint, SdBus.Error*, int>)&OnSignal, GCHandle.ToIntPtr(_self)), $"match {iface}.{member}");

    /// <summary>A match rule in D-Bus syntax (<see cref="Rule"/>), for what <see cref="Match"/> cannot say (arg0).</summary>
    public void MatchRule(BusConnection bus, string rule) =>
        BusException.Check(SdBus.AddMatch(bus.Handle, null, rule,
            (delegate* unmanaged[Cdecl]<nint, nint, SdBus.Error*, int>)&OnSignal, GCHandle.ToIntPtr(_self)), $"match {rule}");

    /// <summary>org.freedesktop.DBus.NameOwnerChanged for one name only: (s name, s old_owner, s new_owner).</summary>
    public void MatchOwnerChanges(BusConnection bus, string name) =>
        MatchRule(bus, Rule(("sender", "org.freedesktop.DBus"), ("path", "/org/freedesktop/DBus"),
            ("interface", "org.freedesktop.DBus"), ("member", "NameOwnerChanged"), ("arg0", name)));

    /// <summary>"type='signal',key='value',...", quotes in values escaped as the D-Bus specification says.</summary>
    public static string Rule(params (string Key, string Value)[] parts)
    {
        var rule = new StringBuilder("type='signal'");
        foreach (var (key, value) in parts)
            rule.Append(',').Append(key).Append("='").Append(value.Replace("'", "'\\''", StringComparison.Ordinal)).Append('\'');
        return rule.ToString();
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnSignal(nint message, nint userdata, SdBus.Error* error)
    {
        try
        {
            var handler = (BusSignalHandler)GCHandle.FromIntPtr(userdata).Target!;
            try
            {
                handler._handle(new BusMessage(message));
            }
            catch (Exception e)
            {
                handler._failed(e);
            }
        }
        catch (Exception)
        {
            // The failure report failed too: nothing may escape into sd-bus.
        }
        // 0: other matches (and sd-bus's own handlers) see the signal as well.
        return 0;
    }

    public void Dispose()
    {
        if (_self.IsAllocated)
            _self.Free();
    }
}
