using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using ErrorWatch.Configuration;
using ErrorWatch.Interop;

namespace ErrorWatch.Daemon;

/// <summary>What <see cref="Privileges.Shed"/> left the daemon with.</summary>
/// <param name="Held">The effective capabilities of the calling thread afterwards (with a re-exec: of every thread).</param>
/// <param name="ReExecuted">This process image is the re-executed one, started with only <see cref="Privileges.Needed"/> in reach.</param>
/// <param name="Problem">What could not be dropped and why, or null.</param>
public sealed record PrivilegeReport(CapabilitySet Held, bool ReExecuted, string? Problem);

/// <summary>
/// Keeps only the capabilities the daemon needs, whoever started it (systemd's unit already limits
/// them; sudo, a root shell or a privileged container do not). Capabilities are per thread and the
/// .NET runtime starts threads before Main, so no call in this process can take them from every
/// thread. Instead the calling thread shrinks its bounding set and clears its inheritable and
/// ambient sets, then executes itself again with the same arguments: for root, the kernel
/// computes the new image's permitted and effective sets from the bounding set (capabilities(7),
/// "Transformation of capabilities during execve"), so every thread of the new image, and every
/// hook it starts, holds only what was kept. Where nothing needs dropping (the unit) nothing is
/// executed again.
/// </summary>
public static class Privileges
{
    /// <summary>Set to the pid for the re-executed image: the pid survives execve, so an inherited value never matches and the re-exec never loops.</summary>
    public const string ReExecMarker = "ERRORWATCH_REEXEC_PID";

    /// <summary>
    /// What the daemon itself always uses: fanotify_init, FAN_MARK_FILESYSTEM marks and XFS health
    /// ioctls (CAP_SYS_ADMIN), open_by_handle_at for paths (CAP_DAC_READ_SEARCH). The same two as the
    /// unit's CapabilityBoundingSet=.
    /// </summary>
    public static readonly CapabilitySet Daemon = CapabilitySet.Of(Capability.CAP_SYS_ADMIN, Capability.CAP_DAC_READ_SEARCH);

    /// <summary>
    /// Reading /dev/kmsg under kernel.dmesg_restrict=1 (CAP_SYSLOG), kept while [Health] KernelLog=yes:
    /// started outside the unit (sudo, a container) the daemon reads /dev/kmsg, and a container often
    /// has no journal to fall back on. The unit has no CAP_SYSLOG (ProtectKernelLogs=yes): there the
    /// daemon reads the kernel's lines from the journal, and what is not held is not dropped.
    /// </summary>
    public static readonly CapabilitySet KernelLog = CapabilitySet.Of(Capability.CAP_SYSLOG);

    /// <summary>
    /// Lowering the event threads' nice value ([Watch] PriorityBoost, <see cref="EventThreadPriority"/>):
    /// they start after the capabilities are shed, and RLIMIT_NICE cannot be raised without
    /// CAP_SYS_RESOURCE, which is worth less kept than this. Beside CAP_SYS_ADMIN it adds little. The
    /// unit holds neither it nor the system call (docs/operations.md, Latency).
    /// </summary>
    public static readonly CapabilitySet PriorityBoost = CapabilitySet.Of(Capability.CAP_SYS_NICE);

    /// <summary>
    /// <see cref="Daemon"/>, plus <see cref="KernelLog"/> unless [Health] KernelLog=no, plus
    /// <see cref="PriorityBoost"/> unless [Watch] PriorityBoost=0, plus [Hooks]
    /// Capabilities= (hooks run as root get the bounding set), plus CAP_NET_BIND_SERVICE when a
    /// [Metrics] Listen= port is below net.ipv4.ip_unprivileged_port_start.
    /// </summary>
    public static CapabilitySet Needed(ErrorWatchSettings settings)
    {
        var needed = Daemon | CapabilitySet.Named(settings.Hooks.Capabilities);
        if (settings.Health.KernelLog)
            needed |= KernelLog;
        if (settings.Watch.PriorityBoost > 0)
            needed |= PriorityBoost;
        var unprivileged = UnprivilegedPortStart();
        if (settings.Metrics.Listen.Any(endpoint => Port(endpoint) is { } port && port < unprivileged))
            needed |= CapabilitySet.Of(Capability.CAP_NET_BIND_SERVICE);
        return needed;
    }

