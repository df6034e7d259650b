#!/usr/bin/env python3
"""Container build benchmark (issue #12): manage's Dockerfile against the
one-stage-copy Dockerfile Loco generates (`COPY . .` then `cargo build
--release`, no dependency layer), on the same fresh `startproject` project.

For each Dockerfile it times, with the classic builder and `--network host`:

  * a cold build (no layer of this project in Docker's cache);
  * a rebuild after changing one line of src/routes.rs (a source-only
    change: manage's dependency layer should come from the cache).

and prints the image size. The base images the Dockerfiles name
(rust:1.95-slim-bookworm, debian:bookworm-slim, nginx:...) must exist
locally: no registry is reachable here, and the test suite
(tests/support/docker/) makes them from debootstrap trees.
Every image the script builds is removed afterwards by id; the images that
were there before (the bases) are kept.

Usage: bench/container.py [--manage PATH] [--keep DIR]
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_model, manage_binary

# What Loco's `cargo loco generate deployment docker` writes, with the image
# names of ours so that both start from the same bases (loco-rs/loco
# loco-gen/src/templates/deployment/docker/docker.t at e9598a68).
LOCO_STYLE = """FROM rust:1.95-slim-bookworm AS builder
WORKDIR /usr/src/
COPY . .
RUN cargo build --release
FROM debian:bookworm-slim
WORKDIR /usr/app
COPY --from=builder /usr/src/static /usr/app/static
COPY --from=builder /usr/src/target/release/benchsite /usr/app/benchsite
ENTRYPOINT ["/usr/app/benchsite"]
"""


def run(cmd, cwd=None, env=None):
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out.stdout


def build(context, dockerfile, images):
    """docker build; (seconds, image id). Every layer id goes to `images`."""
    iid = os.path.join(context, ".iid")
    started = time.monotonic()
    log = run(["docker", "build", "--network", "host", "--force-rm", "--iidfile", iid,
               "-f", dockerfile, context],
              env={**os.environ, "DOCKER_BUILDKIT": "0"})
    took = time.monotonic() - started
    for line in log.splitlines():
        line = line.strip()
        if line.startswith("---> ") and all(c in "0123456789abcdef" for c in line[5:]) and len(line) > 16:
            images.append(line[5:])
    with open(iid) as f:
        image = f.read().strip()
    os.remove(iid)
    images.append(image)
    return took, image


def size_mb(image):
    return int(run(["docker", "image", "inspect", "--format", "{{.Size}}", image])) / 1e6


def edit(project):
    """A one-line source change: /healthz's answer."""
    path = os.path.join(project, "src", "routes.rs")
    with open(path) as f:
        text = f.read()
    assert '"ok\\n"' in text, "src/routes.rs no longer answers \"ok\\n\""
    with open(path, "w") as f:
        f.write(text.replace('"ok\\n"', '"ok, edited\\n"', 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manage", metavar="PATH",
                        help="manage binary [default: a release build of this checkout]")
    parser.add_argument("--keep", help="work in this directory and leave it")
    args = parser.parse_args()
    manage = manage_binary(args.manage)
    for base in ["rust:1.95-slim-bookworm", "debian:bookworm-slim"]:
        if subprocess.run(["docker", "image", "inspect", base], capture_output=True).returncode:
            sys.exit(f"the base image {base} is missing; the test suite makes it "
                     "(cargo test --test integration deploy_container)")

    # The images already here (the base images among them) are never
    # removed: a build log names the base image's id as its first layer.
    keep = set(run(["docker", "images", "--all", "--quiet", "--no-trunc"]).split())
    keep |= {k.split(":", 1)[-1] for k in keep}
    work = args.keep or tempfile.mkdtemp(prefix="manage-bench-container-")
    os.makedirs(work, exist_ok=True)
    images = []
    results = []
    try:
        for kind in ["manage", "loco-style"]:
            project = os.path.join(work, kind)
            shutil.rmtree(project, ignore_errors=True)
            run([manage, "startproject", "benchsite", project])
            run(["cargo", "generate-lockfile", "--quiet"], cwd=project)
            run([manage, "deploy-config", "--only", "container"], cwd=project)
            dockerfile = os.path.join(project, "Dockerfile")
            if kind == "loco-style":
                with open(dockerfile, "w") as f:
                    f.write(LOCO_STYLE)
            cold, image = build(project, dockerfile, images)
            edit(project)
            warm, _ = build(project, dockerfile, images)
            results.append((kind, cold, warm, size_mb(image)))
            print(f"{kind}: cold {cold:.1f} s, after a source change {warm:.1f} s, "
                  f"image {size_mb(image):.1f} MB", file=sys.stderr)
    finally:
        for image in reversed(images):
            if not any(k.startswith(image.split(":", 1)[-1]) for k in keep):
                subprocess.run(["docker", "image", "rm", image], capture_output=True)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)

    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores; docker classic builder")
    print("| Dockerfile | cold build | rebuild after a source change | image |")
    print("| --- | --- | --- | --- |")
    for kind, cold, warm, size in results:
        print(f"| {kind} | {cold:.1f} s | {warm:.1f} s | {size:.1f} MB |")


if __name__ == "__main__":
    main()
