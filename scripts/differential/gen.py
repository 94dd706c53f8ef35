#!/usr/bin/env python3
"""Seeded generator of Dockerfiles and their build contexts for the differential engine.

Grammar 2 (seeds from 3000 on; below 3000 the first grammar, unchanged, so the first run's seeds
still give the same cases) adds symlinks, tar archives, an empty file,
a name with a space and a .dockerignore to the context; COPY --from an image and destinations
built from variables; bind mounts from a stage, RUN --network, line continuations with a comment
inside; HEALTHCHECK, ONBUILD, MAINTAINER, shell-form ENTRYPOINT and more USER forms.

`generate(seed)` returns a Case: a list of instructions (each a dict the shrinker can edit:
`op`, `flags`, `args`, optional `heredoc`) plus the context files. The same seed always gives
the same case. `render(case)` turns it into Dockerfile text; `write(case, dir)` lays out the
context. Run as a script, `gen.py SEED [DIR]` prints (or writes) one case.
"""
import os
import random
import sys

BASE = "localhost:5000/busybox:latest"
USERS = ["root", "app", "1000:50", "nobody", "app:staff", "0:0"]
USERS2 = USERS + ["1000", "app:app", "${U:-app}", "42"]
# Seeds from here on use grammar 2.
GRAMMAR2 = 3000
VARS = ["a", "b", "NAME", "P", "X"]
WORDS = ["one", "two words", "x/y/z", "C:\\Users\\app", "dollar$$sign", "q'uote", "", "a.b.c"]


class Case(dict):
    """{'seed', 'escape', 'instructions': [...], 'files': {path: [content, mode]}}."""


def _context(r, g2):
    files = {}
    for i in range(r.randint(2, 5)):
        files[f"f{i}.txt"] = [f"file {i} {r.random()}\n", r.choice([0o644, 0o600, 0o755])]
    for d in ("dir", "dir/sub", "other"):
        if r.random() < 0.8:
            for i in range(r.randint(1, 3)):
                files[f"{d}/g{i}.{r.choice(['txt', 'md', 'sh'])}"] = [f"{d} {i}\n", r.choice([0o644, 0o755])]
    if r.random() < 0.3:
        files["script.sh"] = ["#!/bin/sh\necho script\n", 0o755]
    if not g2:
        return files
    if r.random() < 0.25:
        files["empty"] = ["", 0o644]
    if r.random() < 0.2:
        files["sp ace.txt"] = ["space\n", 0o644]
    if r.random() < 0.25:
        files["lnk"] = [{"symlink": r.choice(["f0.txt", "dir", "/etc/passwd", "missing"])}, 0o777]
    if r.random() < 0.25:
        members = {f"t/m{i}.txt": f"member {i}\n" for i in range(r.randint(1, 3))}
        files[r.choice(["a.tar", "a.tar.gz"])] = [{"tar": members}, 0o644]
    if r.random() < 0.2:
        files[".dockerignore"] = [r.choice(["*.md\n", "dir/sub\n", "**/g0*\n!dir/g0.txt\n", "f1.txt\n"]), 0o644]
    return files


def _expansion(r, names):
    v = r.choice(names or VARS)
    w = r.choice(["def", "x", "", "a.b"])
    forms = [f"${v}", f"${{{v}}}", f"${{{v}:-{w}}}", f"${{{v}:+{w}}}", f"${{{v}-{w}}}",
             f"${{{v}+{w}}}", f"${{{v}#*/}}", f"${{{v}%/*}}", f"${{{v}##*.}}", f"${{{v}%%.*}}",
             f"${{{v}/o/0}}", f"${{{v}//o/0}}", f"\\${v}", f"'${v}'", f"\"${v}\""]
    return r.choice(forms)


def _value(r, names, esc):
    parts = []
    for _ in range(r.randint(1, 3)):
        k = r.random()
        if k < 0.4 and names:
            parts.append(_expansion(r, names))
        elif k < 0.7:
            w = r.choice(WORDS)
            if esc == "\\":
                w = w.replace("\\", "\\\\")
            parts.append(f'"{w}"' if " " in w or "'" in w or not w else w)
        else:
            parts.append(r.choice(["plain", "-", "/opt/x", "a=b", "${HOME}", "$PATH"]))
    return "".join(parts)