    /// <summary>
    /// Drops every capability outside <paramref name="keep"/> and executes this program again to
    /// make it hold for every thread; returns when there was nothing to drop, in the re-executed
    /// image, or when dropping or re-executing failed (said in <see cref="PrivilegeReport.Problem"/>:
    /// never a reason not to start). Call it before anything is opened: descriptors not marked
    /// close-on-exec would survive the re-exec.
    /// </summary>
    public static PrivilegeReport Shed(CapabilitySet keep)
    {
        var root = Libc.GetEuid() == 0;
        var reExecuted = Environment.GetEnvironmentVariable(ReExecMarker) == Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        if (!ThreadCapabilities.TryRead(out var own, out var unreadable))
            return new(CapabilitySet.None, reExecuted, unreadable);
        var excess = own.Excess(keep, root);
        if (excess.IsEmpty)
            return new(own.Effective, reExecuted, null);
        if (reExecuted)
            return new(own.Effective, true, $"still holding {excess} after re-executing");
        var changed = own.Drop(keep, root, out var refused);
        ThreadCapabilities.TryRead(out var dropped, out _);
        // For root the bounding set decides what the new image holds: unless it shrank, executing again gains nothing.
        if (!changed || (root && !dropped.Bounding.Except(keep).IsEmpty))
            return new(own.Effective, false, $"cannot drop {excess}: {refused ?? "nothing could be changed"}");
        var failure = ReExecute();
        return new(dropped.Effective, false, $"re-executing /proc/self/exe failed ({failure}), so the runtime's other threads still hold {excess}");
    }

