#!/usr/bin/env python3
"""hoist's build benchmark (issue 6): generates the scenario contexts deterministically, builds
each several times with hoist and with buildah (`buildah bud --layers --isolation chroot`, then
`buildah push`), interleaved, pushing to the local registry, and prints medians, the
hoist/buildah ratio and hoist's peak RSS.

    scripts/lab-setup.sh            # once: registry on localhost:5000 with busybox:latest
    cargo build --release
    scripts/bench.py [--runs 3] [--only app,stages] [--no-buildah] [--baseline OLD_HOIST]
    scripts/bench.py --only aged [--runs 5]     # warm app on an aged store vs a fresh one
    scripts/bench.py --only app,bigctx --no-buildah --rootless hoist-rl   # issue 15's bar
    scripts/bench.py --only app,deb --attest    # issue 16: cost of provenance + SBOM

`--baseline` adds another hoist binary (e.g. one built from the previous commit), interleaved
with the others, so a change that must not move the figures is measured on the same machine
minute as the code before it.

`--rootless USER` adds the same binary run as the ordinary USER (rootless mode 1: it needs a
range in /etc/subuid and /etc/subgid) with its own store, interleaved; the rootless/hoist
column is the issue's "within 15% of a root build".

Cold runs start from an empty store that already holds the base image (pulled untimed), as
BuildKit's and buildah's cold figures do; warm runs rebuild with nothing changed; touch runs
change one source file first. Every run pushes to a fresh repository so blobs are really sent.

The `aged` scenario (issue 19; hoist only) ages one store with cold builds of every other
scenario's context, then times warm builds of the app on it against warm builds on a fresh
store (cold app build untimed), interleaved: per-build state must cost what the build reads,
not what the store remembers (target ≤ 1.1x the fresh store's median).
"""
import argparse, os, random, shutil, statistics, subprocess, sys, time

REG = "localhost:5000"
BASE = f"{REG}/busybox:latest"
WORK = os.environ.get("HOIST_BENCH_DIR", "/var/tmp/hoist-bench")
HOIST = os.environ.get("HOIST", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "hoist"))
BUILDKIT_MEDIANS = {  # from issue 6, same machine class
    "app cold": 0.35, "app warm": 0.07, "app touch": 0.36, "stages cold": 2.31,
    "bigctx cold": 9.9, "bigctx warm": 0.63, "bigctx touch": 11.7, "biglayer cold": 11.7,
    "multi cold": None, "multi warm": None,  # no BuildKit on this machine class for multi yet
    "deb cold": None, "deb warm": None, "deb touch": None}
TARGETS = {"app cold": 0.35, "app warm": 0.035, "app touch": 0.35, "stages cold": 2.15,
           "bigctx cold": 5, "bigctx warm": 0.3, "bigctx touch": 6, "biglayer cold": 6,
           "multi cold": "BuildKit's", "multi warm": "BuildKit's",
           "deb cold": "-", "deb warm": "-", "deb touch": "-"}


def half_random(rng, size):
    r = size // 2
    return rng.randbytes(r) + bytes(size - r)


def gen_app(d):
    rng = random.Random(1)
    os.makedirs(f"{d}/src", exist_ok=True)
    for i in range(200):
        with open(f"{d}/src/f{i:03}.txt", "wb") as f:
            f.write(half_random(rng, rng.randint(100, 4000)))
    with open(f"{d}/Dockerfile", "w") as f:
        f.write(f"""FROM {BASE} AS build
COPY src/ /src/
RUN cat /src/*.txt | wc -c > /build-size
FROM {BASE}
COPY --from=build /build-size /size
COPY src/ /app/
RUN ls /app | wc -l > /count
""")
    return "src/f000.txt"


def gen_stages(d):
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/Dockerfile", "w") as f:
        for s in "abc":
            f.write(f"FROM {BASE} AS {s}\nRUN sleep 2 && echo {s} > /{s}\n")
        f.write(f"FROM {BASE}\n" + "".join(f"COPY --from={s} /{s} /{s}\n" for s in "abc"))
    return None


