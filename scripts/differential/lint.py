#!/usr/bin/env python3
"""Differential build checks: generated Dockerfiles (gen.py's seeds) through BuildKit's lint
request and `hoist build --check`; every warning block (rule, URL, message, line, excerpt)
must be the same text. Development tool, like diff.py: needs buildctl and a buildkitd.

    scripts/differential/lint.py [--seeds A:B] [--out DIR]

Environment: HOIST (binary, default target/debug/hoist), BUILDCTL, BUILDKIT_ADDR.
Prints each differing seed with its findings, then "N/M seeds identical".
"""
import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

BUILDCTL = os.environ.get("BUILDCTL", "/opt/bk/bin/buildctl")
ADDR = os.environ.get("BUILDKIT_ADDR", "unix:///run/bk/buildkitd.sock")
HOIST = os.environ.get("HOIST", "target/debug/hoist")


def blocks(text):
    """The warning blocks of a lint text, sorted (BuildKit orders by line only)."""
    return sorted(b for b in text.split("\nWARNING: ")[1:])


def buildkit(ctx):
    r = subprocess.run([BUILDCTL, "--addr", ADDR, "build", "--frontend", "dockerfile.v0",
                        "--local", f"context={ctx}", "--local", f"dockerfile={ctx}",
                        "--opt", "requestid=frontend.lint",
                        "--opt", "frontend.caps=moby.buildkit.frontend.subrequests"],
                       capture_output=True, text=True, timeout=120)
    return blocks(r.stdout)


def hoist(ctx, root):
    r = subprocess.run([HOIST, "--root", root, "build", "--check", ctx],
                       capture_output=True, text=True, timeout=120)
    return blocks(r.stdout)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", default="0:100")
    p.add_argument("--out", default="/tmp/hoist-lint-diff")
    a = p.parse_args()
    lo, hi = (int(x) for x in a.seeds.split(":"))
    same = 0
    for seed in range(lo, hi):
        ctx = os.path.join(a.out, f"s{seed}")
        subprocess.run(["rm", "-rf", ctx], check=True)
        gen.write(gen.generate(seed), ctx)
        want, got = buildkit(ctx), hoist(ctx, os.path.join(a.out, "root"))
        if want == got:
            same += 1
            continue
        print(f"== seed {seed} ({ctx})")
        for b in want:
            if b not in got:
                print("  BuildKit only: " + b.split("\n", 2)[1])
        for b in got:
            if b not in want:
                print("  hoist only:    " + b.split("\n", 2)[1])
    print(f"{same}/{hi - lo} seeds identical")
    return 0 if same == hi - lo else 1


if __name__ == "__main__":
    sys.exit(main())
