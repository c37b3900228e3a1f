#!/usr/bin/python3
"""Stands in for polkitd on a test bus and never answers, as a hung or overloaded polkit would not.

usage: silent-polkit.py ADDRESS

Owns org.freedesktop.PolicyKit1 (run it as user polkitd: polkit's bus policy lets only that user
own the name) and exports Authority.CheckAuthorization with polkit's signature. Every call is kept
and never replied to; for each it prints one JSON line {"check": n, "action": ..., "flags": ...,
"subject": ...}, so a test can count the checks that reached polkit and see whether interaction was
allowed. Prints "owned" once it owns the name, or "refused: <error>" and exits 1.
"""
import json
import sys

from gi.repository import Gio, GLib

NAME = "org.freedesktop.PolicyKit1"
AUTHORITY = """<node><interface name="org.freedesktop.PolicyKit1.Authority">
  <method name="CheckAuthorization">
    <arg name="subject" type="(sa{sv})" direction="in"/>
    <arg name="action_id" type="s" direction="in"/>
    <arg name="details" type="a{ss}" direction="in"/>
    <arg name="flags" type="u" direction="in"/>
    <arg name="cancellation_id" type="s" direction="in"/>
    <arg name="result" type="(bba{ss})" direction="out"/>
  </method>
</interface></node>"""

held = []  # the invocations: kept, so GDBus never answers them on its own


def on_call(connection, sender, path, interface_name, method, parameters, invocation):
    subject, action, _details, flags, _cancellation = parameters.unpack()
    held.append(invocation)
    print(json.dumps({"check": len(held), "action": action, "flags": flags, "subject": subject[1].get("name", "")}), flush=True)


def main():
    connection = Gio.DBusConnection.new_for_address_sync(
        sys.argv[1], Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    connection.register_object("/org/freedesktop/PolicyKit1/Authority", Gio.DBusNodeInfo.new_for_xml(AUTHORITY).interfaces[0], on_call, None, None)
    try:
        # 4 = DBUS_NAME_FLAG_DO_NOT_QUEUE; 1 = DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER
        reply = connection.call_sync("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "RequestName",
                                     GLib.Variant("(su)", (NAME, 4)), GLib.VariantType("(u)"), Gio.DBusCallFlags.NONE, -1, None)
    except GLib.Error as e:
        print("refused: " + (Gio.DBusError.get_remote_error(e) or e.message), flush=True)
        sys.exit(1)
    if reply[0] != 1:
        print("refused: RequestName replied %d" % reply[0], flush=True)
        sys.exit(1)
    print("owned", flush=True)
    GLib.MainLoop().run()


main()