def gen_bigctx(d):
    rng = random.Random(2)
    n = 0
    for a in range(50):
        for b in range(7):
            os.makedirs(f"{d}/ctx/d{a:02}/s{b}", exist_ok=True)
    while n < 20000:
        a, b = n % 50, (n // 50) % 7
        size = 2 << 20 if n % 100 == 99 else int(512 * (128 ** rng.random()))
        with open(f"{d}/ctx/d{a:02}/s{b}/f{n:05}", "wb") as f:
            f.write(half_random(rng, size))
        n += 1
    with open(f"{d}/Dockerfile", "w") as f:
        f.write(f"FROM {BASE}\nCOPY ctx/ /data/\n")
    return "ctx/d00/s0/f00000"


def gen_biglayer(d):
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/Dockerfile", "w") as f:
        f.write(f"FROM {BASE}\nRUN dd if=/dev/urandom of=/random bs=1M count=512 2>/dev/null && "
                f"dd if=/dev/zero of=/zeros bs=1M count=512 2>/dev/null\n")
    return None


MULTI_BASE = f"{REG}/multi/busybox:latest"
MULTI_PLATFORMS = "linux/amd64,linux/arm64"


def gen_multi(d):
    """Issue 14's cross-compilation shape: a "compiler" stage on the build platform, which a
    BuildKit-like builder runs once, and a RUN in each target platform (arm64 through qemu)."""
    os.makedirs(d, exist_ok=True)
    with open(f"{d}/Dockerfile", "w") as f:
        f.write(f"""FROM --platform=$BUILDPLATFORM {MULTI_BASE} AS tools
ARG TARGETARCH
RUN sleep 1 && for i in $(seq 1 20000); do echo $i; done | md5sum > /tool && echo "$TARGETARCH" >> /tool
FROM {MULTI_BASE}
COPY --from=tools /tool /tool
RUN for i in $(seq 1 3000); do echo $i; done | md5sum > /sum && uname -m > /arch
""")
    return None


DEB_BASE = f"{REG}/debian:bookworm"


def gen_deb(d):
    """A Debian-based image (issue 16's SBOM case): the app's sources over debootstrap's
    Debian, whose ~90 dpkg packages an SBOM lists."""
    gen_app(d)
    with open(f"{d}/Dockerfile", "w") as f:
        f.write(f"""FROM {DEB_BASE}
COPY src/ /src/
RUN cat /src/*.txt | wc -c > /build-size
""")


SCENARIOS = {"app": (gen_app, ["cold", "warm", "touch"]), "stages": (gen_stages, ["cold"]),
             "bigctx": (gen_bigctx, ["cold", "warm", "touch"]), "biglayer": (gen_biglayer, ["cold"]),
             "multi": (gen_multi, ["cold", "warm"]), "deb": (gen_deb, ["cold", "warm", "touch"])}
# Scenarios built for several platforms into one index, and the base their stores start with.
PLATFORMS = {"multi": MULTI_PLATFORMS}
BASES = {"deb": DEB_BASE}


TRASH = f"{WORK}/trash"


def discard(path):
    """Moves a previous run's store out of the way instead of deleting it: on ext4 without a
    journal (this machine's root), inode allocation skips inodes freed in the last 60 s
    (`recently_deleted`), so a cold build right after `rm -rf` of a store with 20,000 files
    spends most of its time searching inode bitmaps, whichever tool runs. The trash is
    emptied at the end of the benchmark, untimed."""
    if os.path.exists(path):
        os.makedirs(TRASH, exist_ok=True)
        os.rename(path, f"{TRASH}/{os.path.basename(path)}-{time.monotonic_ns()}")


def empty_trash():
    subprocess.run(["umount", "-R", TRASH], capture_output=True)
    shutil.rmtree(TRASH, ignore_errors=True)


def settle():
    """Flushes dirty pages before a timed build, so one tool's writeback (buildah writes
    gigabytes without fsync) does not stall the next tool's fsyncs. Not timed; done for both."""
    os.sync()


def timed(cmd, env=None, retries=0):
    """Runs cmd; returns (seconds, peak RSS of the process tree in MiB). `retries`: runs again
    after a failure (buildah's parallel stages fail now and then with "container not known")."""
    for _ in range(retries):
        try:
            return timed(cmd, env)
        except SystemExit as e:
            print(f"  retrying after: {str(e)[-300:]}", file=sys.stderr)
    start = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    secs = time.monotonic() - start
    err = p.stderr.read().decode(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err[-2000:]}")
    return secs, ru.ru_maxrss / 1024


class Hoist:
    def __init__(self, tag, binary=HOIST, name="hoist", flags=()):
        self.name, self.binary, self.flags = name, binary, list(flags)
        self.root = f"{WORK}/{name}-root-{tag}"
        self.platforms = PLATFORMS.get(tag)
        self.base = BASES.get(tag, BASE)

    def reset(self):
        discard(self.root)
        if self.platforms:
            for p in self.platforms.split(","):
                timed([self.binary, "--root", self.root, "pull", "-q", "--platform", p, MULTI_BASE])
        else:
            timed([self.binary, "--root", self.root, "pull", "-q", self.base])

    def build(self, ctx, repo):
        settle()
        plat = ["--platform", self.platforms] if self.platforms else []
        return timed([self.binary, "--root", self.root, "build", "-q", *plat, *self.flags,
                      "-t", f"{REG}/{repo}:latest", "--push", ctx])


class Rootless(Hoist):
    """The same binary as an ordinary user (`setpriv`, HOME and XDG dirs under WORK), with a
    store of its own; contexts are made world-readable for it."""

    def __init__(self, tag, user):
        super().__init__(tag, name="rootless")
        import pwd
        pw = pwd.getpwnam(user)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.home = f"{WORK}/rootless-home"
        os.makedirs(f"{self.home}/bin", exist_ok=True)
        shutil.copy2(HOIST, f"{self.home}/bin/hoist")
        for d in (WORK, self.home, f"{self.home}/bin"):
            os.chmod(d, 0o755)
        os.chown(self.home, self.uid, self.gid)
        self.binary = f"{self.home}/bin/hoist"

    def wrap(self, cmd):
        return ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups", "--",
                "env", f"HOME={self.home}", f"XDG_RUNTIME_DIR={self.home}", *cmd]

    def reset(self):
        discard(self.root)
        os.makedirs(self.root)
        os.chown(self.root, self.uid, self.gid)
        timed(self.wrap([self.binary, "--root", self.root, "pull", "-q", BASE]))

    def build(self, ctx, repo):
        # Readable for the user, touching only what is not yet (a chmod changes a file's ctime
        # even when the mode stays, and that would make every warm build rehash the context).
        subprocess.run(["find", ctx, "(", "(", "-type", "d", "!", "-perm", "-a+rx", ")", "-o",
                        "(", "!", "-type", "d", "!", "-perm", "-a+r", ")", ")",
                        "-exec", "chmod", "a+rX", "{}", "+"], check=True)
        settle()
        return timed(self.wrap([self.binary, "--root", self.root, "build", "-q", "-t", f"{REG}/{repo}:latest", "--push", ctx]))


