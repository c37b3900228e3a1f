using System.Diagnostics.CodeAnalysis;
using ErrorWatch.Modules;

namespace ErrorWatch.Health.KernelLog;

/// <summary>
/// Recognises the filesystems' error lines (kernel-abi.md §7.7) through the dialects their modules
/// provide (ext4's, XFS's), and turns a line one of them reads into a <see cref="KernelLogSignal"/>
/// whose <see cref="KernelLogSignal.FsType"/> is the module's own type name.
/// </summary>
/// <remarks>
/// The text is matched whoever wrote it; <see cref="KernelLogSignal.IsTrusted"/> says whether the
/// kernel did. Callers must drop untrusted signals: any process that can write /dev/kmsg (root by
/// default, root in a container that exposes it, anyone if the node is made writable) can print any
/// text, and only the facility tells its lines apart.
/// </remarks>
public sealed class KernelLogMatcher
{
    /// <summary>CONSOLE_EXT_LOG_MAX: no kernel record is longer, so a longer message is not one worth parsing.</summary>
    public const int MaxMessageBytes = 8192;

    private readonly (string FsType, IKernelLogDialect Dialect)[] _dialects;

    public KernelLogMatcher(FilesystemModules modules) =>
        _dialects = modules.Registered.Where(m => m.KernelLog is not null && m.TypeNames.Count > 0)
            .Select(m => (m.TypeNames[0], m.KernelLog!)).ToArray();

    public bool TryMatch(in KmsgRecord record, [NotNullWhen(true)] out KernelLogSignal? signal)
    {
        signal = null;
        var bytes = record.Message;
        if (bytes.Length > MaxMessageBytes)
            return false;

        // Cheap byte checks first: almost every record is about something else and needs no string.
        foreach (var (fsType, dialect) in _dialects)
        {
            if (!dialect.Claims(bytes))
                continue;
            var text = record.MessageText;
            KernelLogLine draft = default;
            if (!dialect.TryParse(text, ref draft))
                return false;
            signal = Signal(record, fsType, text, draft);
            return true;
        }
        return false;
    }

    private static KernelLogSignal Signal(in KmsgRecord record, string fsType, string text, in KernelLogLine draft) =>
        new()
        {
            FsType = fsType,
            DeviceName = draft.Device,
            Kind = draft.Kind,
            Facility = record.Facility,
            Level = record.Level,
            Sequence = record.Sequence,
            TimestampMicroseconds = record.TimestampMicroseconds,
            Message = text,
            Inode = draft.Inode,
            Daddr = draft.Daddr,
            Block = draft.Block,
            Errno = draft.Errno,
            Function = draft.Function,
            Line = draft.Line,
            Comm = draft.Comm,
        };
}
