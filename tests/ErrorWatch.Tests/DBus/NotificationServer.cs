using System.Collections.Concurrent;
using System.ComponentModel;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ErrorWatch.Tests.DBus;

/// <summary>
/// A desktop notification server for tests: a python3-dbus script (GLib main loop) owning
/// org.freedesktop.Notifications on a bus, answering each Notify with the next id (1, 2, ...) and
/// printing the call as one JSON line. Stopped by its PID on dispose.
/// </summary>
public sealed partial class NotificationServer : IDisposable
{
    /// <summary>Debian's python3 with python3-dbus and python3-gi; pyenv shims on PATH lack them.</summary>
    public const string Python = "/usr/bin/python3";

    private const string Script = """
        import json, sys
        import dbus, dbus.service, dbus.mainloop.glib
        from gi.repository import GLib

        dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
        bus = dbus.bus.BusConnection(sys.argv[1])

        def plain(v):
            if isinstance(v, dbus.Boolean):
                return bool(v)
            if isinstance(v, (dbus.Byte, dbus.Int16, dbus.UInt16, dbus.Int32, dbus.UInt32, dbus.Int64, dbus.UInt64)):
                return int(v)
            if isinstance(v, dbus.Dictionary):
                return {str(k): plain(x) for k, x in v.items()}
            if isinstance(v, (dbus.Array, dbus.Struct, list, tuple)):
                return [plain(x) for x in v]
            return str(v)

        class Server(dbus.service.Object):
            def __init__(self):
                super().__init__(bus, "/org/freedesktop/Notifications")
                self.last = 0

            @dbus.service.method("org.freedesktop.Notifications", in_signature="susssasa{sv}i", out_signature="u")
            def Notify(self, app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout):
                self.last += 1
                print(json.dumps({"id": self.last, "app_name": str(app_name), "replaces_id": int(replaces_id),
                                  "app_icon": str(app_icon), "summary": str(summary), "body": str(body),
                                  "actions": plain(actions), "hints": plain(hints),
                                  "hint_types": {str(k): type(v).__name__ for k, v in hints.items()},
                                  "expire_timeout": int(expire_timeout)}), flush=True)
                return dbus.UInt32(self.last)

            @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="as")
            def GetCapabilities(self):
                return ["body"]

            @dbus.service.method("org.freedesktop.Notifications", in_signature="", out_signature="ssss")
            def GetServerInformation(self):
                return ("errorwatch-test", "errorwatch", "1", "1.2")

        server = Server()
        name = dbus.service.BusName("org.freedesktop.Notifications", bus)
        print(json.dumps({"ready": True}), flush=True)
        GLib.MainLoop().run()
        """;

    private readonly Process _process;
    private readonly BlockingCollection<string> _lines = new();
    private readonly StringBuilder _stderr = new();

    /// <param name="directory">Where the script is written (a temporary directory of the test's).</param>
    public NotificationServer(string directory, string busAddress)
    {
        var script = Path.Combine(directory, "notification-server.py");
        File.WriteAllText(script, Script);
        var psi = new ProcessStartInfo(Python)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(script);
        psi.ArgumentList.Add(busAddress);
        try
        {
            _process = Process.Start(psi)!;
        }
        catch (Win32Exception e)
        {
            throw new InvalidOperationException($"{Python} could not be started ({e.Message}); install python3, python3-dbus and python3-gi", e);
        }
        _process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
                _lines.CompleteAdding();
            else
                _lines.Add(e.Data);
        };
        _process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
                lock (_stderr)
                    _stderr.AppendLine(e.Data);
        };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        try
        {
            using var ready = Next(TimeSpan.FromSeconds(15)) ?? throw new TimeoutException("the notification server did not start: " + Stderr);
            Assert.True(ready.RootElement.GetProperty("ready").GetBoolean());
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
                return _stderr.ToString();
        }
    }

    /// <summary>The next Notify call the server received, or null when none came within <paramref name="timeout"/>.</summary>
    public JsonDocument? Next(TimeSpan timeout)
    {
        try
        {
            return _lines.TryTake(out var line, timeout) ? JsonDocument.Parse(line) : null;
        }
        catch (InvalidOperationException)
        {
            return null; // the server's output ended
        }
    }

    public void Dispose()
    {
        try
        {
            OwnProcess.Stop(_process, TimeSpan.FromSeconds(3));
        }
        finally
        {
        }
    }
}
