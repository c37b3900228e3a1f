using System.Runtime.InteropServices;

namespace ErrorWatch.Interop;

/// <summary>
/// The non-variadic part of systemd's &lt;systemd/sd-bus.h&gt; (libsystemd.so.0, v242+; 252 here)
/// that ErrorWatch's D-Bus service and clients use. Every function returns a negative errno on
/// failure (no errno variable, so no SetLastError). Strings returned as <c>const char*</c> belong
/// to sd-bus and are copied with <see cref="Marshal.PtrToStringUTF8(nint)"/>, never freed.
/// The variadic helpers (sd_bus_message_append/read, sd_bus_reply_method_return, sd_bus_emit_signal,
/// sd_bus_call_method) cannot be called from .NET on x86_64 and are built from these instead.
/// </summary>
internal static unsafe partial class SdBus
{
    public const string Lib = "libsystemd.so.0";

    // D-Bus type codes (C char), <systemd/sd-bus-protocol.h>.
    public const byte TypeByte = (byte)'y', TypeBoolean = (byte)'b', TypeInt16 = (byte)'n', TypeUInt16 = (byte)'q',
        TypeInt32 = (byte)'i', TypeUInt32 = (byte)'u', TypeInt64 = (byte)'x', TypeUInt64 = (byte)'t',
        TypeDouble = (byte)'d', TypeString = (byte)'s', TypeObjectPath = (byte)'o', TypeSignature = (byte)'g',
        TypeUnixFd = (byte)'h', TypeArray = (byte)'a', TypeVariant = (byte)'v', TypeStruct = (byte)'r',
        TypeDictEntry = (byte)'e';

    // sd_bus_request_name flags.
    public const ulong NameAllowReplacement = 1UL << 0, NameReplaceExisting = 1UL << 1, NameQueue = 1UL << 2;

    // enum sd_bus_creds_mask (_SD_BUS_CREDS_*): only the effective uid, which the bus daemon vouches for.
    public const ulong CredsEuid = 1UL << 4;

    // Message types, sd_bus_message_get_type.
    public const byte MessageMethodCall = 1, MessageMethodReturn = 2, MessageMethodError = 3, MessageSignal = 4;

    /// <summary>sd_bus_error: { const char *name; const char *message; int _need_free; } (24 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct Error
    {
        public nint Name;
        public nint Message;
        public int NeedFree;
    }

    // ---- vtable (struct sd_bus_vtable, systemd 242+: 56 bytes on 64-bit) ----
    // uint8_t type:8; uint64_t flags:56; then a union of at most six pointer-sized words.
    public const byte VtableStart = (byte)'<', VtableEnd = (byte)'>', VtableMethod = (byte)'M',
        VtableSignal = (byte)'S', VtableProperty = (byte)'P', VtableWritableProperty = (byte)'W';
    public const ulong VtableDeprecated = 1UL << 0, VtableHidden = 1UL << 1, VtableUnprivileged = 1UL << 2,
        VtableMethodNoReply = 1UL << 3, VtablePropertyConst = 1UL << 4, VtablePropertyEmitsChange = 1UL << 5,
        VtablePropertyEmitsInvalidation = 1UL << 6, VtablePropertyExplicit = 1UL << 7, VtableSensitive = 1UL << 8;
    /// <summary>_SD_BUS_VTABLE_PARAM_NAMES: method and signal entries carry argument names.</summary>
    public const ulong VtableFeatureParamNames = 1UL << 0;

    [StructLayout(LayoutKind.Sequential, Size = 56)]
    public struct VtableEntry
    {
        /// <summary>type in the low 8 bits, flags above.</summary>
        public ulong TypeAndFlags;
        // start:    element_size, features, vtable_format_reference
        // method:   member, signature, result, handler, offset, names
        // signal:   member, signature, names
        // property: member, signature, get, set, offset
        public nint A, B, C, D, E, F;
    }

    // Callback types, each [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]:
    // int sd_bus_message_handler_t(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);
    // int sd_bus_property_get_t(sd_bus *bus, const char *path, const char *interface, const char *property,
    //                           sd_bus_message *reply, void *userdata, sd_bus_error *ret_error);
    // int sd_bus_object_find_t(sd_bus *bus, const char *path, const char *interface, void *userdata,
    //                          void **ret_found, sd_bus_error *ret_error);
    // int sd_bus_node_enumerator_t(sd_bus *bus, const char *prefix, void *userdata, char ***ret_nodes,
    //                              sd_bus_error *ret_error);   (ret_nodes malloc'ed; sd-bus frees it)

    // ---- connection ----
    [LibraryImport(Lib, EntryPoint = "sd_bus_new")]
    public static partial int New(nint* bus);

