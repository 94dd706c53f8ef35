#!/usr/bin/env python3
"""Regenerates the committed seed corpora for the layer_extract and whiteout fuzz targets.

Run from anywhere: python3 fuzz/seeds/gen.py. Output is deterministic (fixed mtimes, gzip
mtime 0). The absolute paths are the sandbox paths the targets use (see
fuzz/fuzz_targets/common/mod.rs): /tmp/hoist-fuzz/<target>/canary.

layer_extract seeds start with the target's flag byte (0 plain, 1 harness-gzipped, 2 raw to
the sniffing decompressor, 3 Archive mode); whiteout seeds are bare tars (the second layer).
"""
import gzip
import io
import os
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))


def tar(entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            name, kind = e[0], e[1]
            ti = tarfile.TarInfo(name)
            ti.mtime = 1_700_000_000
            ti.uid = ti.gid = 0
            ti.uname = ti.gname = ""
            data = b""
            if kind == "f":
                data = e[2] if len(e) > 2 else b"x"
                ti.type, ti.mode, ti.size = tarfile.REGTYPE, 0o644, len(data)
            elif kind == "d":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            elif kind == "s":
                ti.type, ti.mode, ti.linkname = tarfile.SYMTYPE, 0o777, e[2]
            elif kind == "h":
                ti.type, ti.mode, ti.linkname = tarfile.LNKTYPE, 0o644, e[2]
            elif kind == "p":
                ti.type, ti.mode = tarfile.FIFOTYPE, 0o644
            elif kind == "c":
                ti.type, ti.mode, ti.devmajor, ti.devminor = tarfile.CHRTYPE, 0o666, 1, 3
            if len(e) > 3:
                for k, v in e[3].items():
                    if k == "pax":
                        ti.pax_headers = v
                    else:
                        setattr(ti, k, v)
            t.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
    # Drop tarfile's padding to a 10 KiB record: keep the entries and two zero blocks.
    b = buf.getvalue().rstrip(b"\0")
    b += b"\0" * (-len(b) % 512)
    return b + b"\0" * 1024


def gz(b):
    return gzip.compress(b, compresslevel=6, mtime=0)


def write(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


LX = "/tmp/hoist-fuzz/layer_extract/canary"
WO = "/tmp/hoist-fuzz/whiteout/canary"

normal = tar([
    ("dir", "d"), ("dir/file", "f", b"hello"), ("root", "s", "/"),
    ("dir/hl", "h", "dir/file"), ("fifo", "p"), ("null", "c"),
    ("dir/setuid", "f", b"s", {"mode": 0o4755, "uid": 1000, "gid": 1000}),
])
escape = tar([
    ("../canary/escaped", "f"), ("up", "s", "../canary"), ("up/through-rel", "f"),
    ("abs", "s", LX), ("abs/precious", "f", b"overwritten"),
    ("root", "s", "/"), ("root" + LX + "/secret", "f", b"pwned"),
    ("hard", "h", "../canary/precious"), ("hard2", "h", "abs/precious"),
    ("/abs-name", "f"), ("./.././../x", "f"),
])
whiteouts = tar([
    ("dir", "d"), ("dir/a", "f"), ("dir/.wh.a", "f", b""), ("dir/.wh..wh..opq", "f", b""),
    ("up", "s", "../canary"), ("up/.wh.precious", "f", b""), ("dir/.wh..", "f", b""),
    (".wh..wh..opq", "f", b""), ("dir/.wh...", "f", b""), (".wh.up", "f", b""),
])
pax = tar([
    ("d" * 120 + "/long", "f", b"abc"),
    ("innocent", "f", b"p", {"pax": {"path": "../canary/pax"}}),
    ("link", "s", "x", {"pax": {"linkpath": "../../canary"}}),
    ("big", "f", b"b", {"pax": {"uid": "4294967296", "gid": "77", "mtime": "1.5"}}),
    ("xattr", "f", b"x", {"pax": {"SCHILY.xattr.user.a": "1",
                                   "SCHILY.xattr.trusted.overlay.opaque": "y"}}),
], fmt=tarfile.PAX_FORMAT)
gnulong = tar([
    ("e" * 150 + "/name", "f", b"long"),
    ("sl", "s", "../" * 40 + "canary"),
])

write("layer_extract", "plain-normal", b"\x00" + normal)
write("layer_extract", "plain-escape", b"\x00" + escape)
write("layer_extract", "plain-whiteouts", b"\x00" + whiteouts)
write("layer_extract", "plain-pax", b"\x00" + pax)
write("layer_extract", "plain-gnu-long", b"\x00" + gnulong)
write("layer_extract", "gzip-by-harness-escape", b"\x01" + escape)
write("layer_extract", "raw-gzip-pax", b"\x02" + gz(pax))
write("layer_extract", "raw-gzip-ratio-normal", b"\x06" + gz(normal))
write("layer_extract", "archive-whiteouts", b"\x03" + whiteouts)

write("whiteout", "remove-through-symlinks", tar([
    ("up/.wh.precious", "f", b""), ("abs/.wh.secret", "f", b""),
    ("var/run/.wh.x", "f", b""), ("usr/lib/.wh.libc.so", "f", b""),
    ("dirlink/.wh.a", "f", b""), (WO[1:] + "/.wh.sub", "f", b""),
]))
write("whiteout", "opaque-dirs", tar([
    ("data", "d"), ("data/.wh..wh..opq", "f", b""), ("data/new", "f"),
    ("up/.wh..wh..opq", "f", b""), ("dirlink/.wh..wh..opq", "f", b""),
    ("abs/.wh..wh..opq", "f", b""),
]))
write("whiteout", "replace-types", tar([
    ("etc/.wh.passwd", "f", b""), ("etc/passwd", "d"), ("data", "f", b"file now"),
    ("up", "d"), ("up/precious", "f", b"mine"), ("lib/libc.so", "s", "../canary/precious"),
    ("lib/libc.so.6", "f", b"over the hardlink"),
]))
write("whiteout", "escape-names", tar([
    ("../.wh.canary", "f", b""), ("../canary/.wh.precious", "f", b""), (".wh..", "f", b""),
    ("home/u/../../../.wh.canary", "f", b""), (".wh.etc", "f", b""), (".wh.up", "f", b""),
    ("up", "s", "/"), ("up/tmp/hoist-fuzz/whiteout/canary/x", "f"),
]))
