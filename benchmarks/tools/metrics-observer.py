#!/usr/bin/python3
"""Scrapes ErrorWatch's Prometheus endpoint in a loop and timestamps every change of the error counter.

usage: metrics-observer.py HOST:PORT DEVICE OUTFILE [INTERVAL_MS]
Sums errorwatch_filesystem_errors_total over the series of system_device="DEVICE"; writes
"<CLOCK_MONOTONIC ns when the scrape answered> <total>" whenever the total changes. One keep-alive
connection, a scrape every INTERVAL_MS (default 2). Prints "ready" after the first scrape.
"""
import http.client, re, signal, sys, time

host, port = sys.argv[1].rsplit(":", 1)
device = sys.argv[2]
out = open(sys.argv[3], "w", buffering=1)
interval = float(sys.argv[4]) / 1000 if len(sys.argv) > 4 else 0.002
line = re.compile(r'^errorwatch_filesystem_errors_total\{([^}]*)\} ([0-9.e+]+)', re.M)
stop = False
signal.signal(signal.SIGTERM, lambda *_: globals().__setitem__("stop", True))
conn = http.client.HTTPConnection(host, int(port), timeout=5)
last = None
first = True
while not stop:
    try:
        conn.request("GET", "/metrics")
        body = conn.getresponse().read().decode()
    except (OSError, http.client.HTTPException):
        conn.close()
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        time.sleep(0.05)
        continue
    t = time.monotonic_ns()
    total = sum(float(v) for labels, v in line.findall(body) if f'system_device="{device}"' in labels)
    if total != last:
        out.write(f"{t} {int(total)}\n")
        last = total
    if first:
        print("ready", flush=True)
        first = False
    time.sleep(interval)