    [LibraryImport(Lib, EntryPoint = "sd_bus_set_address", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SetAddress(nint bus, string address);

    /// <summary>1: talk to a message bus (send Hello), not peer-to-peer.</summary>
    [LibraryImport(Lib, EntryPoint = "sd_bus_set_bus_client")]
    public static partial int SetBusClient(nint bus, int b);

    [LibraryImport(Lib, EntryPoint = "sd_bus_set_description", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int SetDescription(nint bus, string description);

    [LibraryImport(Lib, EntryPoint = "sd_bus_start")]
    public static partial int Start(nint bus);

    [LibraryImport(Lib, EntryPoint = "sd_bus_flush_close_unref")]
    public static partial nint FlushCloseUnref(nint bus);

    [LibraryImport(Lib, EntryPoint = "sd_bus_is_open")]
    public static partial int IsOpen(nint bus);

    [LibraryImport(Lib, EntryPoint = "sd_bus_get_fd")]
    public static partial int GetFd(nint bus);

    [LibraryImport(Lib, EntryPoint = "sd_bus_get_events")]
    public static partial int GetEvents(nint bus);

    /// <summary>Absolute CLOCK_MONOTONIC µs of the next timeout; ulong.MaxValue = none.</summary>
    [LibraryImport(Lib, EntryPoint = "sd_bus_get_timeout")]
    public static partial int GetTimeout(nint bus, ulong* usec);

    /// <summary>Dispatches one message; call until it returns 0.</summary>
    [LibraryImport(Lib, EntryPoint = "sd_bus_process")]
    public static partial int Process(nint bus, nint* message);

    [LibraryImport(Lib, EntryPoint = "sd_bus_flush")]
    public static partial int Flush(nint bus);

    [LibraryImport(Lib, EntryPoint = "sd_bus_get_unique_name")]
    public static partial int GetUniqueName(nint bus, nint* name);

    [LibraryImport(Lib, EntryPoint = "sd_bus_request_name", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int RequestName(nint bus, string name, ulong flags);

    // ---- objects ----
    [LibraryImport(Lib, EntryPoint = "sd_bus_add_object_vtable", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int AddObjectVtable(nint bus, nint* slot, string path, string iface, VtableEntry* vtable, nint userdata);

    [LibraryImport(Lib, EntryPoint = "sd_bus_add_fallback_vtable", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int AddFallbackVtable(nint bus, nint* slot, string prefix, string iface, VtableEntry* vtable,
        delegate* unmanaged[Cdecl]<nint, nint, nint, nint, nint*, Error*, int> find, nint userdata);

    [LibraryImport(Lib, EntryPoint = "sd_bus_add_node_enumerator", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int AddNodeEnumerator(nint bus, nint* slot, string path,
        delegate* unmanaged[Cdecl]<nint, nint, nint, byte***, Error*, int> callback, nint userdata);

    [LibraryImport(Lib, EntryPoint = "sd_bus_add_object_manager", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int AddObjectManager(nint bus, nint* slot, string path);

    [LibraryImport(Lib, EntryPoint = "sd_bus_match_signal", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MatchSignal(nint bus, nint* slot, string? sender, string? path, string? iface, string? member,
        delegate* unmanaged[Cdecl]<nint, nint, Error*, int> callback, nint userdata);

    /// <summary>A match rule in D-Bus syntax (arg0='...' and all); synchronous AddMatch, like <see cref="MatchSignal"/>.</summary>
    [LibraryImport(Lib, EntryPoint = "sd_bus_add_match", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int AddMatch(nint bus, nint* slot, string match,
        delegate* unmanaged[Cdecl]<nint, nint, Error*, int> callback, nint userdata);

    [LibraryImport(Lib, EntryPoint = "sd_bus_slot_unref")]
    public static partial nint SlotUnref(nint slot);

    [LibraryImport(Lib, EntryPoint = "sd_bus_emit_properties_changed_strv", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int EmitPropertiesChanged(nint bus, string path, string iface, byte** names);

    [LibraryImport(Lib, EntryPoint = "sd_bus_emit_interfaces_added_strv", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int EmitInterfacesAdded(nint bus, string path, byte** interfaces);

    [LibraryImport(Lib, EntryPoint = "sd_bus_emit_interfaces_removed_strv", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int EmitInterfacesRemoved(nint bus, string path, byte** interfaces);

    /// <summary>systemd's object path escaping of an external id ("dm-0" → prefix/dm_2d0); *ret is malloc'ed.</summary>
    [LibraryImport(Lib, EntryPoint = "sd_bus_path_encode", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int PathEncode(string prefix, string externalId, nint* ret);

    [LibraryImport(Lib, EntryPoint = "sd_bus_path_decode", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int PathDecode(string path, string prefix, nint* ret);

    // ---- messages ----
    [LibraryImport(Lib, EntryPoint = "sd_bus_message_new_signal", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MessageNewSignal(nint bus, nint* m, string path, string iface, string member);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_new_method_call", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MessageNewMethodCall(nint bus, nint* m, string? destination, string path, string iface, string member);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_new_method_return")]
    public static partial int MessageNewMethodReturn(nint call, nint* m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_ref")]
    public static partial nint MessageRef(nint m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_unref")]
    public static partial nint MessageUnref(nint m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_append_basic")]
    public static partial int MessageAppendBasic(nint m, byte type, void* p);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_open_container", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int MessageOpenContainer(nint m, byte type, string contents);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_close_container")]
    public static partial int MessageCloseContainer(nint m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_read_basic")]
    public static partial int MessageReadBasic(nint m, byte type, void* p);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_enter_container")]
    public static partial int MessageEnterContainer(nint m, byte type, byte* contents);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_exit_container")]
    public static partial int MessageExitContainer(nint m);

    /// <summary>&gt;0 with the next element's type (and contents for containers), 0 at the end of the container.</summary>
    [LibraryImport(Lib, EntryPoint = "sd_bus_message_peek_type")]
    public static partial int MessagePeekType(nint m, byte* type, byte** contents);

    /// <summary>Fixes a message built here for sending; a sealed message can be rewound and read.</summary>
    [LibraryImport(Lib, EntryPoint = "sd_bus_message_seal")]
    public static partial int MessageSeal(nint m, ulong cookie, ulong timeoutUsec);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_rewind")]
    public static partial int MessageRewind(nint m, int complete);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_get_type")]
    public static partial int MessageGetType(nint m, byte* type);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_get_sender")]
    public static partial nint MessageGetSender(nint m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_get_path")]
    public static partial nint MessageGetPath(nint m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_get_member")]
    public static partial nint MessageGetMember(nint m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_get_signature")]
    public static partial nint MessageGetSignature(nint m, int complete);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_get_error")]
    public static partial Error* MessageGetError(nint m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_get_allow_interactive_authorization")]
    public static partial int MessageGetAllowInteractiveAuthorization(nint m);

    [LibraryImport(Lib, EntryPoint = "sd_bus_message_set_allow_interactive_authorization")]
    public static partial int MessageSetAllowInteractiveAuthorization(nint m, int b);

    [LibraryImport(Lib, EntryPoint = "sd_bus_send")]
    public static partial int Send(nint bus, nint m, ulong* cookie);

    [LibraryImport(Lib, EntryPoint = "sd_bus_call")]
    public static partial int Call(nint bus, nint m, ulong usec, Error* error, nint* reply);

    [LibraryImport(Lib, EntryPoint = "sd_bus_call_async")]
    public static partial int CallAsync(nint bus, nint* slot, nint m, delegate* unmanaged[Cdecl]<nint, nint, Error*, int> callback, nint userdata, ulong usec);

    [LibraryImport(Lib, EntryPoint = "sd_bus_reply_method_error")]
    public static partial int ReplyMethodError(nint call, Error* error);

    [LibraryImport(Lib, EntryPoint = "sd_bus_error_set", StringMarshalling = StringMarshalling.Utf8)]
    public static partial int ErrorSet(Error* e, string name, string? message);

    [LibraryImport(Lib, EntryPoint = "sd_bus_error_free")]
    public static partial void ErrorFree(Error* e);

    // ---- callers ----
    [LibraryImport(Lib, EntryPoint = "sd_bus_query_sender_creds")]
    public static partial int QuerySenderCreds(nint m, ulong mask, nint* creds);

    [LibraryImport(Lib, EntryPoint = "sd_bus_creds_get_euid")]
    public static partial int CredsGetEuid(nint creds, uint* euid);

    [LibraryImport(Lib, EntryPoint = "sd_bus_creds_unref")]
    public static partial nint CredsUnref(nint creds);

    /// <summary>Address of the exported <c>sd_bus_object_vtable_format</c>, which a START entry must point to.</summary>
    public static nint VtableFormatReference()
    {
        var handle = NativeLibrary.Load(Lib, typeof(SdBus).Assembly, DllImportSearchPath.SafeDirectories);
        return NativeLibrary.GetExport(handle, "sd_bus_object_vtable_format");
    }

    /// <summary>Whether libsystemd.so.0 with sd-bus can be loaded here (absent in minimal containers).</summary>
    public static bool TryLoad(out string? problem)
    {
        problem = null;
        if (!NativeLibrary.TryLoad(Lib, typeof(SdBus).Assembly, DllImportSearchPath.SafeDirectories, out var handle))
        {
            problem = $"{Lib} not found";
            return false;
        }
        if (!NativeLibrary.TryGetExport(handle, "sd_bus_emit_interfaces_added_strv", out _))
        {
            problem = $"{Lib} has no sd-bus";
            return false;
        }
        return true;
    }
}
