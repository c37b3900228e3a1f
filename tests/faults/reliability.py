#!/usr/bin/env python3
"""Writes docs/reliability.md from what tests/faults/run.sh recorded.

argv: faults.jsonl (one row per fault scenario, written by tests/ErrorWatch.Tests/Faults),
results.trx (every test's outcome), fuzz.txt (ParserFuzzTests' statistics).
"""
import json
import os
import platform
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict
from datetime import datetime, timezone

faults_path, trx_path, fuzz_path = sys.argv[1:4]

faults = []
if os.path.exists(faults_path):
    with open(faults_path) as f:
        faults = [json.loads(line) for line in f if line.strip()]

# Test outcomes by class (xunit theories count one result per case).
outcomes = OrderedDict()
failed_names = []
if os.path.exists(trx_path):
    ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
    for r in ET.parse(trx_path).getroot().iterfind(".//t:UnitTestResult", ns):
        name = r.get("testName")
        cls = re.sub(r"\(.*$", "", name).rsplit(".", 1)[0].replace("ErrorWatch.Tests.", "")
        o = outcomes.setdefault(cls, {"Passed": 0, "Failed": 0, "NotExecuted": 0})
        o[r.get("outcome")] = o.get(r.get("outcome"), 0) + 1
        if r.get("outcome") == "Failed":
            failed_names.append(name)

fuzz = {}
if os.path.exists(fuzz_path):
    text = open(fuzz_path).read()
    for key in ("inputs", "seed", "generated well-formed", "mutated", "events", "bytes"):
        m = re.search(re.escape(key) + r"=(\d+)", text)
        if m:
            fuzz[key] = int(m.group(1))


def cases(*classes):
    p = sum(outcomes.get(c, {}).get("Passed", 0) for c in classes)
    f = sum(outcomes.get(c, {}).get("Failed", 0) for c in classes)
    s = sum(outcomes.get(c, {}).get("NotExecuted", 0) for c in classes)
    return p, f, s


def verdict(*classes):
    p, f, s = cases(*classes)
    if p + f + s == 0:
        return "not run"
    text = f"{p} passed"
    if f:
        text += f", **{f} failed**"
    if s:
        text += f", {s} skipped"
    return text


def n(v):
    return "—" if v is None else f"{v:,}"


commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "?"
kernel = platform.release()
now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

survived = [f for f in faults if f["daemon"] != "EXITED" and f["lost"] == 0 and f["duplicated"] == 0]
lost = sum(f["lost"] for f in faults)


def output_loss(key):
    """(errors lost, errors doubled, scenarios measured) of one output against the kernel's count."""
    measured = [f for f in faults if f.get(key) is not None]
    return (sum(max(0, f["kernel_errors"] - f[key]) for f in measured),
            sum(max(0, f[key] - f["kernel_errors"]) for f in measured), len(measured))


def loss_text(name, key, why=""):
    missing, extra, measured = output_loss(key)
    text = f"{name} **{missing:,}**" + (f" (+{extra:,} doubled)" if extra else "")
    return text + f" in {measured} of {len(faults)} scenarios{why}"

duplicated = sum(f["duplicated"] for f in faults)
load = sum(f["kernel_errors"] for f in faults)
bad_input_classes = ["Kernel.MalformedBufferTests", "Kernel.SyntheticBufferTests", "Kernel.ParserPropertyTests",
                     "Watching.SpillGroupDispatchTests", "Watching.GroupLimitTests", "Service.ConfigurationLoaderTests",
                     "Service.CheckConfigCommandTests", "EndToEnd.HostileNameTests", "DBus.BusLimitsTests",
                     "DBus.ReportIdsTests", "DBus.BusStringTests"]
bad_cases = cases(*bad_input_classes)