def _src(r, files, g2):
    names = sorted(files)
    k = r.random()
    if k < 0.4:
        return [r.choice(names)]
    if k < 0.55:
        return [r.choice(["dir", "dir/", "other", "dir/sub"])]
    if k < 0.75:
        return [r.choice(["*.txt", "f*", "dir/*.md", "dir/g?.txt", "*/g0.*", "f[0-1].txt"])]
    if g2 and k < 0.8:
        extra = [n for n in names if n in ("lnk", "a.tar", "a.tar.gz", "sp ace.txt", "empty")]
        if extra:
            return [r.choice(extra)]
    return r.sample(names, min(len(names), r.randint(2, 3)))


def _dest(r, workdir_set):
    d = r.choice(["/dst/", "/dst", "/etc/", "/new/deep/", "/tmp/one.txt", "rel/", "rel", ".", "/", "/home/app/"])
    return d


def _copy(r, files, stages, esc, g2):
    op = r.choice(["COPY", "COPY", "ADD"])
    flags = []
    if r.random() < 0.3:
        flags.append(f"--chmod={r.choice(['600', '755', '0700', '444', 'u+x'])}")
    if r.random() < 0.3:
        flags.append(f"--chown={r.choice(['app', '1000:50', 'nobody:nogroup', '0', 'app:staff', '42:42'])}")
    if r.random() < 0.2:
        flags.append("--link")
    if op == "COPY" and r.random() < 0.15:
        flags.append("--parents")
    if r.random() < 0.15:
        flags.append(f"--exclude={r.choice(['*.md', 'g0*', 'sub', '*.sh'])}")
    if not g2 and op == "COPY" and stages and r.random() < 0.3:
        flags.append(f"--from={r.choice(stages)}")
        srcs = [r.choice(["/etc/passwd", "/dst", "/dst/", "/tmp", "/rel", "/bin/busybox", "/out*"])]
    elif g2 and op == "COPY" and r.random() < 0.3 and (stages or r.random() < 0.3):
        flags.append(f"--from={r.choice(stages) if stages and r.random() < 0.8 else BASE}")
        srcs = [r.choice(["/etc/passwd", "/dst", "/dst/", "/tmp", "/rel", "/bin/busybox", "/out*", "/etc/", "/w"])]
    else:
        srcs = _src(r, files, g2)
    dest = _dest(r, False)
    if g2 and r.random() < 0.08:
        dest = r.choice(["$a/", "${P:-/p}/", "/$NAME"])
    if len(srcs) > 1 or any(c in s for s in srcs for c in "*?["):
        if not dest.endswith("/") and dest != ".":
            dest = dest + ("/" if r.random() < 0.8 else "")
    if r.random() < 0.15 or any(" " in x for x in srcs):
        return {"op": op, "flags": flags, "args": "[" + ", ".join(f'"{x}"' for x in srcs + [dest]) + "]"}
    return {"op": op, "flags": flags, "args": " ".join(srcs + [dest])}


