#!/usr/bin/env python3
"""Issue 17's fresh-runner benchmark for cache mounts that travel.

A "package mirror" on loopback (an http server over generated package files, throttled to a
download rate like a real mirror's; `--rate`, MiB/s) serves a dependency step that fills a
`RUN --mount=type=cache` dir, downloading only what the cache lacks:

    COPY requirements.txt /req.txt
    RUN --mount=type=cache,target=/cache  fetch every listed package missing from /cache, install

Runner A builds it once and exports its cache with `cache-mounts=true` (untimed). Then
requirements.txt changes (a new line), so on every fresh runner the step must run again, and
each measured build starts from an empty store (the base image pulled untimed), interleaved:

- `hoist + mounts`:    `--cache-from` restores A's cache mount: the step downloads nothing;
- `hoist, no mounts`:  the same cache without its mounts (`cache-mounts=false`): every package
                       is downloaded again, as on any builder without travelling mounts;
- `BuildKit` (`--buildkit ADDR`, its cache pruned first): BuildKit's own registry cache, which
                       never carries cache mounts.

    scripts/lab-setup.sh; cargo build --release
    scripts/bench_cache_mounts.py [--size-mib 300] [--rate 50] [--runs 3] [--buildkit unix:///run/bk/buildkitd.sock]
"""
import argparse, http.server, os, random, shutil, socket, statistics, subprocess, sys, threading, time

REG = "localhost:5000"
BASE = f"{REG}/busybox:latest"
HOIST = os.environ.get("HOIST", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "hoist"))
WORK = os.environ.get("HOIST_BENCH_DIR", "/var/tmp/hoist-bench-cm")

DOCKERFILE = """FROM localhost:5000/busybox:latest
ARG MIRROR
COPY requirements.txt /req.txt
RUN --mount=type=cache,target=/cache sh -ec '\\
  for p in $(grep -v "^#" /req.txt); do \\
    if [ ! -f /cache/$p ]; then wget -q -O /cache/$p.part "$MIRROR/$p"; mv /cache/$p.part /cache/$p; fi; \\
  done; \\
  for p in $(grep -v "^#" /req.txt); do cat /cache/$p; done | md5sum > /installed'
"""


def make_mirror(d, size_mib, n=60):
    os.makedirs(d, exist_ok=True)
    names = [f"pkg{i:03d}.whl" for i in range(n)]
    per = size_mib * (1 << 20) // n
    rng = random.Random(17)
    for name in names:
        p = os.path.join(d, name)
        if not os.path.exists(p) or os.path.getsize(p) != per:
            with open(p, "wb") as f:
                f.write(rng.randbytes(per))
    return names


def serve(d, rate_mib):
    """A threaded http server over `d` that sends at most `rate_mib` MiB/s per download."""
    chunk = 64 << 10

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=d, **k)

        def log_message(self, *a):
            pass

        def copyfile(self, src, dst):
            start, sent = time.monotonic(), 0
            while True:
                buf = src.read(chunk)
                if not buf:
                    return
                dst.write(buf)
                sent += len(buf)
                ahead = sent / (rate_mib * (1 << 20)) - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)

    s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s.server_address[1]


def run(cmd, env=None):
    t = time.monotonic()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    if p.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{p.stderr.decode(errors='replace')[-2000:]}")
    return time.monotonic() - t


def fresh(root):
    shutil.rmtree(root, ignore_errors=True)
    run([HOIST, "--root", root, "pull", "-q", BASE])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=300)
    ap.add_argument("--rate", type=float, default=50, help="mirror download rate, MiB/s")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--buildkit", metavar="ADDR")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    names = make_mirror(f"{WORK}/mirror", a.size_mib)
    port = serve(f"{WORK}/mirror", a.rate)
    mirror = f"http://127.0.0.1:{port}"
    ctx = f"{WORK}/ctx"
    os.makedirs(ctx, exist_ok=True)
    with open(f"{ctx}/Dockerfile", "w") as f:
        f.write(DOCKERFILE)
    with open(f"{ctx}/requirements.txt", "w") as f:
        f.write("\n".join(names) + "\n")
    tag = int(time.time())
    cache = f"{REG}/bench/cm-cache:{tag}"
    args = ["--build-arg", f"MIRROR={mirror}"]

    # Runner A: fills the cache mount and exports it with the layer cache.
    fresh(f"{WORK}/store-a")
    secs = run([HOIST, "--root", f"{WORK}/store-a", "build", "-q", *args, "-t", f"{REG}/bench/cm-app:a",
                "--cache-to", f"type=registry,ref={cache},mode=max,cache-mounts=true", ctx])
    print(f"runner A (fills the mount, exports it): {secs:.2f}s", file=sys.stderr)
    if a.buildkit:
        # BuildKit's runner A, on the same requirements (its registry cache has no mounts).
        bk = os.environ.get("BUILDCTL", "buildctl")
        bk_cache = f"{REG}/bench/cm-bk-cache:{tag}"
        run([bk, "--addr", a.buildkit, "prune", "--all"])
        run([bk, "--addr", a.buildkit, "build", "--frontend", "dockerfile.v0", "--local", f"context={ctx}",
             "--local", f"dockerfile={ctx}", "--opt", f"build-arg:MIRROR={mirror}",
             "--export-cache", f"type=registry,ref={bk_cache},mode=max,registry.insecure=true"])
    with open(f"{ctx}/requirements.txt", "a") as f:
        f.write("# one more requirement line: the dependency step must run again\n")

    tools = {
        "hoist + mounts": lambda r: [HOIST, "--root", r, "build", "-q", *args, "-t", f"{REG}/bench/cm-app:b",
                                     "--cache-from", f"type=registry,ref={cache}", ctx],
        "hoist, no mounts": lambda r: [HOIST, "--root", r, "build", "-q", *args, "-t", f"{REG}/bench/cm-app:c",
                                       "--cache-from", f"type=registry,ref={cache},cache-mounts=false", ctx],
    }
    if a.buildkit:
        bk = os.environ.get("BUILDCTL", "buildctl")
        bk_cache = f"{REG}/bench/cm-bk-cache:{tag}"
        run([bk, "--addr", a.buildkit, "prune", "--all"])
        tools["BuildKit"] = lambda r: [bk, "--addr", a.buildkit, "build", "--frontend", "dockerfile.v0",
                                       "--local", f"context={ctx}", "--local", f"dockerfile={ctx}",
                                       "--opt", f"build-arg:MIRROR={mirror}",
                                       "--import-cache", f"type=registry,ref={bk_cache},registry.insecure=true"]
    times = {k: [] for k in tools}
    for i in range(a.runs):
        for name, cmd in tools.items():
            root = f"{WORK}/store-{i}"
            if name == "BuildKit":
                run([bk, "--addr", a.buildkit, "prune", "--all"])
            else:
                fresh(root)
            secs = run(cmd(root))
            times[name].append(secs)
            print(f"  run {i} {name:17} {secs:6.2f}s", file=sys.stderr)
    print(f"\nfresh runner, dependency step changed, {a.size_mib} MiB in the cache mount, "
          f"mirror at {a.rate:g} MiB/s (medians of {a.runs}):\n")
    print("| builder | fresh-runner build |")
    print("|---|---|")
    for name, t in times.items():
        print(f"| {name} | {statistics.median(t):.2f} s |")
    shutil.rmtree(WORK + "/store-a", ignore_errors=True)
    for i in range(a.runs):
        shutil.rmtree(f"{WORK}/store-{i}", ignore_errors=True)


if __name__ == "__main__":
    main()
