#!/usr/bin/env python3
"""Dev-loop benchmark for `manage runserver` and its peers (issues #3, #8).

For each app (`--apps`), over N edits it measures:
  * edit-to-new-response latency (a save until GET / shows the new text),
  * the bare `cargo build` time of the same edit and the app's start-to-ready
    time, so that manage's own overhead = latency - build - start,
  * failed requests per edit and the longest unavailable window, seen by a
    poller hitting the served address every 2 ms,
  * idle CPU of the tool's own process over 20 s without edits, and its RSS.
It runs cargo-watch (`cargo watch -x run`) and watchexec
(`watchexec -r -e rs,html -- cargo run`) the same way when they are on PATH
(`cargo install --locked cargo-watch watchexec-cli`).

The apps:
  scaffold    a fresh `manage startproject` app (reads PORT); an edit rewrites
              the `project` global in src/pages.rs (every page's title)
  fixed-port  tests/fixtures/fixed-port: listens on a fixed 127.0.0.1 port
              baked in at build time and ignores PORT (issue #8); an edit
              rewrites `const VERSION` in src/main.rs. manage is measured at
              its own address, the peers at the app's fixed port.

All traffic goes to 127.0.0.1; every loop is bounded in count and time, and
every process started is ended by process group.

Usage: bench/devloop.py [--edits N] [--idle SECS] [--apps scaffold,fixed-port]
                        [--tools manage,cargo-watch,watchexec] [--manage PATH]
                        [--target-dir DIR]
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import cpu_model, free_port, http_get, manage_binary, stop_groups

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


PROJECT_GLOBAL = re.compile(r'env\.add_global\("project", (?:env!\("CARGO_PKG_NAME"\)|"[^"]*")\)')


def set_title(project, title):
    """A Rust edit (a real rebuild) that shows in every page's title: the
    `project` global of the scaffold's src/pages.rs."""
    path = os.path.join(project, "src", "pages.rs")
    with open(path) as f:
        text = f.read()
    if not PROJECT_GLOBAL.search(text):
        sys.exit("src/pages.rs has no `project` global to edit")
    with open(path, "w") as f:
        f.write(PROJECT_GLOBAL.sub(lambda _: f'env.add_global("project", "{title}")', text, count=1))


class Scaffold:
    """A fresh `manage startproject` app: reads HOST/PORT, has /healthz."""

    name = "scaffold"
    what = "edits of the `project` global in src/pages.rs of a fresh `startproject` app"

    def setup(self, manage, tmp):
        subprocess.run([manage, "-q", "startproject", "benchsite"], cwd=tmp, check=True)
        self.project = os.path.join(tmp, "benchsite")
        self.bin = "benchsite"
        self.ready_path = "/healthz"

    def edit(self, marker):
        set_title(self.project, marker)

    def env(self, port):
        """What the app is started with when it should serve on `port`."""
        return {"PORT": str(port), "HOST": "127.0.0.1"}

    def served_port(self, port):
        """Where the app answers when started with `env(port)`."""
        return port


class FixedPort:
    """tests/fixtures/fixed-port: 127.0.0.1:<port.txt>, baked in at build
    time; HOST, PORT and LISTEN_FDS are ignored."""

    name = "fixed-port"
    what = "edits of `const VERSION` in the fixed-port fixture app (issue #8)"

    def setup(self, manage, tmp):
        source = os.path.join(ROOT, "tests", "fixtures", "fixed-port")
        self.project = os.path.join(tmp, "fixedsite")
        # Copies the symlinked src/http.rs as a file.
        shutil.copytree(source, self.project, symlinks=False)
        self.port = free_port()
        with open(os.path.join(self.project, "port.txt"), "w") as f:
            f.write(f"{self.port}\n")
        self.bin = "fixed-port"
        self.ready_path = "/"

    def edit(self, marker):
        path = os.path.join(self.project, "src", "main.rs")
        with open(path) as f:
            lines = f.read().split("\n")
        lines = [f'const VERSION: &str = "{marker}";' if line.startswith("const VERSION:") else line
                 for line in lines]
        with open(path, "w") as f:
            f.write("\n".join(lines))

    def env(self, port):
        return {}

    def served_port(self, port):
        return self.port


