#!/usr/bin/env python3
"""collectstatic benchmark: manage against Django (issue #13).

Generates one static tree of --files files (default 10,000): CSS files that
reference images with url(), import each other with @import in chains up to
four deep, and point at source maps; JavaScript with source maps; images of
a few KiB of incompressible bytes. Then times, on that same tree:

  * manage collectstatic (release build), into an empty directory (cold) and
    again with nothing changed (warm);
  * Django's collectstatic with ManifestStaticFilesStorage (Django from PyPI
    in a virtualenv, --django-venv, made when missing), cold and warm.

Each figure is the median of --runs runs of the whole command, process start
included (manage also runs `cargo metadata`). Before timing, one untimed run
of each warms the page cache. manage does more than Django here: it also
writes .gz and .br copies of every compressible file (gzip -9, brotli 11);
Django's storage writes none. Both outputs are checked: the manifests name
the same files and every rewritten reference points at a file that exists.

Usage: bench/collectstatic.py [--files N] [--runs N] [--manage PATH]
                              [--django-venv DIR] [--keep DIR]
"""

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_model, manage_binary

DJANGO = "django==5.2.*"

DJANGO_SCRIPT = """
import sys
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["django.contrib.staticfiles"],
    STATIC_URL="/static/",
    STATIC_ROOT=sys.argv[2],
    STATICFILES_DIRS=[sys.argv[1]],
    STORAGES={"staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"}},
)
import django
django.setup()
from django.core.management import call_command
call_command("collectstatic", interactive=False, verbosity=0)
"""


def generate(root, files, seed=13):
    """Writes the tree; returns the number of files."""
    rng = random.Random(seed)
    # Shares: 40% images, 25% CSS, 5% CSS maps, 25% JS, 5% JS maps.
    n_img = files * 40 // 100
    n_css = files * 25 // 100
    n_css_map = files * 5 // 100
    n_js_map = files * 5 // 100
    n_js = files - n_img - n_css - n_css_map - n_js_map
    words = ["margin", "padding", "color", "border", "display", "flex", "grid",
             "font-size", "line-height", "background-color", "opacity", "z-index"]

    def write(rel, data):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)

    for i in range(n_img):
        write(f"img/{i // 500}/i{i}.png", b"\x89PNG\r\n\x1a\n" + rng.randbytes(rng.randint(1024, 8192)))
    for i in range(n_css):
        lines = []
        # Chains: css i imports css i-1 unless i is a multiple of 5 (depth <= 4).
        if i % 5:
            lines.append(f'@import "../{(i - 1) // 250}/s{i - 1}.css";')
        for r in range(rng.randint(20, 60)):
            img = rng.randrange(n_img)
            rule = "; ".join(f"{rng.choice(words)}: {rng.randint(0, 99)}px" for _ in range(4))
            if r % 10 == 0:
                rule += f'; background: url("../../img/{img // 500}/i{img}.png")'
            lines.append(f".c{i}-{r} {{ {rule} }}")
        if i < n_css_map:
            write(f"css/{i // 250}/s{i}.css.map", json.dumps(
                {"version": 3, "file": f"s{i}.css", "sources": [f"s{i}.scss"],
                 "mappings": "AAAA," * rng.randint(50, 200)}).encode())
            lines.append(f"/*# sourceMappingURL=s{i}.css.map */")
        write(f"css/{i // 250}/s{i}.css", ("\n".join(lines) + "\n").encode())
    for i in range(n_js):
        body = "\n".join(
            f"export function f{i}_{k}(a, b) {{ return a * {rng.randint(1, 9)} + b - {k}; }}"
            for k in range(rng.randint(20, 80)))
        if i < n_js_map:
            write(f"js/{i // 250}/m{i}.js.map", json.dumps(
                {"version": 3, "file": f"m{i}.js", "sources": [f"m{i}.ts"],
                 "mappings": "AAAA;" * rng.randint(50, 200)}).encode())
            body += f"\n//# sourceMappingURL=m{i}.js.map"
        write(f"js/{i // 250}/m{i}.js", (body + "\n").encode())
    return n_img + n_css + n_css_map + n_js + n_js_map


def timed(cmd, cwd=None, env=None):
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=3600)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} failed ({proc.returncode}):\n{proc.stderr.decode()[-3000:]}")
    return elapsed, proc.stderr.decode()


def median_runs(runs, cold_reset, cmd, **kw):
    times = []
    last = ""
    for _ in range(runs):
        if cold_reset:
            cold_reset()
        t, last = timed(cmd, **kw)
        times.append(t)
    return statistics.median(times), min(times), max(times), last


