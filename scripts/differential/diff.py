#!/usr/bin/env python3
"""Differential runner and shrinker: builds generated Dockerfiles with BuildKit (the oracle) and
with hoist, compares normalized snapshots, records every result and shrinks divergences.

    diff.py run --seeds 0:500 [--out DIR]     # build, compare, record (DIR/results.jsonl)
    diff.py run --recheck OLD [--out DIR]     # again, only the seeds that diverged in OLD
    diff.py shrink SEED [--out DIR]           # reduce one diverging case to a minimal Dockerfile
    diff.py classes [--out DIR]               # one line per divergence class, with its seeds
    diff.py fixture SEED|CTXDIR NAME          # a shrunk seed's case, or a hand-made context, with
                                              # BuildKit's result into tests/fixtures/conformance/NAME

Needs a running buildkitd (BUILDKIT_ADDR, default unix:///run/bk/buildkitd.sock; BUILDCTL, default
/opt/bk/bin/buildctl), the lab registry on localhost:5000, the conformance kit's snapshot.py and
compare.py (KIT, default /work/shared/conformance) and hoist ($HOIST, default target/debug/hoist).
Exit status counts: one builder failing where the other succeeds is a divergence; the error texts
are not compared.
"""
import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gen  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
KIT = os.environ.get("KIT", "/work/shared/conformance")
BUILDCTL = os.environ.get("BUILDCTL", "/opt/bk/bin/buildctl")
ADDR = os.environ.get("BUILDKIT_ADDR", "unix:///run/bk/buildkitd.sock")
HOIST = os.environ.get("HOIST", os.path.join(REPO, "target/debug/hoist"))
REGISTRY = "localhost:5000"


def sh(cmd, log, timeout=180):
    try:
        with open(log, "w") as f:
            return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        return 124


def _kit_snapshot():
    """The kit's snapshot.py as a module (its functions, not its command line)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("kit_snapshot", f"{KIT}/snapshot.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def snapshot(image, dest):
    """Writes the normalized snapshot of `image` against the lab busybox (as the kit's
    `snapshot.py IMAGE BASE` prints it). BuildKit writes `"layers": null` for an image with no
    layer at all (a FROM scratch stage of config instructions), which the kit's reader cannot
    take: such a manifest is read as having no layers."""
    try:
        kit = _kit_snapshot()
        man, blob = kit.fetch_image(image)
        man["layers"] = man.get("layers") or []
        out = kit.snapshot(man, blob)
        base = kit.load(gen.BASE)["fs"]
    except Exception as e:  # noqa: BLE001 (any failure is "could not snapshot")
        print(f"snapshot of {image} failed: {e}", file=sys.stderr)
        return False
    for p, e in base.items():
        if p not in out["fs"]:
            out["fs"][p] = {"type": "deleted"}
        elif out["fs"][p] == e:
            del out["fs"][p]
    with open(dest, "w") as f:
        json.dump(out, f, indent=1, sort_keys=True)
    return True


def build_both(case, work, tag):
    """Builds `case` (a generated case, or a context directory's path) with both builders under
    `work/tag`; returns the result record."""
    ctx = os.path.join(work, tag, "ctx")
    shutil.rmtree(os.path.join(work, tag), ignore_errors=True)
    if isinstance(case, str):
        shutil.copytree(case, ctx, symlinks=True)
        case = {"seed": case}
    else:
        gen.write(case, ctx)
    bk_ref, h_ref = f"{REGISTRY}/diff/bk-{tag}:1", f"{REGISTRY}/diff/h-{tag}:1"
    bk = sh([BUILDCTL, "--addr", ADDR, "build", "--frontend", "dockerfile.v0", "--local", f"context={ctx}",
             "--local", f"dockerfile={ctx}", "--output",
             f"type=image,name={bk_ref},push=true,registry.insecure=true"], os.path.join(work, tag, "bk.log"))
    root = os.path.join(work, "hoist-root")
    h = sh([HOIST, "--root", root, "build", "-t", h_ref, "--push", ctx], os.path.join(work, tag, "hoist.log"))
    if bk == 0 and h != 0:
        # BuildKit's cache can answer for a step that would fail: a wildcard matching nothing
        # in a directory that was not sent keys like the same COPY that once succeeded
        # elsewhere. Only an uncached BuildKit build decides.
        bk = sh([BUILDCTL, "--addr", ADDR, "build", "--no-cache", "--frontend", "dockerfile.v0", "--local",
                 f"context={ctx}", "--local", f"dockerfile={ctx}", "--output",
                 f"type=image,name={bk_ref},push=true,registry.insecure=true"], os.path.join(work, tag, "bk.log"))
    rec = {"seed": case["seed"], "tag": tag, "bk": bk, "hoist": h}
    if (bk == 0) != (h == 0):
        rec["class"] = status_class(os.path.join(work, tag), bk, h)
        return rec
    if bk != 0:
        rec["class"] = None
        return rec
    a, b = os.path.join(work, tag, "bk.json"), os.path.join(work, tag, "hoist.json")
    if not (snapshot(bk_ref, a) and snapshot(h_ref, b)):
        rec["class"] = "snapshot failed"
        return rec
    r = subprocess.run(["python3", f"{KIT}/compare.py", a, b], capture_output=True, text=True)
    rec["diff"] = r.stdout.splitlines()[:20]
    rec["class"] = classify(rec["diff"]) if r.returncode else None
    return rec


def status_class(d, bk, h):
    """The class of a status divergence: who failed, at which instruction, and the failing
    builder's message with the instruction, paths, quoted words and numbers left out (so the
    shrinker can drop flags and sources while the same failure stays)."""
    ctx, log = os.path.join(d, "ctx"), os.path.join(d, "hoist.log" if bk == 0 else "bk.log")
    text = open(log, errors="replace").read()
    head = f"status: buildkit {'ok' if bk == 0 else 'fails'}, hoist {'ok' if h == 0 else 'fails'}"
    m = re.findall(r"Dockerfile:(\d+)", text)
    lines = open(os.path.join(ctx, "Dockerfile")).read().splitlines()
    n = int(m[-1]) - 1 if m else -1
    if 0 <= n < len(lines):
        head += " at " + lines[n].split()[0]
    err = [x for x in text.splitlines() if x.startswith("error:")]
    if not err:
        return head
    msg = err[-1][len("error:"):]
    msg = re.sub(r"^\s*Dockerfile:\d+:\s*", "", msg)
    if 0 <= n < len(lines) and msg.startswith(lines[n].strip()):
        msg = msg[len(lines[n].strip()):]
    msg = re.sub(r"failed to solve:\s*", "", msg)
    msg = re.sub(r'"[^"]*"|\S*/\S*|-?\d+|[0-9a-z]{25}', "_", msg)
    return f"{head}: {msg.strip(' :')[:70]}"


def classify(lines):
    """A divergence's class: the kinds of difference, with paths and values left out."""
    kinds = set()
    for line in lines:
        line = line.strip()
        m = re.match(r"config\.(\w+):", line)
        if m:
            kinds.add(f"config.{m.group(1)}")
        elif line.startswith("changed"):
            m = re.search(r": (.*)$", line)
            for part in (m.group(1) if m else "").split(", "):
                kinds.add("changed." + part.split(" ")[0])
        elif line.startswith(("missing", "extra")):
            kinds.add(line.split()[0])
    return " ".join(sorted(kinds)) or "other"