class Buildah:
    name = "buildah"

    def __init__(self, tag):
        self.root, self.run = f"{WORK}/buildah-root-{tag}", f"{WORK}/buildah-run-{tag}"
        self.platforms = PLATFORMS.get(tag)
        self.base = BASES.get(tag, BASE)

    def cmd(self, *a):
        return ["buildah", "--root", self.root, "--runroot", self.run, *a]

    def reset(self):
        subprocess.run(self.cmd("rm", "--all"), capture_output=True)
        subprocess.run(["umount", "-R", f"{self.root}/overlay"], capture_output=True)
        discard(self.root); shutil.rmtree(self.run, ignore_errors=True)
        if self.platforms:
            for p in self.platforms.split(","):
                timed(self.cmd("pull", "-q", "--tls-verify=false", "--platform", p, MULTI_BASE))
        else:
            timed(self.cmd("pull", "-q", "--tls-verify=false", self.base))

    def build(self, ctx, repo):
        img = f"{REG}/{repo}:latest"
        settle()
        if self.platforms:  # one manifest list over the platforms, pushed with all its images
            t1, m1 = timed(retries=1, cmd=self.cmd("bud", "-q", "--layers", "--isolation", "chroot", "--tls-verify=false",
                                                   "--platform", self.platforms, "--manifest", img, ctx))
            t2, m2 = timed(self.cmd("manifest", "push", "-q", "--all", "--tls-verify=false", img, f"docker://{img}"))
            return t1 + t2, max(m1, m2)
        t1, m1 = timed(retries=1, cmd=self.cmd("bud", "-q", "--layers", "--isolation", "chroot", "--tls-verify=false", "-t", img, ctx))
        t2, m2 = timed(self.cmd("push", "-q", "--tls-verify=false", img))
        return t1 + t2, max(m1, m2)


def target(name):
    t = TARGETS[name]
    return f"≤ {t} s" if isinstance(t, (int, float)) else f"≤ {t}"


def bk(name):
    v = BUILDKIT_MEDIANS[name]
    return "-" if v is None else f"{v:.2f} s"