def _run(r, names, esc, stages, g2):
    flags = []
    if r.random() < 0.3:
        kind = r.choice(["cache", "tmpfs", "bind"])
        if kind == "cache":
            flags.append(f"--mount=type=cache,target=/cache{r.choice(['', ',id=c1', ',sharing=locked', ',mode=0700'])}")
        elif kind == "tmpfs":
            flags.append("--mount=type=tmpfs,target=/scratchpad")
        elif g2 and stages and r.random() < 0.4:
            flags.append(f"--mount=type=bind,from={r.choice(stages)},source=/etc,target=/mnt/b{r.choice(['', ',rw'])}")
        else:
            flags.append(f"--mount=type=bind,source={r.choice(['dir', '.', 'f0.txt'])},target=/mnt/b")
    if g2 and r.random() < 0.08:
        flags.append(f"--network={r.choice(['none', 'host', 'default'])}")
    k = r.random()
    cmds = ["echo hi > /out.txt", "mkdir -p /made/a && chmod 700 /made/a", "id > /id.txt",
            "echo $$ > /pid.txt", "pwd > /pwd.txt", "env | sort | grep -v -e HOSTNAME -e OTEL_ -e TRACEPARENT > /env.txt",
            "ls /mnt/b > /ls.txt 2>&1 || true", "touch /cache/x; ls /cache > /c.txt",
            "ln -s /out.txt /link", "rm -f /etc/group", "echo \"$a-$b\" > /ab.txt",
            "umask > /umask.txt", "ls -ln /dst > /lsdst.txt 2>&1 || true", "false || true",
            "printf '%s\\n' \"$NAME\" > /name.txt", "echo ok > rel.txt", "mkfifo /fifo",
            "ls -ln /scratchpad > /tmpfs.txt 2>&1 || true", "whoami > /who.txt 2>&1 || true"]
    if g2:  # listings without times (they differ whenever BuildKit's cache reuses a layer)
        cmds[cmds.index("ls -ln /dst > /lsdst.txt 2>&1 || true")] = "stat -c '%n %a %u:%g %s' /dst/* > /lsdst.txt 2>&1 || true"
        cmds += ["ls -a / > /root.txt", "ls -a /etc/t /dst > /tar.txt 2>&1 || true",
                 "touch -h /lnk", "chown 1000 /out.txt", "mkdir -p /w/x && echo w > /w/x/w.txt", "rm -rf /tmp/*"]
    if k < 0.45:
        if r.random() < 0.03:
            return {"op": "RUN", "flags": flags, "args": "exit 3"}
        if g2 and r.random() < 0.15:  # a line continuation with a comment line inside it
            a, b = r.sample(cmds, 2)
            return {"op": "RUN", "flags": flags, "args": f"{{ {a}; }} 2>/dev/null || true {esc}\n# inside\n  && {{ {b}; }} 2>/dev/null || true"}
        return {"op": "RUN", "flags": flags, "args": " && ".join(f"{{ {c}; }} 2>/dev/null || true" for c in r.sample(cmds, r.randint(1, 2)))}
    if k < 0.65:
        c = r.choice(cmds)
        return {"op": "RUN", "flags": flags, "args": f'["/bin/sh", "-c", "{c.replace(chr(34), chr(92) + chr(34))}"]'}
    if k < 0.75:
        return {"op": "RUN", "flags": flags, "args": r.choice(['["touch", "/exec.txt"]', '["id"]', '["env"]', '["/bin/sh", "-c", "echo $0 > /zero"]'])}
    body = "\n".join(f"{c} 2>/dev/null || true" for c in r.sample(cmds, r.randint(1, 3)))
    form = r.random()
    if form < 0.35:
        return {"op": "RUN", "flags": flags, "args": "<<EOT", "heredoc": f"#!/bin/sh -e\necho \"$0\" > /shebang.txt\n{body}\nEOT"}
    if form < 0.55:
        return {"op": "RUN", "flags": flags, "args": "<<EOT sh", "heredoc": f"{body}\nEOT"}
    if form < 0.7:
        tabbed = "\n".join("\t" + line for line in body.splitlines())
        return {"op": "RUN", "flags": flags, "args": "<<-'EOT'", "heredoc": f"\techo \"$a\" > /quoted.txt\n{tabbed}\n\tEOT"}
    return {"op": "RUN", "flags": flags, "args": "<<EOT", "heredoc": f"{body}\nEOT"}


