#!/usr/bin/python3
"""Stands in for the ErrorWatch daemon on a test bus, so the bus policy can be tested without it.

usage: stand-in-service.py ADDRESS MANAGER_XML FILESYSTEM_XML

Exports the interfaces exactly as deploy/dbus/*.xml declare them (GDBus rejects calls and
property names the XML does not declare), plus a method Hidden on the Manager interface that the
bus policy does not allow, one filesystem object, and ObjectManager.GetManagedObjects. It never
checks who calls: whatever refusal a caller sees comes from the bus. RescanFilesystems emits
ReportAdded, so a subscriber can make a signal happen after it has subscribed. Prints "owned" once
it owns io.github.errorwatch.ErrorWatch1, or "refused: <error>" and exits 1.
"""
import sys

from gi.repository import Gio, GLib

NAME = "io.github.errorwatch.ErrorWatch1"
ROOT = "/io/github/errorwatch/ErrorWatch1"
FILESYSTEM_PATH = ROOT + "/filesystems/loop3"
MANAGER = NAME + ".Manager"
FILESYSTEM = NAME + ".Filesystem"
REPORT_ID = "01936a3e-7b2c-7000-8000-000000000001"


def interface(xml):
    return Gio.DBusNodeInfo.new_for_xml(xml).interfaces[0]


def report():
    v = GLib.Variant
    return {
        "type": v("s", "report"),
        "id": v("s", REPORT_ID),
        "time": v("s", "2026-11-21T10:00:00.000000Z"),
        "source": v("s", "fanotify"),
        "event": v("s", "corruption"),
        "severity": v("s", "critical"),
        "summary": v("s", "ext4 /dev/loop3 (/mnt) reports metadata corruption (EUCLEAN/EFSCORRUPTED) in inode 12, 1 error"),
        "filesystem": v("a{sv}", {"device": v("s", "/dev/loop3"), "type": v("s", "ext4"), "mountpoints": v("as", ["/mnt"])}),
        "error": v("a{sv}", {"errno": v("x", 117), "name": v("s", "EUCLEAN"), "count": v("x", 1)}),
        "object": v("a{sv}", {"scope": v("s", "inode"), "inode": v("x", 12)}),
    }


def main():
    address, manager_xml, filesystem_xml = sys.argv[1:4]
    with open(manager_xml) as f:
        manager = interface(f.read().replace("</interface>", '<method name="Hidden"/></interface>'))
    with open(filesystem_xml) as f:
        filesystem = interface(f.read())
    object_manager = interface(
        '<node><interface name="org.freedesktop.DBus.ObjectManager"><method name="GetManagedObjects">'
        '<arg name="objects" type="a{oa{sa{sv}}}" direction="out"/></method></interface></node>')

    v = GLib.Variant
    manager_properties = {
        "Version": v("s", "0-stand-in"), "KernelSupportsFsError": v("b", True), "WatchedFilesystems": v("u", 1),
        "ReportCount": v("t", 1), "LastReportId": v("s", REPORT_ID)}
    filesystem_properties = {
        "Device": v("s", "/dev/loop3"), "Uuid": v("s", ""), "Type": v("s", "ext4"), "Mountpoints": v("as", ["/mnt"]),
        "Health": v("u", 1), "ErrorCount": v("t", 1), "FirstErrorTime": v("t", 1795255200000000),
        "LastErrorTime": v("t", 1795255200000000), "LastReportId": v("s", REPORT_ID)}

    def on_manager_call(connection, sender, path, interface_name, method, parameters, invocation):
        if method == "GetReports":
            invocation.return_value(v("(aa{sv})", ([report()],)))
        elif method == "GetReport":
            if parameters[0] == REPORT_ID:
                invocation.return_value(v("(a{sv})", (report(),)))
            else:
                invocation.return_dbus_error(NAME + ".Error.NoSuchReport", "no report " + parameters[0])
        elif method == "RescanFilesystems":
            connection.emit_signal(None, ROOT, MANAGER, "ReportAdded", v("(oa{sv})", (FILESYSTEM_PATH, report())))
            invocation.return_value(None)
        else:  # Acknowledge, Hidden
            invocation.return_value(None)

    def on_object_manager_call(connection, sender, path, interface_name, method, parameters, invocation):
        invocation.return_value(v("(a{oa{sa{sv}}})", ({FILESYSTEM_PATH: {FILESYSTEM: filesystem_properties}},)))

    connection = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    connection.register_object(ROOT, manager, on_manager_call, lambda c, s, p, i, name: manager_properties[name], None)
    connection.register_object(ROOT, object_manager, on_object_manager_call, None, None)
    connection.register_object(FILESYSTEM_PATH, filesystem, None, lambda c, s, p, i, name: filesystem_properties[name], None)
    try:
        # 4 = DBUS_NAME_FLAG_DO_NOT_QUEUE; 1 = DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
        reply = connection.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                                     v("(su)", (NAME, 4)), GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, -1, None)
    except GLib.Error as e:
        print("refused: " + (Gio.DBusError.get_remote_error(e) or e.message), flush=True)
        sys.exit(1)
    if reply[0] != 1:
        print("refused: RequestName replied %d" % reply[0], flush=True)
        sys.exit(1)
    print("owned", flush=True)
    GLib.MainLoop().run()


main()
