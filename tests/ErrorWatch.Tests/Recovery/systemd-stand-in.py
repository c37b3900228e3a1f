#!/usr/bin/python3
"""Stands in for systemd's manager on a private test bus (never the machine's): for unit hooks.

usage: systemd-stand-in.py ADDRESS

Owns org.freedesktop.systemd1 and exports /org/freedesktop/systemd1 with the part of
org.freedesktop.systemd1.Manager that ErrorWatch uses: StartUnit(s name, s mode) -> o job,
Subscribe(), and the JobRemoved(u id, o job, s unit, s result) signal, sent 100 ms after the reply as
systemd sends it when a start job ends. A unit whose name starts with "fail" ends "failed", one
starting with "slow" never ends (for timeouts), any other "done". Prints "owned" once it owns the
name, then "StartUnit NAME MODE" for every call (flushed), so the test sees exactly what was asked.
"""
import sys

from gi.repository import Gio, GLib

NAME = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = NAME + ".Manager"
XML = """<node><interface name="org.freedesktop.systemd1.Manager">
  <method name="StartUnit"><arg name="name" type="s" direction="in"/><arg name="mode" type="s" direction="in"/>
    <arg name="job" type="o" direction="out"/></method>
  <method name="Subscribe"/>
  <signal name="JobRemoved"><arg name="id" type="u"/><arg name="job" type="o"/><arg name="unit" type="s"/>
    <arg name="result" type="s"/></signal>
</interface></node>"""


def main():
    address = sys.argv[1]
    manager = Gio.DBusNodeInfo.new_for_xml(XML).interfaces[0]
    jobs = [0]
    v = GLib.Variant

    def on_call(connection, sender, path, interface_name, method, parameters, invocation):
        if method == "Subscribe":
            invocation.return_value(None)
            return
        unit, mode = parameters.unpack()
        jobs[0] += 1
        job_id = jobs[0]
        job = "%s/job/%d" % (PATH, job_id)
        print("StartUnit %s %s" % (unit, mode), flush=True)
        invocation.return_value(v("(o)", (job,)))
        if unit.startswith("slow"):
            return
        result = "failed" if unit.startswith("fail") else "done"

        def removed():
            connection.emit_signal(None, PATH, MANAGER, "JobRemoved", v("(uoss)", (job_id, job, unit, result)))
            return False
        GLib.timeout_add(100, removed)

    connection = Gio.DBusConnection.new_for_address_sync(
        address, Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION, None, None)
    connection.register_object(PATH, manager, on_call, None, None)
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