def check_output(out, manifest_paths, label):
    """Every hashed file exists; every url()/@import/sourceMappingURL in a
    hashed CSS/JS file names a file that exists."""
    ref = re.compile(rb'url\("([^"]+)"\)|@import "([^"]+)"|sourceMappingURL=(\S+?)(?: \*/|$)', re.M)
    missing = 0
    for plain, hashed in manifest_paths.items():
        path = os.path.join(out, hashed)
        if not os.path.isfile(path):
            missing += 1
            continue
        if hashed.endswith((".css", ".js")):
            with open(path, "rb") as f:
                for m in ref.finditer(f.read()):
                    target = next(g for g in m.groups() if g).decode()
                    full = os.path.normpath(os.path.join(os.path.dirname(path), target))
                    if not os.path.isfile(full) or not re.search(r"\.[0-9a-f]{12}\.", target):
                        missing += 1
    if missing:
        sys.exit(f"{label}: {missing} missing or unhashed references")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--manage", metavar="PATH",
                    help="a manage binary to measure instead of building one with --release")
    ap.add_argument("--django-venv", default=os.path.expanduser("~/.cache/manage-bench-django"))
    ap.add_argument("--keep", help="generate into this directory and keep it")
    args = ap.parse_args()

    manage = manage_binary(args.manage)
    python = os.path.join(args.django_venv, "bin/python")
    if not os.access(python, os.X_OK):
        subprocess.run([sys.executable, "-m", "venv", args.django_venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", DJANGO], check=True)
    django_version = subprocess.run([python, "-c", "import django; print(django.__version__)"],
                                    check=True, capture_output=True, text=True).stdout.strip()

    work = args.keep or tempfile.mkdtemp(prefix="manage-bench-collectstatic-")
    os.makedirs(work, exist_ok=True)
    try:
        project = os.path.join(work, "project")
        tree = os.path.join(project, "static")
        shutil.rmtree(project, ignore_errors=True)
        os.makedirs(project)
        with open(os.path.join(project, "Cargo.toml"), "w") as f:
            f.write('[package]\nname = "bench"\nversion = "0.1.0"\nedition = "2021"\n\n'
                    '[package.metadata.manage]\nstatic-dir = "static"\n')
        os.makedirs(os.path.join(project, "src"))
        with open(os.path.join(project, "src/main.rs"), "w") as f:
            f.write("fn main() {}\n")
        count = generate(tree, args.files)
        size = sum(os.path.getsize(os.path.join(d, n)) for d, _, ns in os.walk(tree) for n in ns)
        script = os.path.join(work, "django_collect.py")
        with open(script, "w") as f:
            f.write(DJANGO_SCRIPT)
        m_out = os.path.join(work, "out-manage")
        d_out = os.path.join(work, "out-django")
        env = dict(os.environ)
        env.pop("CARGO_TARGET_DIR", None)
        manage_cmd = [manage, "collectstatic", "--out", m_out]
        django_cmd = [python, script, tree, d_out]

        def reset(path):
            return lambda: shutil.rmtree(path, ignore_errors=True)

        # Untimed warm-up: page cache, venv imports.
        reset(m_out)()
        timed(manage_cmd, cwd=project, env=env)
        reset(d_out)()
        timed(django_cmd)

        results = {}
        results["manage cold"] = median_runs(args.runs, reset(m_out), manage_cmd, cwd=project, env=env)
        results["manage warm (no change)"] = median_runs(max(args.runs, 5), None, manage_cmd,
                                                         cwd=project, env=env)
        if "nothing was written" not in results["manage warm (no change)"][3]:
            sys.exit("manage's warm run wrote something:\n" + results["manage warm (no change)"][3])
        results["django cold"] = median_runs(args.runs, reset(d_out), django_cmd)
        results["django warm (no change)"] = median_runs(args.runs, None, django_cmd)

        with open(os.path.join(m_out, "staticfiles.json")) as f:
            m_paths = json.load(f)["paths"]
        with open(os.path.join(d_out, "staticfiles.json")) as f:
            d_paths = json.load(f)["paths"]
        if set(m_paths) != set(d_paths) or len(m_paths) != count:
            sys.exit(f"manifests differ: manage {len(m_paths)}, django {len(d_paths)}, tree {count}")
        check_output(m_out, m_paths, "manage")
        check_output(d_out, d_paths, "django")
        gz = sum(1 for d, _, ns in os.walk(m_out) for n in ns if n.endswith(".gz"))
        br = sum(1 for d, _, ns in os.walk(m_out) for n in ns if n.endswith(".br"))

        print(f"# collectstatic, {count} files ({size / 2**20:.1f} MiB), "
              f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        print(f"# {cpu_model()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} at the end; "
              f"Django {django_version} on Python {sys.version.split()[0]}; "
              f"median of {args.runs} runs (warm manage: {max(args.runs, 5)})")
        print(f"# manage also wrote {gz} .gz and {br} .br files (counting plain and hashed names)")
        print()
        print("| run | median | min | max |")
        print("|---|---:|---:|---:|")
        for name, (med, lo, hi, _) in results.items():
            print(f"| {name} | {med:.2f} s | {lo:.2f} s | {hi:.2f} s |")
        print()
        cold = results["django cold"][0] / results["manage cold"][0]
        warm = results["django warm (no change)"][0] / results["manage warm (no change)"][0]
        print(f"manage is {cold:.1f}x faster cold and {warm:.1f}x faster warm; "
              f"warm no-op {results['manage warm (no change)'][0]:.3f} s")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