out = []
w = out.append
w("# Reliability")
w("")
w("What ErrorWatch survives, measured. **Regenerate with `sudo tests/faults/run.sh`** (it runs the tests")
w("named below and rewrites this file from what they recorded; `FUZZ_INPUTS=20000` for a quick run).")
w(f"Last run: {now}, commit {commit}, Linux {kernel}, {os.cpu_count()} CPUs.")
w("")
w("## Summary")
w("")
w("| | |")
w("|---|---|")
w(f"| Load held | {load:,} kernel errors raised across {len(faults)} fault scenarios, each checked against the kernel's own count (ext4 `errors_count` growth); storms up to 3,000 errors as fast as one process can raise them (100,000-error storms: docs/performance.md) |")
w(f"| Faults survived | {len(survived)} of {len(faults)} (daemon kept running or restarted cleanly, the store lost and doubled nothing) |")
w(f"| Bad inputs tried | {fuzz.get('inputs', 0):,} fuzzed fanotify buffers (seed {fuzz.get('seed', '?')}), plus {bad_cases[0]:,} hostile-input test cases (malformed buffers, bad configuration, hostile file names, hostile D-Bus callers){' — **' + str(bad_cases[1]) + ' failed**' if bad_cases[1] else ''} |")
w(f"| Errors lost, by output | {loss_text('store', 'store')} (doubled: {duplicated}); {loss_text('journal', 'journal')}; {loss_text('D-Bus', 'bus')}; {loss_text('metrics', 'metrics', ' (they restart from zero with the process, so the kill -9 scenario does not measure them)')}; {loss_text('OTLP log records', 'otlp')}. Not counted here: hook runs (which fold reports; the hook ledger's at-least-once runs are checked by the hook tests). The journal and OTLP log records each keep a delivery cursor in the state directory. What a killed process stored but had not logged is replayed to the journal at the next start (entries within the storm limits, then one summary per filesystem with reason `replay`); OTLP log records are sent from the store itself, so a collector outage or a kill costs them nothing (a replayed record carries `errorwatch.replayed=true`). Either may hold twice what it delivered after its cursor last moved (the journal's doubled count; OTLP's repeats are in the notes, and the OTLP column counts each report once, by id) |")
w("")
w("## Faults while errors flow")
w("")
w("The real `errorwatch run` with every output on (report store, journald, D-Bus on a private")
w("system-like bus, Prometheus endpoint, OTLP push, recovery hooks) watches a scratch ext4 mounted")
w("`errors=continue`; `trigger_fs_error` raises the errors. *Kernel* is the growth of `errors_count`;")
w("*store* sums `error.count` over the stored reports; *journal* sums the report entries'")
w("`ERRORWATCH_ERROR_COUNT` and the summaries' `ERRORWATCH_SUPPRESSED_ERRORS`; *D-Bus* is the")
w("filesystem object's `ErrorCount` read by `errorwatch status`; *metrics* is")
w("`errorwatch_filesystem_errors_total` in a scrape; *OTLP* sums `errorwatch.report.error.count` over the")
w("log records a real OTLP receiver got over gRPC, each report once. Source: tests/ErrorWatch.Tests/Faults/FaultTests.cs.")
w("")
w("| Fault | Load | Kernel | Store | Journal | D-Bus | Metrics | OTLP | Lost (store) | Daemon | Notes |")
w("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
for f in faults:
    w(f"| {f['fault']} | {f['load']} | {n(f['kernel_errors'])} | {n(f['store'])} | {n(f['journal'])} | {n(f['bus'])} | {n(f['metrics'])} | {n(f.get('otlp'))} | {f['lost']} | {f['daemon']} | {f['notes'].replace('|', '/')} |")
if not faults:
    w("| (no fault scenario recorded: were the tests skipped?) | | | | | | | | | | |")
w("")
w("## Hostile input")
w("")
w("| Input | Tests | Result |")
w("|---|---|---|")
if fuzz:
    w(f"| Parser fuzzing: {fuzz.get('inputs', 0):,} buffers ({fuzz.get('generated well-formed', 0):,} generated, {fuzz.get('mutated', 0):,} mutated from the 6.18 fixtures: bit flips, truncation, lengths 0/huge/odd, reordering), each parsed twice from guarded memory against a reference parser | Kernel.ParserFuzzTests | {verdict('Kernel.ParserFuzzTests')} |")
w(f"| Parser properties with FsCheck (shrinking on failure): any bytes, captures with chosen byte edits and cuts, length fields at 0/1/odd/just past/huge (7,000 inputs), each through the same guarded-memory and reference-parser checks | Kernel.ParserPropertyTests | {verdict('Kernel.ParserPropertyTests')} |")
w(f"| Malformed and synthetic event buffers (every record type, torn headers, overlong handles, unknown kernels' records; an event without a file id in the shared spill group) | Kernel.MalformedBufferTests, Kernel.SyntheticBufferTests, Watching.SpillGroupDispatchTests | {verdict('Kernel.MalformedBufferTests', 'Kernel.SyntheticBufferTests', 'Watching.SpillGroupDispatchTests')} |")
w(f"| More filesystems than fanotify groups: the limit lowered to what is in use plus three, four filesystems, each error on its own filesystem | Watching.GroupLimitTests | {verdict('Watching.GroupLimitTests')} |")
w(f"| Bad configuration: every key with invalid values, unknown keys and sections, drop-ins; `errorwatch check-config` | Service.ConfigurationLoaderTests, Service.CheckConfigCommandTests | {verdict('Service.ConfigurationLoaderTests', 'Service.CheckConfigCommandTests')} |")
w(f"| Hostile file names (newlines posing as journal fields, terminal escapes, invalid UTF-8, noncharacters, 255-byte names, paths at and past PATH_MAX) through journald, JSON, the store, D-Bus and hook environments | EndToEnd.HostileNameTests, DBus.BusStringTests | {verdict('EndToEnd.HostileNameTests', 'DBus.BusStringTests')} |")
w(f"| Hostile D-Bus callers: 25,000 privileged calls from unprivileged users with polkit silent, hostile report ids (traced: no file opened), forged polkit replies, huge arguments and replies | DBus.BusLimitsTests, DBus.ReportIdsTests | {verdict('DBus.BusLimitsTests', 'DBus.ReportIdsTests')} |")
w(f"| State directory full or read-only, journald refusing entries (unit level) | Store.ReportStoreTests, Journal.JournalSinkTests | {verdict('Store.ReportStoreTests', 'Journal.JournalSinkTests')} |")
w(f"| The journal's delivery cursor: positions in append order, the cursor kept across restarts and read as new when damaged, held while a summary is pending, the replay's entries and summaries adding up (unit level) | Store.DeliveryCursorTests | {verdict('Store.DeliveryCursorTests')} |")
w("")
w("## Privilege")
w("")
w("| Property | Tests | Result |")
w("|---|---|---|")
w(f"| Only CAP_SYS_ADMIN, CAP_DAC_READ_SEARCH, CAP_SYSLOG (for /dev/kmsg) and CAP_SYS_NICE (for `[Watch] PriorityBoost`) after startup, outside the unit, on every thread, however it was started; hooks get no more than that plus `[Hooks] Capabilities=` | Service.PrivilegeTests | {verdict('Service.PrivilegeTests')} |")
w(f"| Privileged D-Bus methods refuse unprivileged callers (with and without polkit); the bus policy is the deployed one | DBus.BusPolicyTests, DBus.BusLimitsTests | {verdict('DBus.BusPolicyTests', 'DBus.BusLimitsTests')} |")
w(f"| Hooks run only when root's and not group- or world-writable, up to / | Recovery.HookSafetyTests | {verdict('Recovery.HookSafetyTests')} |")
w("")
w("Unprivileged users cannot make the daemon open a file (report ids are checked on the message's")
w("bytes before any lookup), run a hook (hooks run only for kernel-reported errors and root's")
w("`errorwatch hooks test`), or grow its memory without bound (polkit checks capped per user and in")
w("total, `GetReports` replies capped at 4 MiB, argument sizes bounded by the bus). See docs/security.md.")
if failed_names:
    w("")
    w("## Failed in this run")
    w("")
    for name in failed_names:
        w(f"- {name}")
print("\n".join(out))