def _stage(r, idx, files, stages, esc, globals_, g2):
    ins = []
    k = r.random()
    if k < 0.15 and not stages:
        base = "scratch"
    elif stages and k < 0.4:
        base = r.choice(stages)
    elif k < 0.5 and globals_:
        base = "${BASEIMG}" if "BASEIMG" in globals_ else BASE
    else:
        base = BASE
    name = f"s{idx}"
    ins.append({"op": "FROM", "flags": [], "args": f"{base} AS {name}"})
    scratch = base == "scratch"
    names = list(globals_)
    for _ in range(r.randint(2, 8)):
        k = r.random()
        if k < 0.22:
            ins.append(_copy(r, files, stages, esc, g2))
        elif k < 0.42 and not scratch:
            ins.append(_run(r, names, esc, stages, g2))
        elif k < 0.55:
            v = r.choice(VARS)
            names.append(v)
            if r.random() < 0.3:
                ins.append({"op": "ENV", "flags": [], "args": f"{v} {_value(r, names, esc)}"})
            else:
                ins.append({"op": "ENV", "flags": [], "args": " ".join(f"{r.choice(VARS)}={_value(r, names, esc)}" for _ in range(r.randint(1, 2)))})
        elif k < 0.65:
            v = r.choice(VARS + ["BASEIMG"])
            names.append(v)
            ins.append({"op": "ARG", "flags": [], "args": v if r.random() < 0.3 else f"{v}={_value(r, names, esc)}"})
        elif k < 0.72:
            ins.append({"op": "LABEL", "flags": [], "args": f"l{r.randint(0, 3)}={_value(r, names, esc)}"})
        elif k < 0.8:
            ins.append({"op": "WORKDIR", "flags": [], "args": r.choice(["/w", "/w/x", "rel", "/home/app", "$a", "${P:-/p}", "/tmp"])})
        elif k < 0.88:
            ins.append({"op": "USER", "flags": [], "args": r.choice(USERS2 if g2 else USERS)})
        elif k < 0.92:
            ins.append({"op": "SHELL", "flags": [], "args": r.choice(['["/bin/sh", "-c"]', '["/bin/sh", "-ec"]', '["/bin/busybox", "sh", "-c"]'])})
        else:
            config = [("CMD", '["echo", "x"]'), ("CMD", "echo $a"), ("ENTRYPOINT", '["/bin/sh", "-c"]'),
                      ("EXPOSE", "8080/tcp"), ("EXPOSE", "${PORT:-80}"), ("STOPSIGNAL", "SIGTERM"),
                      ("VOLUME", "/data"), ("VOLUME", '["/v1", "/v2"]')]
            config2 = [("EXPOSE", "53/udp 80"),
                                ("ENTRYPOINT", "echo $a"), ("MAINTAINER", "someone <x@y>"),
                                ("HEALTHCHECK", "--interval=5s --retries=2 CMD echo ok"), ("HEALTHCHECK", "NONE"),
                                ("HEALTHCHECK", '--start-period=1s CMD ["true"]'), ("STOPSIGNAL", "9"),
                                ("ONBUILD", "RUN echo onbuild > /onbuild.txt"), ("ONBUILD", "ENV OB=1"),
                                ("LABEL", 'multi="a b" other=c'), ("ENV", "E1=x E2=${E1}y")]
            op, arg = r.choice(config + config2 if g2 else config)
            ins.append({"op": op, "flags": [], "args": arg})
    return ins, name


def generate(seed):
    r = random.Random(seed)
    g2 = seed >= GRAMMAR2
    files = _context(r, g2)
    esc = "`" if r.random() < 0.12 else "\\"
    ins = []
    globals_ = []
    for _ in range(r.randint(0, 2)):
        v = r.choice(VARS + ["BASEIMG"])
        globals_.append(v)
        val = BASE if v == "BASEIMG" else _value(r, [], esc)
        ins.append({"op": "ARG", "flags": [], "args": f"{v}={val}"})
    stages = []
    for i in range(r.choices([1, 2, 3], [5, 3, 2])[0]):
        s, name = _stage(r, i, files, stages, esc, globals_, g2)
        ins += s
        stages.append(name)
    return Case(seed=seed, escape=esc, instructions=ins, files=files)


def render(case):
    lines = []
    if case["escape"] != "\\":
        lines.append(f"# escape={case['escape']}")
    for i in case["instructions"]:
        line = " ".join([i["op"]] + i["flags"] + [i["args"]])
        lines.append(line)
        if i.get("heredoc"):
            lines.append(i["heredoc"])
    return "\n".join(lines) + "\n"


def _tar(members, path):
    """A reproducible archive (fixed times and owners) for ADD's extraction."""
    import gzip
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, text in sorted(members.items()):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o640, 1700000000
            t.addfile(info, io.BytesIO(data))
    raw = buf.getvalue()
    with open(path, "wb") as f:
        if path.endswith(".gz"):
            with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as g:
                g.write(raw)
        else:
            f.write(raw)


def write(case, ctx):
    """Lays out the context: plain files with their modes, symlinks ({"symlink": target}) and
    tar archives ({"tar": {member: text}})."""
    os.makedirs(ctx, exist_ok=True)
    for path, (content, mode) in case["files"].items():
        p = os.path.join(ctx, path)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        if isinstance(content, dict) and "symlink" in content:
            os.symlink(content["symlink"], p)
            continue
        if isinstance(content, dict):
            _tar(content["tar"], p)
        else:
            with open(p, "w") as f:
                f.write(content)
        os.chmod(p, mode)
    with open(os.path.join(ctx, "Dockerfile"), "w") as f:
        f.write(render(case))


if __name__ == "__main__":
    c = generate(int(sys.argv[1]))
    if len(sys.argv) > 2:
        write(c, sys.argv[2])
    print(render(c), end="")
