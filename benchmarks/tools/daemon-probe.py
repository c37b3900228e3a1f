#!/usr/bin/python3
"""Start a daemon under a stand-in NOTIFY_SOCKET and measure it, all with CLOCK_MONOTONIC.

usage: daemon-probe.py [--warmup S] [--idle S] [--sample CMD]... [--storm CMD [--settle S]] [--in-flight CMD]
                       [--in-flight-lead S] [--label L] -- CMD ARGS...

  start -> READY=1   from just before fork/exec to the READY=1 datagram (sd_notify)
  idle              after --warmup seconds, CPU (utime+stime of every thread, /proc) and voluntary
                    context switches over --idle seconds, the threads that used CPU, and VmRSS /
                    RssAnon / RssFile at the end; each --sample CMD (a shell command, PID replaced by the
                    daemon's pid) is run then and its output kept in "samples"
  storm             --storm CMD runs to its end after the idle window (it raises the errors); VmRSS is
                    sampled every 50 ms from its start until --settle seconds after its end: the peak
                    (its RssAnon, RssFile and threads; and VmHWM), RSS (anon, file) at the end of the settle window, and how long after
                    the storm RSS first came back within 4 MiB of the idle RSS; --storm-check CMD
                    then prints a JSON object kept as "storm_check" (e.g. counts against the kernel's)
  SIGTERM -> exit   --in-flight CMD is started (not waited for) --in-flight-lead seconds before
                    SIGTERM, so errors are still being raised when the signal arrives
Prints one JSON object. Ends only the process it started (by PID); SIGKILL after 10 s.
"""
import argparse, json, os, signal, socket, subprocess, sys, tempfile, time

TICK = os.sysconf("SC_CLK_TCK")


def threads(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            fields = stat[stat.rindex(")") + 2:].split()
            cpu = int(fields[11]) + int(fields[12])
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                vol = next(int(l.split()[1]) for l in f if l.startswith("voluntary_ctxt_switches"))
            out[tid] = (comm, cpu, vol)
        except (FileNotFoundError, ProcessLookupError, StopIteration):
            pass
    return out


def memory(pid):
    values = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":")[0]
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM"):
                values[key.lower() + "_kb"] = int(line.split()[1])
            elif key == "Threads":
                values["threads"] = int(line.split()[1])
    return values


def storm(pid, cmd, settle, idle_kb, check, result):
    """Runs cmd to its end while sampling VmRSS, then keeps sampling for settle seconds; then runs check
    (a shell command: its stdout, parsed as JSON, is the storm's "check")."""
    peak, back_at, at_peak = 0, None, {}
    t0 = time.monotonic()
    helper = subprocess.Popen(cmd, shell=True)
    while helper.poll() is None:
        m = memory(pid)
        if m["vmrss_kb"] > peak:
            peak, at_peak = m["vmrss_kb"], m
        time.sleep(0.05)
    t1 = time.monotonic()
    result["storm_s"] = round(t1 - t0, 2)
    result["storm_exit_code"] = helper.returncode
    while time.monotonic() - t1 < settle:
        m = memory(pid)
        r = m["vmrss_kb"]
        if r > peak:
            peak, at_peak = r, m
        if back_at is None and r <= idle_kb + 4096:
            back_at = time.monotonic() - t1
        time.sleep(0.05)
    result["storm_peak_rss_kb"] = peak
    result["storm_peak_rssanon_kb"] = at_peak.get("rssanon_kb")
    result["storm_peak_rssfile_kb"] = at_peak.get("rssfile_kb")
    result["storm_peak_threads"] = at_peak.get("threads")
    result["settled_back_within_4mib_s"] = None if back_at is None else round(back_at, 1)
    result["settle_window_s"] = settle
    result.update({"settled_" + k: v for k, v in memory(pid).items()})
    if check:
        out = subprocess.run(check, shell=True, capture_output=True, text=True)
        try:
            result["storm_check"] = json.loads(out.stdout)
        except ValueError:
            result["storm_check"] = {"error": (out.stdout + out.stderr)[-400:]}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--idle", type=float, default=10)
    p.add_argument("--storm")
    p.add_argument("--settle", type=float, default=60)
    p.add_argument("--storm-check")
    p.add_argument("--in-flight")
    p.add_argument("--in-flight-lead", type=float, default=0.3)
    p.add_argument("--sample", action="append", default=[])
    p.add_argument("--label", default="")
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd

    sockdir = tempfile.mkdtemp(prefix="errorwatch-notify-")
    path = os.path.join(sockdir, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    result = {"label": a.label}
    t0 = time.monotonic_ns()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        sock.settimeout(30)
        ready = None
        while ready is None:
            msg = sock.recv(4096).decode(errors="replace")
            if "READY=1" in msg.split("\n"):
                ready = time.monotonic_ns()
        result["ready_ms"] = round((ready - t0) / 1e6, 1)
        time.sleep(a.warmup)
        before = threads(proc.pid)
        w0 = time.monotonic()
        time.sleep(a.idle)
        after = threads(proc.pid)
        result["idle_window_s"] = round(time.monotonic() - w0, 1)
        cpu = sum(v[1] for v in after.values()) - sum(v[1] for t, v in before.items() if t in after)
        result["idle_cpu_ms"] = cpu * 1000 // TICK
        result["idle_wakeups"] = sum(v[2] - before.get(t, (None, 0, 0))[2] for t, v in after.items())
        busy = {}
        for t, (comm, c, vol) in after.items():
            d = c - before.get(t, (comm, 0, 0))[1]
            w = vol - before.get(t, (comm, 0, 0))[2]
            if d > 0 or w > 0:
                busy[f"{comm}/{t}"] = {"cpu_ms": d * 1000 // TICK, "wakeups": w}
        result["idle_threads"] = busy
        result.update(memory(proc.pid))
        if a.sample:
            result["samples"] = [subprocess.run(c.replace("PID", str(proc.pid)), shell=True, capture_output=True, text=True).stdout.strip()
                                 for c in a.sample]
        if a.storm:
            storm(proc.pid, a.storm, a.settle, result["vmrss_kb"], a.storm_check, result)
        with open(f"/proc/{proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        result["total_cpu_ms_before_stop"] = (int(fields[11]) + int(fields[12])) * 1000 // TICK
        helper = None
        if a.in_flight:
            helper = subprocess.Popen(a.in_flight, shell=True)
            time.sleep(a.in_flight_lead)
        t_term = time.monotonic_ns()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            result["killed"] = True
        result["sigterm_to_exit_ms"] = round((time.monotonic_ns() - t_term) / 1e6, 1)
        result["exit_code"] = proc.returncode
        if helper is not None:
            result["in_flight_still_running_at_exit"] = helper.poll() is None
            helper.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.returncode not in (0, None) or "Fatal" in err:
            result["stderr_tail"] = err[-800:]
        sock.close()
        os.unlink(path)
        os.rmdir(sockdir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
