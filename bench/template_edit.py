#!/usr/bin/env python3
"""Template-edit benchmark (issue #18, item 7): what saving a page template
of a fresh `manage startproject` app costs under each dev-loop tool.

A debug build of the scaffold reads templates/ from disk at every request,
so no tool needs to build anything; what differs is what each does anyway.
Over N edits of templates/welcome.html (its <title> block) it measures:
  * manage: save -> the `reload` event received by an open tab (a
    server-sent-events client on /__manage/events, as the page's script is);
  * cargo-watch (`cargo watch -x run`) and watchexec
    (`watchexec -r -e rs,html -- cargo run`), which restart the app on every
    save: save -> a new app process answering;
  * for every tool: cargo processes started per save (/proc, polled every
    2 ms), and failed requests per save seen by a poller hitting the served
    address every 2 ms.
Peers are measured when on PATH (`cargo install --locked cargo-watch
watchexec-cli`).

All traffic goes to 127.0.0.1; every loop is bounded in count and time, and
every process started is ended by process group.

Usage: bench/template_edit.py [--edits N] [--tools manage,cargo-watch,watchexec]
                              [--manage PATH] [--target-dir DIR]
"""

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time

from benchlib import cpu_model, free_port, http_get, manage_binary, stop_groups

TITLE = re.compile(r"\{% block title %\}.*?\{% endblock %\}")


def retitle(project, title):
    path = os.path.join(project, "templates", "welcome.html")
    with open(path) as f:
        text = f.read()
    if not TITLE.search(text):
        raise SystemExit("templates/welcome.html has no title block to edit")
    with open(path, "w") as f:
        f.write(TITLE.sub(lambda _: "{% block title %}" + title + "{% endblock %}", text, count=1))


def pids_named(name):
    out = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() == name:
                    out.add(int(entry))
        except OSError:
            pass
    return out


class Watch(threading.Thread):
    """Polls every 2 ms: GET / (failures), and the cargo and app processes
    alive (so that a short cargo run is still seen)."""

    def __init__(self, port, app, limit_s=900):
        super().__init__(daemon=True)
        self.port, self.app = port, app
        self.stop = threading.Event()
        self.failures = []  # times
        self.cargo = {}  # pid -> first seen
        self.apps = {}  # pid -> first seen
        self.deadline = time.monotonic() + limit_s

    def run(self):
        for _ in range(2_000_000):
            if self.stop.is_set() or time.monotonic() > self.deadline:
                return
            now = time.monotonic()
            try:
                if http_get(self.port, "/", 5)[0] != 200:
                    self.failures.append(now)
            except OSError:
                self.failures.append(now)
            for pid in pids_named("cargo"):
                self.cargo.setdefault(pid, now)
            for pid in pids_named(self.app):
                self.apps.setdefault(pid, now)
            time.sleep(0.002)


class Sse(threading.Thread):
    """An open tab's live-reload stream: the times `reload` events arrive."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=900)
        self.sock.sendall(b"GET /__manage/events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          b"Accept: text/event-stream\r\n\r\n")
        self.reloads = []
        self.hello = threading.Event()

    def run(self):
        buf = b""
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            now = time.monotonic()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"event: hello"):
                    self.hello.set()
                elif line.startswith(b"event: reload"):
                    self.reloads.append(now)


def wait_for(pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if pred():
                return True
        except OSError:
            pass
        time.sleep(0.01)
    return False


def measure(name, cmd, project, port, env, edits):
    proc = subprocess.Popen(cmd, cwd=project, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if not wait_for(lambda: http_get(port, "/healthz")[0] == 200, 900):
            raise RuntimeError(f"{name} never served")
        sse = None
        if name == "manage":
            sse = Sse(port)
            sse.start()
            if not sse.hello.wait(30):
                raise RuntimeError("no hello on the live-reload stream")
        watch = Watch(port, "benchsite")
        watch.start()
        time.sleep(2.0)
        reactions, cargos, fails = [], [], []
        for i in range(edits):
            seen_cargo, seen_apps = set(watch.cargo), set(watch.apps)
            failed_before = len(watch.failures)
            reloads_before = len(sse.reloads) if sse else 0
            t0 = time.monotonic()
            retitle(project, f"{name} edit {i} {time.time_ns()}")
            if sse:
                ok = wait_for(lambda: len(sse.reloads) > reloads_before, 60)
                reacted = sse.reloads[reloads_before] if ok else None
            else:
                # A new app process that answers.
                ok = wait_for(lambda: set(watch.apps) - seen_apps
                              and http_get(port, "/healthz")[0] == 200, 300)
                reacted = time.monotonic() if ok else None
            if reacted is None:
                raise RuntimeError(f"{name}: edit {i} got no reaction")
            reactions.append(reacted - t0)
            # Let whatever the save started settle before counting.
            time.sleep(1.5)
            cargos.append(len(set(watch.cargo) - seen_cargo))
            fails.append(len(watch.failures) - failed_before)
        watch.stop.set()
        watch.join()
        return {"reaction": reactions, "cargo": cargos, "fails": fails}
    finally:
        stop_groups([proc], signal.SIGINT, 15)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--tools", default="manage,cargo-watch,watchexec")
    ap.add_argument("--manage", metavar="PATH", help="manage binary (default: a release build)")
    ap.add_argument("--target-dir", metavar="DIR",
                    help="CARGO_TARGET_DIR for the app (default: a fresh temp dir)")
    args = ap.parse_args()
    manage = manage_binary(args.manage)
    tmp = tempfile.mkdtemp(prefix="manage-template-bench-")
    try:
        subprocess.run([manage, "-q", "startproject", "benchsite"], cwd=tmp, check=True)
        project = os.path.join(tmp, "benchsite")
        env = dict(os.environ, CARGO_TARGET_DIR=args.target_dir or os.path.join(tmp, "target"))
        env.pop("NO_COLOR", None)
        subprocess.run(["cargo", "build", "--quiet"], cwd=project, env=env, check=True)
        print(f"# template edits, {args.edits} per tool, on {cpu_model()} ({os.cpu_count()} cores)")
        print("| tool | save -> reaction p50 / p90 (ms) | cargo runs per save | failed requests per save |")
        print("|---|---|---|---|")
        for tool in args.tools.split(","):
            port = free_port()
            if tool == "manage":
                cmd = [manage, "-q", "runserver", str(port), "--migrate"]
                tool_env = env
                what = "reload event at the tab"
            else:
                binary = {"cargo-watch": "cargo-watch", "watchexec": "watchexec"}[tool]
                if not shutil.which(binary):
                    print(f"| {tool} | not installed | | |")
                    continue
                cmd = {"cargo-watch": ["cargo", "watch", "-q", "-x", "run"],
                       "watchexec": ["watchexec", "-r", "-e", "rs,html", "--", "cargo", "run"]}[tool]
                tool_env = dict(env, PORT=str(port), HOST="127.0.0.1")
                what = "restarted app answering"
            r = measure(tool, cmd, project, port, tool_env, args.edits)
            q = statistics.quantiles(r["reaction"], n=10)
            print(f"| {tool} | {statistics.median(r['reaction']) * 1000:.0f} / {q[8] * 1000:.0f} ({what}) "
                  f"| {statistics.mean(r['cargo']):.1f} (max {max(r['cargo'])}) "
                  f"| {statistics.mean(r['fails']):.1f} (max {max(r['fails'])}) |", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
