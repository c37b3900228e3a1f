"""Holds the metrics endpoint's connections as a hostile local user would, for the given seconds:
IDLE connections that connect and send nothing, and SLOW ones (slowloris) that send a request line
and then one header byte now and then, never finishing the headers. Each connection the server
closes is opened again at once. Prints one JSON line at the end: how many were (re)opened of each.
Usage: connection-flood.py HOST PORT IDLE SLOW SECONDS"""
import json, selectors, socket, sys, time

host, port, idle, slow, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
sel = selectors.DefaultSelector()
opened = {"idle": 0, "slow": 0, "refused": 0}


def connect(kind):
    s = socket.socket()
    try:
        s.connect((host, port))
        if kind == "slow":
            s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
    except OSError:  # refused, or reset at once: counted, and tried again at the next turn
        opened["refused"] += 1
        s.close()
        return
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, kind)
    opened[kind] += 1


for _ in range(idle):
    connect("idle")
for _ in range(slow):
    connect("slow")
print(json.dumps({"ready": True}), flush=True)
end = time.monotonic() + seconds
last_trickle = time.monotonic()
while time.monotonic() < end:
    for key, _ in sel.select(timeout=0.2):
        s, kind = key.fileobj, key.data
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if not data:  # closed by the server: take the place again
            sel.unregister(s)
            s.close()
            connect(kind)
    held = {"idle": 0, "slow": 0}
    for key in sel.get_map().values():
        held[key.data] += 1
    for kind, want in (("idle", idle), ("slow", slow)):
        for _ in range(want - held[kind]):
            connect(kind)
    if time.monotonic() - last_trickle > 1:
        last_trickle = time.monotonic()
        for key in list(sel.get_map().values()):
            if key.data == "slow":
                try:
                    key.fileobj.send(b"X")
                except OSError:
                    pass
print(json.dumps(opened), flush=True)
