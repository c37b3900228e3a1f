#!/usr/bin/python3
"""Timestamps every record appended to ErrorWatch's report store (latency benchmark).

usage: store-observer.py STATE_DIR OUTFILE
inotify (IN_MODIFY, IN_CREATE) on STATE_DIR/reports: the store appends each report with one write(2),
so IN_MODIFY arrives when the record is in the file. Each new whole record (docs: Store/StoreRecord.cs,
20-byte header then JSON) gives one line "<CLOCK_MONOTONIC ns at the inotify wake-up> <error.count>
<source> <device>". Prints "ready" once watching. Runs until SIGTERM.
"""
import ctypes, json, os, select, signal, struct, sys, time

libc = ctypes.CDLL("libc.so.6", use_errno=True)
IN_MODIFY, IN_CREATE, IN_NONBLOCK = 0x2, 0x100, 0x800
reports = os.path.join(sys.argv[1], "reports")
os.makedirs(reports, exist_ok=True)
out = open(sys.argv[2], "w", buffering=1)
fd = libc.inotify_init1(IN_NONBLOCK)
if fd < 0 or libc.inotify_add_watch(fd, reports.encode(), IN_MODIFY | IN_CREATE) < 0:
    sys.exit(f"inotify: errno {ctypes.get_errno()}")
offsets = {}
stop = False


def term(*_):
    global stop
    stop = True


signal.signal(signal.SIGTERM, term)


def scan(t):
    for name in sorted(os.listdir(reports)):
        if not name.endswith(".log"):
            continue
        path = os.path.join(reports, name)
        with open(path, "rb") as f:
            f.seek(offsets.get(name, 0))
            data = f.read()
        pos = 0
        while len(data) - pos >= 20:
            magic, length = struct.unpack_from("<II", data, pos)
            if magic != 0x31525745 or len(data) - pos < 20 + length:
                break
            report = json.loads(data[pos + 20:pos + 20 + length])
            out.write(f"{t} {report.get('error', {}).get('count', 0)} {report.get('source', '?')} {report.get('filesystem', {}).get('device', '?')}\n")
            pos += 20 + length
        offsets[name] = offsets.get(name, 0) + pos


for name in os.listdir(reports):  # what is already there is not part of the measurement
    if name.endswith(".log"):
        offsets[name] = os.path.getsize(os.path.join(reports, name))
print("ready", flush=True)
poller = select.poll()
poller.register(fd, select.POLLIN)
while not stop:
    if poller.poll(200):
        t = time.monotonic_ns()
        try:
            os.read(fd, 65536)
        except BlockingIOError:
            pass
        scan(t)
