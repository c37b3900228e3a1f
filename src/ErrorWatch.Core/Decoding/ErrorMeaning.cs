using ErrorWatch.Interop;
using ErrorWatch.Reports;

namespace ErrorWatch.Decoding;

/// <summary>An errno as one filesystem means it.</summary>
public sealed record ErrorMeaning(int Errno, string Name, string Description, ErrorCategory Category, string Meaning)
{
    /// <summary>The filesystem's own name for the errno (EFSCORRUPTED for EUCLEAN, EFSBADCRC for EBADMSG).</summary>
    public string? Alias { get; init; }

    /// <summary>The errno's generic meaning (glibc text), for filesystems with no decoder of their own.</summary>
    public static ErrorMeaning Generic(int errno)
    {
        ErrnoTable.TryGet(errno, out var name, out var text);
        var category = errno switch
        {
            Libc.EUCLEAN or Libc.EBADMSG => ErrorCategory.Corruption,
            Libc.EIO or 61 /* ENODATA */ or 110 /* ETIMEDOUT */ or 67 /* ENOLINK */ => ErrorCategory.Io,
            Libc.ESHUTDOWN => ErrorCategory.Shutdown,
            Libc.EROFS => ErrorCategory.ReadOnly,
            Libc.ENOMEM or Libc.ENOSPC => ErrorCategory.Resource,
            _ => ErrorCategory.Other,
        };
        return new ErrorMeaning(errno, name, text, category, text.ToLowerInvariant());
    }
}
