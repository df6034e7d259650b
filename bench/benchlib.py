"""Helpers shared by the benchmark scripts in bench/: loopback only."""

import os
import re
import platform
import signal
import socket
import subprocess
import sys
import time


def free_port():
    """A loopback port that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port, path="/", timeout=5.0):
    """GET over a fresh loopback connection: (status, body bytes); raises OSError."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else 0
    return status, body


def manage_binary(path):
    """The manage binary to measure: `path` when given (--manage), else a
    release build of this checkout (built here, into CARGO_TARGET_DIR or
    target/)."""
    if path:
        return os.path.abspath(path)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=root, check=True)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(root, "target")
    return os.path.join(os.path.abspath(target), "release", "manage")


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def stop_groups(procs, sig, grace):
    """Sends `sig` to each process group (every proc was started with
    start_new_session=True), waits up to `grace` seconds in all, then
    SIGKILLs each group and reaps it."""
    procs = list(procs)
    for proc in procs:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()


UNIT = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        raise ValueError(f"unparseable wrk duration {text!r}")
    return float(m.group(1)) * UNIT[m.group(2)]


def wrk(url, connections, duration):
    """One bounded wrk run: {'rps', 'p50', 'p99' (ms), 'errors'}."""
    cmd = [
        "wrk",
        "--latency",
        "-t1",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        url,
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, check=True, timeout=duration + 30
    ).stdout
    pct = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", out, re.M))
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if "50" not in pct or "99" not in pct or not rps:
        sys.exit(f"could not read wrk's output:\n{out}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sock:
        errors += sum(int(x) for x in sock.groups())
    return {
        "rps": float(rps.group(1)),
        "p50": to_ms(pct["50"]),
        "p99": to_ms(pct["99"]),
        "errors": errors,
    }