class BuildKit:
    """A local BuildKit (`buildkitd` built by hand from its public source, never part of this
    repo; `--buildkit ADDR`, `BUILDCTL` names the client). `--rootless USER` adds the same binary run as the ordinary USER (rootless mode 1: it needs a
range in /etc/subuid and /etc/subgid) with its own store, interleaved; the rootless/hoist
column is the issue's "within 15% of a root build".

Cold runs start from a pruned cache
    holding only the base image (an untimed build of `FROM base` pulls it), like the others."""
    name = "buildkit"

    def __init__(self, tag, addr):
        self.addr, self.platforms = addr, PLATFORMS.get(tag)
        self.buildctl = os.environ.get("BUILDCTL", "buildctl")

    def cmd(self, *a):
        return [self.buildctl, "--addr", self.addr, *a]

    def plat(self):
        return ["--opt", f"platform={self.platforms}"] if self.platforms else []

    def reset(self):
        subprocess.run(self.cmd("prune", "--all"), capture_output=True)
        d = f"{WORK}/buildkit-base"
        os.makedirs(d, exist_ok=True)
        with open(f"{d}/Dockerfile", "w") as f:
            f.write(f"FROM {MULTI_BASE if self.platforms else BASE}\n")
        timed(self.cmd("build", "--frontend", "dockerfile.v0", "--local", f"context={d}", "--local",
                       f"dockerfile={d}", *self.plat()))

    def build(self, ctx, repo):
        settle()
        return timed(self.cmd("build", "--frontend", "dockerfile.v0", "--local", f"context={ctx}", "--local",
                              f"dockerfile={ctx}", *self.plat(), "--output",
                              f"type=image,name={REG}/{repo}:latest,push=true,registry.insecure=true"))


