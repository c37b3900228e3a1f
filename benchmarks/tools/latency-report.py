#!/usr/bin/python3
"""Trigger-to-observation latencies for the latency benchmark (benchmarks/run-latency.sh).

usage: latency-report.py DIR DEVICE
DIR holds triggers.txt ("<ns>" per trigger_fs_error write) and, per observer, lines that start with
"<CLOCK_MONOTONIC ns> <error count>": c-reader.txt (fanotify-reader.c: "<ns> <errno> <count> <type>"),
store.txt, store-py.txt, dbus.txt and dbus-py.txt ("<ns> <count> <source> <device>"), metrics.txt ("<ns> <running total>") and
journal.json (journalctl -o json: __MONOTONIC_TIMESTAMP is when journald received the entry).
Trigger k counts as seen by an observer at the first observation whose running error count reaches k
(fanotify merges a queued error into the next one, so one observation can cover several triggers).
Prints p50/p99/max per observer, and the differences to the C reader.
"""
import json, os, sys

d, device = sys.argv[1], sys.argv[2]
triggers = [int(l) for l in open(os.path.join(d, "triggers.txt")) if l.strip()]


def running(events):
    events.sort()
    total, out = 0, []
    for t, n in events:
        total += n
        out.append((t, total))
    return out


def load(name, cumulative=False, device_col=None, source=None, not_source=None):
    path = os.path.join(d, name)
    if not os.path.exists(path):
        return None
    events = []
    for line in open(path):
        parts = line.split()
        if len(parts) < 2 or not parts[0].isdigit():
            continue
        if device_col is not None and (len(parts) <= device_col or parts[device_col] != device):
            continue
        if source is not None and parts[2] != source or not_source is not None and parts[2] == not_source:
            continue
        if name == "c-reader.txt":
            events.append((int(parts[0]), int(parts[2])))
        else:
            events.append((int(parts[0]), int(parts[1])))
    if cumulative:
        events.sort()
        return events
    return running(events)


def journal():
    path = os.path.join(d, "journal.json")
    if not os.path.exists(path):
        return None
    events = []
    for line in open(path):
        e = json.loads(line)
        if e.get("ERRORWATCH_DEVICE") != device:
            continue
        events.append((int(e["__MONOTONIC_TIMESTAMP"]) * 1000, int(e.get("ERRORWATCH_ERROR_COUNT", 0))))
    return running(events)


def latencies(obs):
    lat, i = [], 0
    for k, t in enumerate(triggers, start=1):
        while i < len(obs) and obs[i][1] < k:
            i += 1
        if i == len(obs):
            break
        lat.append((obs[i][0] - t) / 1e6)
    return lat


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


streams = [
    ("C reader (read(2) returned)", load("c-reader.txt")),
    ("store: record appended, seen by a C inotify client (tools/store-observer.c)", load("store.txt", device_col=3)),
    ("store: record appended, seen by a Python inotify client (tools/store-observer.py)", load("store-py.txt", device_col=3)),
    ("journal (journald received, __MONOTONIC_TIMESTAMP)", journal()),
    ("D-Bus floor: a C reader that signals at once (tools/dbus-floor.c), C client", load("dbus.txt", device_col=3, source="c-floor")),
    ("D-Bus ReportAdded received by a client (C, sd-bus)", load("dbus.txt", device_col=3, not_source="c-floor")),
    ("D-Bus ReportAdded received by a client (Python, libdbus + GLib)", load("dbus-py.txt", device_col=3, not_source="c-floor")),
    ("metric visible in a scrape", load("metrics.txt", cumulative=True)),
]
print(f"triggers: {len(triggers)}, device {device}")
print()
print("| observer | seen | p50 ms | p99 ms | max ms | p50 − C | p99 − C |")
print("|---|---:|---:|---:|---:|---:|---:|")
c = None
rows = {}
for name, obs in streams:
    if obs is None:
        print(f"| {name} | not measured | | | | | |")
        continue
    lat = latencies(obs)
    if not lat:
        print(f"| {name} | 0 | | | | | |")
        continue
    p50, p99, mx = pct(lat, 50), pct(lat, 99), max(lat)
    if c is None:
        c = (p50, p99)
        diff = ("", "")
    else:
        diff = (f"{p50 - c[0]:+.3f}", f"{p99 - c[1]:+.3f}")
    rows[name] = (p50, p99)
    print(f"| {name} | {len(lat)} | {p50:.3f} | {p99:.3f} | {mx:.3f} | {diff[0]} | {diff[1]} |")

# The targets, each against its own floor: the store against the C reader, ReportAdded (C
# client) against the C D-Bus floor (same client, a C reader that signals at once).
def against(name, floor):
    if name in rows and floor in rows:
        (p50, p99), (f50, f99) = rows[name], rows[floor]
        print(f"{name.split(':')[0].split(' (')[0]} vs {floor.split(' (')[0].split(':')[0]}: p50 {p50 - f50:+.3f} ms, p99 {p99 - f99:+.3f} ms")
print()
against(streams[1][0], streams[0][0])
against(streams[5][0], streams[4][0])
