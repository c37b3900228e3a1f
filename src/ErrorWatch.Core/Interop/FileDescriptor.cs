using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>An owned file descriptor; -1 is invalid (0 is a valid fd).</summary>
internal sealed class FileDescriptor : SafeHandle
{
    public FileDescriptor(int fd) : base(new IntPtr(-1), ownsHandle: true) => SetHandle(new IntPtr(fd));

    public int Fd => (int)handle;
    public override bool IsInvalid => handle == new IntPtr(-1);

    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}