def run_aged(a, tools):
    """The aged-store scenario (see the module doc); prints its own table."""
    ctxs = {}
    for scen, (gen, _) in SCENARIOS.items():
        ctxs[scen] = f"{WORK}/ctx-{scen}"
        if not os.path.exists(f"{ctxs[scen]}/Dockerfile"):
            gen(ctxs[scen])
    rows = []
    for tool in tools:
        aged, fresh = Hoist("aged", tool.binary, tool.name), Hoist("fresh", tool.binary, tool.name)
        aged.reset()
        for scen in ["bigctx", "biglayer", "stages", "app"]:
            secs, _ = aged.build(ctxs[scen], f"bench/aged-{scen}-{tool.name}-{int(time.time()*1000)}")
            print(f"  aged     cold  {tool.name:7} {scen:8}: {secs:6.2f}s (untimed ageing)", file=sys.stderr)
        fresh.reset()
        fresh.build(ctxs["app"], f"bench/fresh-app-{tool.name}-{int(time.time()*1000)}")
        times = {"aged": [], "fresh": []}
        for run in range(a.runs):
            for label, h in (("aged", aged), ("fresh", fresh)):  # interleaved
                secs, _ = h.build(ctxs["app"], f"bench/{label}-warm-{tool.name}-{run}-{int(time.time()*1000)}")
                times[label].append(secs)
                print(f"  app warm {label:5} {tool.name:7} run {run}: {secs:6.3f}s", file=sys.stderr)
        am, fm = statistics.median(times["aged"]), statistics.median(times["fresh"])
        rows.append(f"| app warm, aged store | {tool.name} | {am:.3f} s | {fm:.3f} s | {am / fm:.2f}x | ≤ 1.1x |")
    print("\n| scenario | binary | aged store | fresh store | aged/fresh | target |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(r)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-buildah", action="store_true")
    ap.add_argument("--no-hoist", action="store_true", help="measure buildah only")
    ap.add_argument("--baseline", help="another hoist binary to measure beside this one")
    ap.add_argument("--rootless", metavar="USER", help="also measure this binary run as USER (rootless)")
    ap.add_argument("--buildkit", metavar="ADDR", help="also measure a local buildkitd at ADDR (unix:///run/…)")
    ap.add_argument("--attest", action="store_true",
                    help="also measure this binary with --provenance=mode=max --sbom=true (issue 16)")
    a = ap.parse_args()
    only = [s for s in a.only.split(",") if s]
    if "aged" in only:
        tools = [Hoist("aged")] + ([Hoist("aged", a.baseline, "baseline")] if a.baseline else [])
        run_aged(a, tools)
        only.remove("aged")
        if not only:
            empty_trash()
            return
    results = {}
    for scen, (gen, kinds) in SCENARIOS.items():
        if only and scen not in only:
            continue
        ctx = f"{WORK}/ctx-{scen}"
        if not os.path.exists(f"{ctx}/Dockerfile"):
            gen(ctx)
        touch = {"app": "src/f000.txt", "deb": "src/f000.txt", "bigctx": "ctx/d00/s0/f00000"}.get(scen)
        tools = ([] if a.no_hoist else [Hoist(scen)]) + ([] if a.no_buildah else [Buildah(scen)])
        if a.baseline:
            tools.append(Hoist(scen, a.baseline, "baseline"))
        if a.rootless:
            tools.append(Rootless(scen, a.rootless))
        if a.attest:
            tools.append(Hoist(scen, name="attest", flags=["--provenance=mode=max", "--sbom=true"]))
        if a.buildkit:
            tools.append(BuildKit(scen, a.buildkit))
        for run in range(a.runs):
            for tool in tools:  # interleaved
                if shutil.disk_usage(WORK).free < 15 << 30:
                    empty_trash()
                    time.sleep(65)  # past ext4's recently-deleted window (see discard)
                tool.reset()
                for kind in kinds:
                    if kind == "touch":
                        with open(f"{ctx}/{touch}", "ab") as f:
                            f.write(f"touch {tool.name} {run}\n".encode())
                    repo = f"bench/{scen}-{kind}-{tool.name}-{run}-{int(time.time()*1000)}"
                    try:
                        secs, rss = tool.build(ctx, repo)
                    except SystemExit as e:
                        if tool.name not in ("buildah", "buildkit"):
                            raise
                        # A peer's own failure loses that sample, not the whole benchmark.
                        print(f"  {scen:8} {kind:5} {tool.name:7} run {run}: FAILED {str(e)[-200:]}", file=sys.stderr)
                        break
                    results.setdefault((f"{scen} {kind}", tool.name), []).append((secs, rss))
                    print(f"  {scen:8} {kind:5} {tool.name:7} run {run}: {secs:6.2f}s  rss {rss:6.1f} MiB", file=sys.stderr)
    empty_trash()
    base_col = ((" baseline | hoist/baseline |" if a.baseline else "")
                + (" rootless | rootless/hoist |" if a.rootless else "")
                + (" BuildKit here | hoist/BuildKit |" if a.buildkit else "")
                + (" hoist+attest | attest/hoist |" if a.attest else ""))
    print(f"\n| scenario | BuildKit (issue) | buildah | hoist | hoist/buildah | target | hoist peak RSS |{base_col}")
    print("|---|---|---|---|---|---|---|" + "---|---|" * (bool(a.baseline) + bool(a.rootless) + bool(a.buildkit) + a.attest))
    for name in BUILDKIT_MEDIANS:
        h = results.get((name, "hoist"))
        b = results.get((name, "buildah"))
        if not h and not b:
            continue
        if not h:
            bm = statistics.median(s for s, _ in b)
            print(f"| {name} | {bk(name)} | {bm:.2f} s | - | - | {target(name)} | - |")
            continue
        hm = statistics.median(s for s, _ in h)
        bm = statistics.median(s for s, _ in b) if b else None
        ratio = f"{hm / bm:.2f}x" if bm else "-"
        old = results.get((name, "baseline"))
        om = statistics.median(s for s, _ in old) if old else None
        extra = f" {om:.2f} s | {hm / om:.2f}x |" if om else (" - | - |" if a.baseline else "")
        rl = results.get((name, "rootless"))
        rm = statistics.median(s for s, _ in rl) if rl else None
        extra += f" {rm:.2f} s | {rm / hm:.2f}x |" if rm else (" - | - |" if a.rootless else "")
        kit = results.get((name, "buildkit"))
        km = statistics.median(s for s, _ in kit) if kit else None
        extra += f" {km:.2f} s | {hm / km:.2f}x |" if km else (" - | - |" if a.buildkit else "")
        at = results.get((name, "attest"))
        am = statistics.median(s for s, _ in at) if at else None
        extra += f" {am:.2f} s | {am / hm:.2f}x |" if am else (" - | - |" if a.attest else "")
        print(f"| {name} | {bk(name)} | {f'{bm:.2f} s' if bm else '-'} | {hm:.2f} s | {ratio} | "
              f"{target(name)} | {max(r for _, r in h):.0f} MiB |{extra}")


if __name__ == "__main__":
    main()
