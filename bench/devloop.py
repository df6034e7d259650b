#!/usr/bin/env python3
"""Dev-loop benchmark for `manage runserver` and its peers (issue #3).

On a fresh `manage startproject` app it measures, over N edits:
  * edit-to-new-response latency (a save until GET / shows the new text),
  * the bare `cargo build` time of the same edit and the app's start-to-ready
    time, so that manage's own overhead = latency - build - start,
  * failed requests per edit and the longest unavailable window, seen by a
    poller hitting the served address every 2 ms,
  * idle CPU of the tool's own process over 20 s without edits, and its RSS.
It runs cargo-watch (`cargo watch -x run`) and watchexec
(`watchexec -r -e rs,html -- cargo run`) the same way when they are on PATH
(`cargo install --locked cargo-watch watchexec-cli`).

All traffic goes to 127.0.0.1; every loop is bounded in count and time, and
every process started is ended by process group.

Usage: bench/devloop.py [--edits N] [--idle SECS] [--tools manage,cargo-watch,watchexec]
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import cpu_model, free_port, http_get, stop_groups

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def get(port, path="/", timeout=5.0):
    """Returns (status, body text) or raises OSError."""
    status, body = http_get(port, path, timeout)
    return status, body.decode("utf-8", "replace")


class Poller(threading.Thread):
    """GET / every 2 ms; records (time, ok, body-marker)."""

    def __init__(self, port, limit_s=900):
        super().__init__(daemon=True)
        self.port = port
        self.samples = []
        self.stop = threading.Event()
        self.deadline = time.monotonic() + limit_s

    def run(self):
        for _ in range(2_000_000):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            t = time.monotonic()
            try:
                status, body = get(self.port, timeout=30)
                self.samples.append((t, status == 200, body if status == 200 else ""))
            except OSError:
                self.samples.append((t, False, ""))
            time.sleep(0.002)


def start(cmd, cwd, env):
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(0.005)
    return False


def set_title(project, title):
    path = os.path.join(project, "src", "welcome.html")
    with open(path) as f:
        text = f.read()
    start = text.index("<title>") + len("<title>")
    end = text.index("</title>")
    with open(path, "w") as f:
        f.write(text[:start] + title + text[end:])


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_tool(name, cmd, project, port, env, edits, idle):
    proc = start(cmd, project, env)
    try:
        if not wait_for(lambda: get(port)[0] == 200, 600):
            raise RuntimeError(f"{name} never served")
        poller = Poller(port)
        poller.start()
        time.sleep(1.0)
        latencies, fails, windows = [], [], []
        for i in range(edits):
            marker = f"{name} edit {i} {time.time_ns()}"
            before = len(poller.samples)
            t0 = time.monotonic()
            set_title(project, marker)
            if not wait_for(lambda: any(marker in s[2] for s in poller.samples[before:]), 300):
                raise RuntimeError(f"{name}: edit {i} never served")
            seen = next(s[0] for s in poller.samples[before:] if marker in s[2])
            latencies.append(seen - t0)
            time.sleep(1.0)
            window = poller.samples[before:]
            fails.append(sum(1 for s in window if not s[1]))
            longest, down_since = 0.0, None
            for t, ok, _ in window:
                if not ok and down_since is None:
                    down_since = t
                elif ok and down_since is not None:
                    longest = max(longest, t - down_since)
                    down_since = None
            windows.append(longest)
        poller.stop.set()
        poller.join()
        time.sleep(2)
        t1, c1 = time.monotonic(), cpu_ticks(proc.pid)
        time.sleep(idle)
        t2, c2 = time.monotonic(), cpu_ticks(proc.pid)
        cpu = 100.0 * (c2 - c1) / CLK_TCK / (t2 - t1)
        return {
            "latency": latencies,
            "fails": fails,
            "window": windows,
            "cpu": cpu,
            "rss": rss_mb(proc.pid),
        }
    finally:
        stop_groups([proc], signal.SIGINT, 15)


def bare_build_and_start(project, env, edits, exe):
    builds, starts = [], []
    for i in range(edits):
        set_title(project, f"bare edit {i} {time.time_ns()}")
        t = time.monotonic()
        subprocess.run(["cargo", "build", "--quiet"], cwd=project, env=env, check=True)
        builds.append(time.monotonic() - t)
        port = free_port()
        t = time.monotonic()
        app = subprocess.Popen([exe], cwd=project, env=dict(env, PORT=str(port), HOST="127.0.0.1"),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        try:
            wait_for(lambda: get(port, "/healthz")[0] == 200, 30)
            starts.append(time.monotonic() - t)
        finally:
            os.killpg(app.pid, signal.SIGKILL)
            app.wait()
    return builds, starts


def ms(x):
    return f"{x * 1000:.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--tools", default="manage,cargo-watch,watchexec")
    ap.add_argument("--manage-arg", action="append", default=[],
                    help="extra argument for `manage runserver` (repeatable)")
    args = ap.parse_args()

    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    manage = os.path.join(ROOT, "target", "release", "manage")
    tmp = tempfile.mkdtemp(prefix="manage-bench-")
    try:
        subprocess.run([manage, "-q", "startproject", "benchsite"], cwd=tmp, check=True)
        project = os.path.join(tmp, "benchsite")
        env = dict(os.environ)
        env.pop("CARGO_TARGET_DIR", None)
        env["CARGO_TARGET_DIR"] = os.path.join(tmp, "target")
        subprocess.run(["cargo", "build", "--quiet"], cwd=project, env=env, check=True)
        exe = os.path.join(tmp, "target", "debug", "benchsite")

        builds, starts = bare_build_and_start(project, env, args.edits, exe)
        bare = statistics.median(builds) + statistics.median(starts)

        tools = {
            "manage": lambda p: [manage, "runserver", str(p), *args.manage_arg],
            "cargo-watch": lambda p: ["cargo", "watch", "-q", "-x", "run"],
            "watchexec": lambda p: ["watchexec", "-r", "-e", "rs,html", "--", "cargo", "run"],
        }
        binaries = {"manage": manage, "cargo-watch": "cargo-watch", "watchexec": "watchexec"}
        results = {}
        for name in args.tools.split(","):
            if name != "manage" and shutil.which(binaries[name]) is None:
                print(f"skipping {name}: not installed", file=sys.stderr)
                continue
            port = free_port()
            tool_env = dict(env)
            if name != "manage":
                tool_env.update(PORT=str(port), HOST="127.0.0.1")
            print(f"measuring {name} ...", file=sys.stderr)
            results[name] = measure_tool(name, tools[name](port), project, port, tool_env,
                                         args.edits, args.idle)

        print(f"# dev loop, {args.edits} edits of src/welcome.html, {os.cpu_count()} cores ({cpu_model()})")
        print()
        print(f"bare `cargo build` of the edit: median {ms(statistics.median(builds))} ms; "
              f"app start-to-ready: median {ms(statistics.median(starts))} ms")
        print()
        print("| tool | edit→new response p50 (ms) | max (ms) | overhead p50 (ms) | failed requests / edit (max) | longest unavailable (ms) | idle CPU (%) | RSS (MB) |")
        print("|---|---|---|---|---|---|---|---|")
        for name, r in results.items():
            lat = statistics.median(r["latency"])
            print(f"| {name} | {ms(lat)} | {ms(max(r['latency']))} | {ms(lat - bare)} | "
                  f"{statistics.mean(r['fails']):.1f} ({max(r['fails'])}) | {ms(max(r['window']))} | "
                  f"{r['cpu']:.2f} | {r['rss']:.1f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