def cmd_run(args):
    os.makedirs(args.out, exist_ok=True)
    lo, hi = (int(x) for x in args.seeds.split(":"))
    seeds = range(lo, hi)
    if args.recheck:  # only the seeds that diverged in an earlier run's results
        seeds = sorted(r["seed"] for r in load(args.recheck).values() if r["class"] and lo <= r["seed"] < hi)
    res = open(os.path.join(args.out, "results.jsonl"), "a")
    for seed in seeds:
        rec = build_both(gen.generate(seed), args.out, f"s{seed}")
        res.write(json.dumps(rec) + "\n")
        res.flush()
        print(f"seed {seed}: bk={rec['bk']} hoist={rec['hoist']} {rec['class'] or 'match'}", flush=True)
        if rec["class"] is None:
            shutil.rmtree(os.path.join(args.out, f"s{seed}"), ignore_errors=True)


def load(out):
    recs = {}
    with open(os.path.join(out, "results.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            recs[r["seed"]] = r
    return recs


def cmd_classes(args):
    recs = load(args.out)
    for r in recs.values():  # recompute status classes from the kept logs (the rule may be newer)
        d = os.path.join(args.out, f"s{r['seed']}")
        if (r["bk"] == 0) != (r["hoist"] == 0) and os.path.isdir(d):
            r["class"] = status_class(d, r["bk"], r["hoist"])
    by = {}
    for r in recs.values():
        if r["class"]:
            by.setdefault(r["class"], []).append(r["seed"])
    both_fail = sum(1 for r in recs.values() if r["bk"] and r["hoist"])
    print(f"{len(recs)} compared, {sum(len(v) for v in by.values())} diverge, {both_fail} fail in both, "
          f"{len(by)} classes")
    for k, v in sorted(by.items(), key=lambda kv: -len(kv[1])):
        print(f"{len(v):4d}  {k}  seeds {v[:8]}")


def cmd_shrink(args):
    case = gen.generate(args.seed)
    work = os.path.join(args.out, "shrink")
    tag = f"t{os.getpid()}"  # unique, so shrinks running side by side never share an image name
    want = build_both(case, work, tag)["class"]
    if not want:
        sys.exit(f"seed {args.seed} does not diverge")
    n = 0

    def same(c):
        nonlocal n
        n += 1
        return build_both(c, work, tag)["class"] == want

    changed = True
    while changed:
        changed = False
        i = len(case["instructions"]) - 1
        while i >= 0:
            c = copy.deepcopy(case)
            del c["instructions"][i]
            if c["instructions"] and c["instructions"][0]["op"] in ("FROM", "ARG") and same(c):
                case, changed = c, True
            i -= 1
        for i, ins in enumerate(case["instructions"]):
            for j in range(len(ins["flags"]) - 1, -1, -1):
                c = copy.deepcopy(case)
                del c["instructions"][i]["flags"][j]
                if same(c):
                    case, changed = c, True
        for i, ins in enumerate(case["instructions"]):  # heredoc body lines, delimiter kept
            body = (ins.get("heredoc") or "").split("\n")
            for j in range(len(body) - 2, -1, -1):
                if body[j].startswith("#!"):
                    continue
                c = copy.deepcopy(case)
                c["instructions"][i]["heredoc"] = "\n".join(body[:j] + body[j + 1:])
                if same(c):
                    case, changed, body = c, True, body[:j] + body[j + 1:]
        if case["escape"] != "\\":
            c = copy.deepcopy(case)
            c["escape"] = "\\"
            if same(c):
                case, changed = c, True
    for f in sorted(case["files"]):
        c = copy.deepcopy(case)
        del c["files"][f]
        if same(c):
            case = c
    final = build_both(case, work, tag)
    path = os.path.join(args.out, f"min-{args.seed}.json")
    json.dump({"case": case, "class": want, "diff": final.get("diff")}, open(path, "w"), indent=1)
    print(f"# class: {want} ({n} builds)\n{gen.render(case)}", end="")
    for line in final.get("diff") or []:
        print("#", line)


def cmd_fixture(args):
    """Writes tests/fixtures/conformance/NAME: the shrunk case's context (or a hand-made context
    directory's) and BuildKit's result (expected.json: `status` ok|fails, the `modes` of context
    files git would not keep and, when ok, the snapshot)."""
    dest = os.path.join(REPO, "tests/fixtures/conformance", args.name)
    shutil.rmtree(dest, ignore_errors=True)
    if os.path.isdir(args.seed):
        case, klass = os.path.abspath(args.seed), args.klass
        shutil.copytree(case, os.path.join(dest, "context"), symlinks=True)
        modes = {}
        for d, _, fs in os.walk(case):
            for f in fs:
                p = os.path.join(d, f)
                mode = os.lstat(p).st_mode & 0o7777
                if mode not in (0o644, 0o755):
                    modes[os.path.relpath(p, case)] = oct(mode)
    else:
        shrunk = os.path.join(args.out, f"min-{args.seed}.json")
        if os.path.exists(shrunk):
            m = json.load(open(shrunk))
            case, klass = m["case"], m["class"]
        else:  # an unshrunk seed: a matching case kept as a regression sentinel
            case, klass = gen.generate(int(args.seed)), args.klass
        gen.write(case, os.path.join(dest, "context"))
        modes = {p: oct(mode) for p, (_, mode) in case["files"].items() if mode not in (0o644, 0o755)}
    work = os.path.join(args.out, "fixture")
    tag = f"f{os.getpid()}"
    rec = build_both(case, work, tag)
    exp = {"origin": args.seed if not os.path.isdir(args.seed) else "hand-reduced", "class": klass,
           "status": "ok" if rec["bk"] == 0 else "fails", "modes": modes}
    if rec["bk"] == 0:
        snap = os.path.join(work, tag, "bk.json")
        if not snapshot(f"{REGISTRY}/diff/bk-{tag}:1", snap):
            sys.exit("snapshot.py failed on BuildKit's image")
        exp["snapshot"] = json.load(open(snap))
    json.dump(exp, open(os.path.join(dest, "expected.json"), "w"), indent=1, sort_keys=True)
    open(os.path.join(dest, "expected.json"), "a").write("\n")
    print(f"wrote {dest} (buildkit {exp['status']}, hoist exit {rec['hoist']})")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.environ.get("DIFF_OUT", "/tmp/hoist-diff"))
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--seeds", default="0:100")
    r.add_argument("--recheck", metavar="DIR", help="run only the seeds that diverged in DIR/results.jsonl")
    sub.add_parser("classes")
    s = sub.add_parser("shrink")
    s.add_argument("seed", type=int)
    f = sub.add_parser("fixture")
    f.add_argument("seed", help="a shrunk seed (min-SEED.json in --out) or a context directory")
    f.add_argument("name")
    f.add_argument("--class", dest="klass", default="", help="the divergence class, for a directory")
    a = p.parse_args()
    {"run": cmd_run, "classes": cmd_classes, "shrink": cmd_shrink, "fixture": cmd_fixture}[a.cmd](a)


if __name__ == "__main__":
    main()
