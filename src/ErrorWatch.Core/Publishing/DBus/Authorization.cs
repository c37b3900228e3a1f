using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ErrorWatch.Bus;
using ErrorWatch.Interop;

namespace ErrorWatch.Publishing.DBus;

/// <summary>The answer to "may this caller do that": allowed, or refused with a reason.</summary>
public readonly record struct Verdict(bool Allowed, string Reason);

/// <summary>
/// Who may call a privileged member: root (effective uid as the bus daemon reports it, never what
/// the message claims), otherwise whoever polkit authorizes for the action. Without polkit on the
/// bus only root is allowed. polkit is asked asynchronously, so a slow or interactive
/// authorization never holds up the bus thread.
/// </summary>
public static unsafe class Authorization
{
    private const string Polkit = "org.freedesktop.PolicyKit1";
    private static readonly ulong CheckTimeoutUs = 25_000_000;
    private static readonly ulong InteractiveTimeoutUs = 120_000_000;

    /// <summary>The caller's effective uid, or null when the bus daemon cannot say.</summary>
    public static uint? CallerUid(BusMessage call)
    {
        nint creds;
        if (SdBus.QuerySenderCreds(call.Handle, SdBus.CredsEuid, &creds) < 0)
            return null;
        try
        {
            uint euid;
            return SdBus.CredsGetEuid(creds, &euid) < 0 ? null : euid;
        }
        finally
        {
            SdBus.CredsUnref(creds);
        }
    }

    /// <summary>
    /// Decides for <paramref name="call"/> and then runs <paramref name="then"/> on the bus thread
    /// (at once for root). The call message is kept alive until then, so it can be replied to.
    /// </summary>
    public static void Check(BusConnection bus, BusMessage call, string action, Action<BusMessage, Verdict> then)
    {
        var uid = CallerUid(call);
        if (uid == 0)
        {
            then(call, new Verdict(true, "root"));
            return;
        }
        var sender = call.Sender;
        if (sender is null || uid is null)
        {
            then(call, new Verdict(false, "the bus daemon did not say who the caller is"));
            return;
        }
        var interactive = call.AllowsInteractiveAuthorization;
        var query = bus.NewMethodCall(Polkit, "/org/freedesktop/PolicyKit1/Authority", "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        try
        {
            // CheckAuthorization((sa{sv}) subject, s action_id, a{ss} details, u flags, s cancellation_id)
            query.Open('r', "sa{sv}");
            query.Append("system-bus-name");
            query.Open('a', "{sv}");
            query.AppendEntry("name", sender);
            query.Close();
            query.Close();
            query.Append(action);
            query.Open('a', "{ss}");
            query.Close();
            query.Append(interactive ? 1u : 0u); // AllowUserInteraction only when the caller allowed it
            query.Append("");
        }
        catch
        {
            BusConnection.Release(query);
            throw;
        }
        var pending = GCHandle.Alloc(new Pending(new BusMessage(SdBus.MessageRef(call.Handle)), uid.Value, action, then));
        var r = SdBus.CallAsync(bus.Handle, null, query.Handle, &OnReply, GCHandle.ToIntPtr(pending), interactive ? InteractiveTimeoutUs : CheckTimeoutUs);
        BusConnection.Release(query);
        if (r < 0)
        {
            var p = (Pending)pending.Target!;
            pending.Free();
            p.Finish(new Verdict(false, $"polkit could not be asked: {ErrnoTable.Name(-r)}"));
        }
    }

    private sealed record Pending(BusMessage Call, uint Uid, string Action, Action<BusMessage, Verdict> Then)
    {
        public void Finish(Verdict verdict)
        {
            try
            {
                Then(Call, verdict);
            }
            finally
            {
                SdBus.MessageUnref(Call.Handle);
            }
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnReply(nint reply, nint userdata, SdBus.Error* error)
    {
        var handle = GCHandle.FromIntPtr(userdata);
        var pending = (Pending)handle.Target!;
        handle.Free();
        try
        {
            pending.Finish(Decide(new BusMessage(reply), pending));
        }
        catch (Exception)
        {
            // Finish replies; if even that failed the caller gets sd-bus's own error on timeout.
        }
        return 0;
    }

    private static Verdict Decide(BusMessage reply, Pending pending)
    {
        if (reply.Error is { } e)
        {
            return e.Name is "org.freedesktop.DBus.Error.ServiceUnknown" or "org.freedesktop.DBus.Error.NameHasNoOwner"
                ? new Verdict(false, $"polkit is not available to authorize uid {pending.Uid} for {pending.Action}; only root may do this")
                : new Verdict(false, $"polkit refused to answer for uid {pending.Uid}: {e.Name}: {e.Message}");
        }
        // (bba{ss}): is_authorized, is_challenge, details
        reply.Enter('r', "bba{ss}");
        var authorized = reply.ReadBoolean();
        var challenge = reply.ReadBoolean();
        return authorized ? new Verdict(true, "polkit")
            : new Verdict(false, challenge
                ? $"uid {pending.Uid} must authenticate for {pending.Action} (call with interactive authorization allowed)"
                : $"uid {pending.Uid} is not authorized for {pending.Action}");
    }
}
