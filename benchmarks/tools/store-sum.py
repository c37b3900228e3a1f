#!/usr/bin/python3
"""Sums ErrorWatch's report store per device: reports, error.count by source (storm and scale benchmarks).

usage: store-sum.py STATE_DIR [DEVICE...]
Prints "<device> reports=N errors=N fanotify=N ext4-sysfs=N ..." per device (all devices without arguments).
"""
import collections, json, os, struct, sys

reports = os.path.join(sys.argv[1], "reports")
want = set(sys.argv[2:])
n = collections.Counter()
by = collections.defaultdict(collections.Counter)
for name in sorted(os.listdir(reports)) if os.path.isdir(reports) else []:
    if not name.endswith(".log"):
        continue
    data = open(os.path.join(reports, name), "rb").read()
    pos = 0
    while len(data) - pos >= 20:
        magic, length = struct.unpack_from("<II", data, pos)
        if magic != 0x31525745 or len(data) - pos < 20 + length:
            break
        r = json.loads(data[pos + 20:pos + 20 + length])
        dev = r.get("filesystem", {}).get("device", "?")
        if not want or dev in want:
            n[dev] += 1
            by[dev][r.get("source", "?")] += int(r.get("error", {}).get("count", 0))
        pos += 20 + length
for dev in sorted(set(n) | want):
    total = sum(by[dev].values())
    print(f"{dev} reports={n[dev]} errors={total} " + " ".join(f"{s}={c}" for s, c in sorted(by[dev].items())))