APPS = {"scaffold": Scaffold, "fixed-port": FixedPort}


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


def measure_tool(name, cmd, app, port, env, edits, idle):
    proc = start(cmd, app.project, env)
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
            app.edit(marker)
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


def bare_build_and_start(app, env, edits, exe):
    builds, starts = [], []
    for i in range(edits):
        app.edit(f"bare edit {i} {time.time_ns()}")
        t = time.monotonic()
        subprocess.run(["cargo", "build", "--quiet"], cwd=app.project, env=env, check=True)
        builds.append(time.monotonic() - t)
        port = free_port()
        t = time.monotonic()
        proc = subprocess.Popen([exe], cwd=app.project, env=dict(env, **app.env(port)),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            if not wait_for(lambda: get(app.served_port(port), app.ready_path)[0] == 200, 30):
                raise RuntimeError(f"{app.name}: the bare app never answered")
            starts.append(time.monotonic() - t)
        finally:
            stop_groups([proc], signal.SIGKILL, 5)
    return builds, starts


def ms(x):
    return f"{x * 1000:.0f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--idle", type=float, default=20.0)
    ap.add_argument("--apps", default="scaffold,fixed-port",
                    help=f"comma separated, from: {', '.join(APPS)}")
    ap.add_argument("--tools", default="manage,cargo-watch,watchexec")
    ap.add_argument("--manage-arg", action="append", default=[],
                    help="extra argument for `manage runserver` (repeatable)")
    ap.add_argument("--manage", metavar="PATH",
                    help="a manage binary to measure instead of building one with --release "
                         "(a debug build, for a quick check of the script)")
    ap.add_argument("--target-dir", metavar="DIR",
                    help="cargo target dir for the apps (default: a fresh one in the temp dir; "
                         "a warm one skips compiling hyper and tokio, for a quick check)")
    args = ap.parse_args()
    for name in args.apps.split(","):
        if name not in APPS:
            ap.error(f"unknown app `{name}`; choose from {', '.join(APPS)}")

    manage = manage_binary(args.manage)
    tmp = tempfile.mkdtemp(prefix="manage-bench-")
    try:
        env = dict(os.environ)
        target = os.path.abspath(args.target_dir) if args.target_dir else os.path.join(tmp, "target")
        env["CARGO_TARGET_DIR"] = target
        for app_name in args.apps.split(","):
            app = APPS[app_name]()
            app.setup(manage, tmp)
            measure_app(app, manage, env, target, args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure_app(app, manage, env, target, args):
    subprocess.run(["cargo", "build", "--quiet"], cwd=app.project, env=env, check=True)
    exe = os.path.join(target, "debug", app.bin)

    builds, starts = bare_build_and_start(app, env, args.edits, exe)
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
        served = port
        if name != "manage":
            # No proxy in front: the app serves itself, where it listens.
            tool_env.update(app.env(port))
            served = app.served_port(port)
        print(f"measuring {name} with the {app.name} app ...", file=sys.stderr)
        results[name] = measure_tool(name, tools[name](port), app, served, tool_env,
                                     args.edits, args.idle)

    print(f"# dev loop, {args.edits} {app.what}, {os.cpu_count()} cores ({cpu_model()})")
    print()
    print(f"bare `cargo build` of the edit: median {ms(statistics.median(builds))} ms; "
          f"app start-to-ready: median {ms(statistics.median(starts))} ms")
    print()
    print("| app | tool | edit→new response p50 (ms) | max (ms) | overhead p50 (ms) | failed requests / edit (max) | longest unavailable (ms) | idle CPU (%) | RSS (MB) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        lat = statistics.median(r["latency"])
        print(f"| {app.name} | {name} | {ms(lat)} | {ms(max(r['latency']))} | {ms(lat - bare)} | "
              f"{statistics.mean(r['fails']):.1f} ({max(r['fails'])}) | {ms(max(r['window']))} | "
              f"{r['cpu']:.2f} | {r['rss']:.1f} |")
    print()


if __name__ == "__main__":
    main()