    /// <summary>
    /// execve of this program (<see cref="ProgramPath"/>) with argv from /proc/self/cmdline and the environment from
    /// /proc/self/environ (the bytes this process was started with: the apphost and
    /// `dotnet ErrorWatch.Cli.dll` both start again the same way) plus the marker. Returns only on failure, with why.
    /// </summary>
    private static unsafe string ReExecute()
    {
        List<byte[]> argv, environment;
        try
        {
            argv = NulSeparated(File.ReadAllBytes("/proc/self/cmdline"));
            environment = NulSeparated(File.ReadAllBytes("/proc/self/environ"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return e.Message;
        }
        if (argv.Count == 0)
            return "/proc/self/cmdline is empty";
        var marker = Encoding.ASCII.GetBytes(ReExecMarker + "=");
        environment.RemoveAll(entry => entry.AsSpan().StartsWith(marker));
        environment.Add([.. marker, .. Encoding.ASCII.GetBytes(Environment.ProcessId.ToString(CultureInfo.InvariantCulture))]);

        RemoveDiagnosticsSocket();

        var strings = new List<nint>();
        try
        {
            byte** NativeArray(List<byte[]> items)
            {
                var array = (byte**)NativeMemory.AllocZeroed((nuint)(items.Count + 1), (nuint)sizeof(nint));
                strings.Add((nint)array);
                for (var i = 0; i < items.Count; i++)
                {
                    var s = (byte*)NativeMemory.AllocZeroed((nuint)items[i].Length + 1);
                    strings.Add((nint)s);
                    items[i].CopyTo(new Span<byte>(s, items[i].Length));
                    array[i] = s;
                }
                return array;
            }
            var path = Encoding.UTF8.GetBytes(ProgramPath() + "\0");
            fixed (byte* p = path)
            {
                Libc.Execve(p, NativeArray(argv), NativeArray(environment));
                return ErrnoTable.Name(Libc.LastErrno);
            }
        }
        finally
        {
            foreach (var s in strings)
                NativeMemory.Free((void*)s);
        }
    }

    /// <summary>
    /// The program's own path while it is still this program (same device and inode as
    /// /proc/self/exe), else /proc/self/exe (replaced by an upgrade, or deleted): executed through
    /// /proc/self/exe the process would be named "exe" in ps, top, pidof and the journal's _COMM.
    /// </summary>
    private static unsafe string ProgramPath()
    {
        const string self = "/proc/self/exe";
        var path = Environment.ProcessPath;
        if (string.IsNullOrEmpty(path) || !path.StartsWith('/'))
            return self;
        var a = stackalloc byte[Libc.StatxSize];
        var b = stackalloc byte[Libc.StatxSize];
        if (Libc.Statx(Libc.AT_FDCWD, self, 0, Libc.STATX_INO, a) != 0 || Libc.Statx(Libc.AT_FDCWD, path, 0, Libc.STATX_INO, b) != 0)
            return self;
        static (ulong, uint, uint) Identity(byte* x) =>
            (*(ulong*)(x + Libc.StatxInoOffset), *(uint*)(x + Libc.StatxDevMajorOffset), *(uint*)(x + Libc.StatxDevMinorOffset));
        return Identity(a) == Identity(b) ? path : self;
    }

    /// <summary>
    /// The runtime's diagnostics socket ($TMPDIR/dotnet-diagnostic-PID-KEY-socket) is named by the
    /// pid and the process's start time, which both survive execve: left in place, the new image
    /// could not listen there and dotnet-trace would find a dead socket.
    /// </summary>
    private static void RemoveDiagnosticsSocket()
    {
        try
        {
            foreach (var socket in Directory.EnumerateFiles(Path.GetTempPath(), $"dotnet-diagnostic-{Environment.ProcessId}-*-socket"))
                File.Delete(socket);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static List<byte[]> NulSeparated(byte[] bytes)
    {
        var items = new List<byte[]>();
        var start = 0;
        for (var i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == 0)
            {
                items.Add(bytes[start..i]);
                start = i + 1;
            }
        }
        if (start < bytes.Length)
            items.Add(bytes[start..]);
        return items;
    }

    /// <summary>The TCP port of a [Metrics] Listen= endpoint (host:port, [v6]:port), or null for unix:/path.</summary>
    internal static int? Port(string endpoint)
    {
        if (endpoint.StartsWith("unix:", StringComparison.Ordinal))
            return null;
        var colon = endpoint.LastIndexOf(':');
        return colon >= 0 && int.TryParse(endpoint.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ? port : null;
    }

    /// <summary>net.ipv4.ip_unprivileged_port_start of this network namespace (1024 unless changed; it covers IPv6 too).</summary>
    private static int UnprivilegedPortStart()
    {
        try
        {
            return int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_unprivileged_port_start").Trim(), CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException)
        {
            return 1024;
        }
    }

    /// <summary>The calling thread's five capability sets.</summary>
    private readonly record struct ThreadCapabilities(CapabilitySet Effective, CapabilitySet Permitted, CapabilitySet Inheritable, CapabilitySet Bounding, CapabilitySet Ambient)
    {
        public static unsafe bool TryRead(out ThreadCapabilities sets, out string? problem)
        {
            sets = default;
            problem = null;
            var header = new Capability.Header { Version = Capability.Version3 };
            var data = stackalloc Capability.Data[Capability.U32sVersion3];
            if (Capability.CapGet(&header, data) != 0)
            {
                problem = $"capget: {ErrnoTable.Name(Libc.LastErrno)}";
                return false;
            }
            static CapabilitySet Join(uint low, uint high) => new(low | ((ulong)high << 32));
            // Capabilities this kernel does not know read as EINVAL: the first one ends both loops.
            var bounding = CapabilitySet.None;
            var ambient = CapabilitySet.None;
            for (var c = 0; c < 64; c++)
            {
                var inBounding = Capability.Prctl(Capability.PR_CAPBSET_READ, (nuint)c, 0, 0, 0);
                if (inBounding < 0)
                    break;
                if (inBounding == 1)
                    bounding |= CapabilitySet.Of(c);
                // Before Linux 4.3 there is no ambient set: EINVAL, read as empty.
                if (Capability.Prctl(Capability.PR_CAP_AMBIENT, Capability.PR_CAP_AMBIENT_IS_SET, (nuint)c, 0, 0) == 1)
                    ambient |= CapabilitySet.Of(c);
            }
            sets = new(Join(data[0].Effective, data[1].Effective), Join(data[0].Permitted, data[1].Permitted),
                Join(data[0].Inheritable, data[1].Inheritable), bounding, ambient);
            return true;
        }

        /// <summary>
        /// What a new image would hold or could pass on beyond <paramref name="keep"/>. For root the
        /// new permitted set is the bounding set plus the inheritable and ambient sets, none of which
        /// root needs. For another user it is the ambient set (which needs the inheritable bits), and
        /// the bounding set matters only where it can be shrunk (with CAP_SETPCAP): an unprivileged
        /// run with a full bounding set and nothing else is left alone.
        /// </summary>
        public CapabilitySet Excess(CapabilitySet keep, bool root) => root
            ? (Permitted | Bounding).Except(keep) | Inheritable | Ambient
            : (Permitted | Inheritable | Ambient).Except(keep) | (Effective.Contains(Capability.CAP_SETPCAP) ? Bounding.Except(keep) : CapabilitySet.None);

        /// <summary>Shrinks the calling thread's ambient, bounding and inheritable sets; false when nothing could be changed (with why).</summary>
        public unsafe bool Drop(CapabilitySet keep, bool root, out string? refused)
        {
            refused = null;
            var changed = false;
            if (root && !Ambient.IsEmpty)
                changed |= Capability.Prctl(Capability.PR_CAP_AMBIENT, Capability.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) == 0;
            else
            {
                foreach (var c in Ambient.Except(keep).Numbers())
                    changed |= Capability.Prctl(Capability.PR_CAP_AMBIENT, Capability.PR_CAP_AMBIENT_LOWER, (nuint)c, 0, 0) == 0;
            }
            foreach (var c in Bounding.Except(keep).Numbers())
            {
                // Dropping from the bounding set leaves this thread's effective set alone, so
                // CAP_SETPCAP stays usable for the rest of the loop even when it goes itself.
                if (Capability.Prctl(Capability.PR_CAPBSET_DROP, (nuint)c, 0, 0, 0) == 0)
                    changed = true;
                else
                {
                    refused = $"the bounding set cannot shrink ({ErrnoTable.Name(Libc.LastErrno)}{(Effective.Contains(Capability.CAP_SETPCAP) ? "" : ": no CAP_SETPCAP")})";
                    break;
                }
            }
            var inheritable = root ? CapabilitySet.None : Inheritable & keep;
            if (inheritable != Inheritable)
            {
                var header = new Capability.Header { Version = Capability.Version3 };
                var data = stackalloc Capability.Data[Capability.U32sVersion3];
                for (var i = 0; i < Capability.U32sVersion3; i++)
                {
                    data[i].Effective = (uint)(Effective.Mask >> (32 * i));
                    data[i].Permitted = (uint)(Permitted.Mask >> (32 * i));
                    data[i].Inheritable = (uint)(inheritable.Mask >> (32 * i));
                }
                if (Capability.CapSet(&header, data) == 0)
                    changed = true;
                else
                    refused = (refused is null ? "" : refused + "; ") + $"capset: {ErrnoTable.Name(Libc.LastErrno)}";
            }
            return changed;
        }
    }
}
