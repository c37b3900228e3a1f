using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using ErrorWatch.Bus;
using ErrorWatch.Interop;

namespace ErrorWatch.Publishing.DBus;

/// <summary>The answer to "may this caller do that": allowed, or refused with a reason and the D-Bus error to reply with.</summary>
public readonly record struct Verdict(bool Allowed, string Reason, string ErrorName = BusNames.AccessDenied)
{
    /// <summary>Refused before polkit was asked: too many checks are waiting already.</summary>
    public bool OverLimit => ErrorName == BusNames.LimitsExceeded;
}

/// <summary>How many polkit checks may wait at once, and how long each may wait (docs/dbus-api.md, Limits).</summary>
public sealed record AuthorizationLimits
{
    /// <summary>Checks one user (uid, over all of its connections) may have waiting for polkit.</summary>
    public int PerUser { get; init; } = 16;
    /// <summary>Checks waiting for polkit over all users; below dbus-daemon's 128 pending replies per connection, so this limit, with its clear error, is met first.</summary>
    public int Total { get; init; } = 64;
    /// <summary>How long polkit may take to answer without asking anyone for a password.</summary>
    public TimeSpan CheckTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How long polkit may take when it may ask for a password (the caller allowed interactive authorization).</summary>
    public TimeSpan InteractiveTimeout { get; init; } = TimeSpan.FromSeconds(120);
}

/// <summary>
/// Who may call a privileged member: root (effective uid as the bus daemon reports it, never what
/// the message claims), otherwise whoever polkit authorizes for the action. Without polkit on the
/// bus only root is allowed. polkit is asked asynchronously, so a slow or interactive
/// authorization never holds up the bus thread; and since every waiting check keeps the caller's
/// message, the number waiting is capped per user and in total (a caller beyond the cap is
/// answered LimitsExceeded at once) and each check times out. One instance per bus connection
/// owner, used on its bus thread only.
/// </summary>
public sealed unsafe class Authorization
{
    private const string Polkit = "org.freedesktop.PolicyKit1";
    private const string NoReply = "org.freedesktop.DBus.Error.NoReply";

    // sd-bus gets a token, not a GCHandle: a check whose connection is dropped is forgotten here
    // (Abandon), and a callback that might still come for it finds nothing instead of a freed handle.
    private static readonly ConcurrentDictionary<long, Pending> Waiting = new();
    private static long _lastToken;

    private readonly AuthorizationLimits _limits;
    private readonly Dictionary<uint, int> _perUser = new();
    private int _waiting, _peak;

    public Authorization(AuthorizationLimits limits) => _limits = limits;

    /// <summary>Checks now waiting for polkit.</summary>
    public int WaitingChecks => Volatile.Read(ref _waiting);
    /// <summary>The most checks that ever waited at once.</summary>
    public int PeakWaitingChecks => Volatile.Read(ref _peak);

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
    /// (at once for root and for a caller over the limits). The call message is kept alive until
    /// then, so it can be replied to. polkit may ask for a password only when
    /// <paramref name="mayPrompt"/> and the caller allowed interactive authorization.
    /// </summary>
    public void Check(BusConnection bus, BusMessage call, string action, bool mayPrompt, Action<BusMessage, Verdict> then)
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
        // Per uid, not per bus name: one user can open hundreds of connections.
        var mine = _perUser.GetValueOrDefault(uid.Value);
        if (mine >= _limits.PerUser)
        {
            then(call, new Verdict(false, $"uid {uid} already has {mine} authorization checks waiting for polkit; try again later", BusNames.LimitsExceeded));
            return;
        }
        if (_waiting >= _limits.Total)
        {
            then(call, new Verdict(false, $"{_waiting} authorization checks are waiting for polkit, the most allowed in total; try again later", BusNames.LimitsExceeded));
            return;
        }
        var interactive = mayPrompt && call.AllowsInteractiveAuthorization;
        var timeout = interactive ? _limits.InteractiveTimeout : _limits.CheckTimeout;
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
            query.Append(interactive ? 1u : 0u); // AllowUserInteraction
            query.Append("");
        }
        catch
        {
            BusConnection.Release(query);
            throw;
        }
        var token = Interlocked.Increment(ref _lastToken);
        var pending = new Pending(this, new BusMessage(SdBus.MessageRef(call.Handle)), uid.Value, action, timeout, then);
        Waiting[token] = pending;
        Count(uid.Value, +1);
        // sd-bus answers a call polkit leaves unanswered with NoReply after the timeout.
        var r = SdBus.CallAsync(bus.Handle, null, query.Handle, &OnReply, (nint)token, (ulong)timeout.TotalMicroseconds);
        BusConnection.Release(query);
        if (r < 0 && Waiting.TryRemove(token, out _))
        {
            Count(uid.Value, -1);
            pending.Finish(new Verdict(false, $"polkit could not be asked: {ErrnoTable.Name(-r)}"));
        }
    }

    /// <summary>
    /// The connection is gone, and with it every caller waiting for an answer: their checks are
    /// dropped (sd-bus frees its side with the connection) so the counts start from zero again.
    /// </summary>
    public void Abandon()
    {
        foreach (var (token, pending) in Waiting)
        {
            if (pending.Owner == this && Waiting.TryRemove(token, out _))
                SdBus.MessageUnref(pending.Call.Handle);
        }
        _perUser.Clear();
        Volatile.Write(ref _waiting, 0);
    }

    private void Count(uint uid, int change)
    {
        var now = _perUser.GetValueOrDefault(uid) + change;
        if (now > 0)
            _perUser[uid] = now;
        else
            _perUser.Remove(uid);
        Volatile.Write(ref _waiting, _waiting + change);
        if (_waiting > _peak)
            Volatile.Write(ref _peak, _waiting);
    }

    private sealed record Pending(Authorization Owner, BusMessage Call, uint Uid, string Action, TimeSpan Timeout, Action<BusMessage, Verdict> Then)
    {
        public long Started { get; } = System.Diagnostics.Stopwatch.GetTimestamp();

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
        // Not waiting any more: abandoned with a connection that is going away.
        if (!Waiting.TryRemove(userdata, out var pending))
            return 0;
        try
        {
            pending.Owner.Count(pending.Uid, -1);
            pending.Finish(Decide(new BusMessage(reply), pending));
        }
        catch (Exception)
        {
            // Finish replies; if even that failed the caller gets the bus's own error on its timeout.
        }
        return 0;
    }

    private static Verdict Decide(BusMessage reply, Pending pending)
    {
        if (reply.Error is { } e)
        {
            return e.Name switch
            {
                "org.freedesktop.DBus.Error.ServiceUnknown" or "org.freedesktop.DBus.Error.NameHasNoOwner" =>
                    new Verdict(false, $"polkit is not available to authorize uid {pending.Uid} for {pending.Action}; only root may do this"),
                // NoReply is also the bus's answer when polkit leaves it (crashed, restarted) mid-check:
                // well before the timeout, that is what happened, and "did not answer within 120 s" would mislead.
                NoReply when System.Diagnostics.Stopwatch.GetElapsedTime(pending.Started) < pending.Timeout * 0.9 =>
                    new Verdict(false, $"polkit went away before answering for uid {pending.Uid} about {pending.Action} ({e.Message}); try again"),
                NoReply => new Verdict(false, $"polkit did not answer for uid {pending.Uid} about {pending.Action} within {pending.Timeout.TotalSeconds:0} s ({e.Message})"),
                _ => new Verdict(false, $"polkit refused to answer for uid {pending.Uid}: {e.Name}: {e.Message}"),
            };
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
