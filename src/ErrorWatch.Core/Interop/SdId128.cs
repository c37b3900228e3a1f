using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// Mirrors one call of &lt;systemd/sd-id128.h&gt; (libsystemd.so.0, since v233): an id derived from
/// /etc/machine-id for one application, so the machine id itself (confidential, machine-id(5)) never
/// leaves the machine. libsystemd keys an HMAC-SHA256 with the machine id itself, which keeps
/// ErrorWatch from loading libcrypto for one hash at start (3.7 MiB of RSS, docs/performance.md).
/// </summary>
internal static unsafe partial class SdId128
{
    // typedef union sd_id128 { uint8_t bytes[16]; uint64_t qwords[2]; } sd_id128_t;
    // Passed by value: 16 bytes of INTEGER class, two registers in the x86-64 and AArch64 ABIs.
    [StructLayout(LayoutKind.Sequential)]
    public struct Id
    {
        public ulong Low;
        public ulong High;
    }

    /// <summary>
    /// int sd_id128_get_machine_app_specific(sd_id128_t app_id, sd_id128_t *ret): 0, or a negative
    /// errno (-ENOENT, -ENOMEDIUM: no or empty /etc/machine-id). The result is formatted as a v4 UUID.
    /// </summary>
    [LibraryImport(SdJournal.Lib, EntryPoint = "sd_id128_get_machine_app_specific")]
    public static partial int GetMachineAppSpecific(Id appId, Id* result);
}
