#!/usr/bin/env python3
"""Ablations of the decode kernels (`LinearKernel`, M < 128), for nmc-run --replace-ptx.

For every kernel of a module written by `nmc-run --emit-ptx` that is built for dependent launches
(it has `griddepcontrol.wait`), writes OUTDIR/ABLATION/ENTRY.ptx with one piece of its work taken
out, so that the time it saves against the unchanged kernel, on the real grid in the benchmark's
graph of dependent launches, is what that piece costs there:

  noact    after the wait, every activation load (a weak `ld.global`: the weights' loads after
           the wait are `.nc`) becomes moves of f16 ones into its registers: the weights are still
           loaded, dequantized and multiplied, the L2's activation traffic is gone
  hotact   after the wait, every thread's activation loads read the first bytes of x, each load
           the next ones (a thread's n-th load at the sum of the widths before it), the same for
           every thread: the loads and the shared-memory staging stay, the L2 sends at most a
           kilobyte or so for them (the rest hit L1)
  noreduce no sums across the block's warps: after its last mma each thread adds its own
           accumulators and stores their f16 sum to y[block · threads + thread] (where that is
           inside M × N), in place of the shared-memory reduction, its barriers and the stores
  cluster2 nothing taken out: the same kernel launched as clusters of two blocks
           (`.reqnctapercluster 2, 1, 1`, which nothing in it uses), so its results stay right and
           its time tells what a cluster launch costs a kernel that does work
  nowait   no `griddepcontrol.wait`: every load and instruction stays, only the order against
           the launch ahead is lost (session 25 timed this edit by hand)
  waitonweights nothing taken out: the wait is guarded by a predicate made from every weight
           register loaded above it (their XOR ANDed with m >> 31, 0 for any real M), so that
           ptxas issues the `.nc` weight loads, and they land, before the wait (it otherwise
           sinks them below it); results stay right (session 31)
  noact+nowait, noact+noreduce: two together

Results are wrong (but cluster2's and waitonweights'); nmc-run reports them without checking. The `wgmma` kernels take their
activations by bulk copies and are left out (tools/wgmma_ablate.py edits those).

Usage: python3 tools/decode_ablate.py MODULE.ptx OUTDIR
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chain_floor import arguments, entries  # noqa: E402

ONES = "0x3c003c00"  # two f16 ones
LOAD = re.compile(r"^(\s*)(@!?%p\d+\s+)?ld\.global(\.v[24])?\.(u32|b32) \{?([^}\[]*?)\}?, \[[^\]]+\];$")


def noact(name, lines):
    wait = lines.index("    griddepcontrol.wait;")
    out, replaced = lines[:wait + 1], 0
    for line in lines[wait + 1:]:
        m = LOAD.match(line)
        if m is None:
            out.append(line)
            continue
        indent, guard = m.group(1), m.group(2) or ""
        out += [f"{indent}{guard}mov.b32 {r.strip()}, {ONES};" for r in m.group(5).split(",")]
        replaced += 1
    if replaced == 0:
        raise SystemExit(f"decode_ablate: {name}: no activation load after the wait")
    return out


def hotact(name, lines):
    x = next(m.group(1) for l in lines for m in [re.match(r"\s*\.param \.u64 (\S+_x),?$", l)] if m)
    wait = lines.index("    griddepcontrol.wait;")
    out, offset = lines[:wait + 1] + [f"    ld.param.u64 %hot, [{x}];", "    cvta.to.global.u64 %hot, %hot;"], 0
    for line in lines[wait + 1:]:
        m = LOAD.match(line)
        if m is None:
            out.append(line)
            continue
        out.append(re.sub(r"\[[^\]]+\];$", f"[%hot+{offset}];", line))
        offset += {".v4": 16, ".v2": 8}.get(m.group(3), 4)
    if offset == 0:
        raise SystemExit(f"decode_ablate: {name}: no activation load after the wait")
    brace = out.index("{")
    return out[:brace + 1] + ["    .reg .b64 %hot;"] + out[brace + 1:]


def noreduce(name, lines):
    last_mma = max(i for i, l in enumerate(lines) if l.strip().startswith("mma."))
    red = next(i for i in range(last_mma, len(lines)) if re.match(rf"\s*mov\.u32 %r\d+, {name}_red;$", lines[i]))
    start = red - 1 if lines[red - 1].strip() == "bar.sync 0;" else red
    sums = [m.group(1) for l in lines[red:] for m in [re.match(r"\s*st\.shared\.f32 \[[^\]]+\], (%f\d+);$", l)] if m]
    if not sums:
        raise SystemExit(f"decode_ablate: {name}: no reduction after the last mma")
    params = [m.group(1) for l in lines for m in [re.match(r"\s*\.param \.u\d+ (\S+?),?$", l)] if m]
    y, m_ = next(p for p in params if p.endswith("_y")), next(p for p in params if p.endswith("_m"))
    n = int(re.search(r"_n(\d+)_", name).group(1))
    body = [f"    mov.f32 %nr_sum, {sums[0]};"] + [f"    add.f32 %nr_sum, %nr_sum, {f};" for f in sums[1:]] + [
        "    cvt.rn.f16.f32 %nr_h, %nr_sum;",
        "    mov.u32 %nr_i, %ctaid.x;",
        "    mov.u32 %nr_t, %ntid.x;",
        "    mov.u32 %nr_j, %tid.x;",
        "    mad.lo.u32 %nr_i, %nr_i, %nr_t, %nr_j;",
        f"    ld.param.u32 %nr_t, [{m_}];",
        f"    mul.lo.u32 %nr_t, %nr_t, {n};",
        "    setp.lt.u32 %nr_in, %nr_i, %nr_t;",
        f"    ld.param.u64 %nr_y, [{y}];",
        "    cvta.to.global.u64 %nr_y, %nr_y;",
        "    mul.wide.u32 %nr_o, %nr_i, 2;",
        "    add.s64 %nr_y, %nr_y, %nr_o;",
        "    @%nr_in st.global.b16 [%nr_y], %nr_h;",
        "    ret;",
        "}",
    ]
    brace = lines.index("{")
    regs = ["    .reg .f32 %nr_sum;", "    .reg .b16 %nr_h;", "    .reg .b32 %nr_i, %nr_t, %nr_j;",
            "    .reg .pred %nr_in;", "    .reg .b64 %nr_y, %nr_o;"]
    return lines[:brace + 1] + regs + lines[brace + 1:start] + body


def cluster2(name, lines):
    if any(".reqnctapercluster" in l for l in lines):
        raise SystemExit(f"decode_ablate: {name}: already launched as clusters")
    brace = lines.index("{")
    return lines[:brace] + [".reqnctapercluster 2, 1, 1"] + lines[brace:]


def nowait(name, lines):
    return [l for l in lines if l.strip() != "griddepcontrol.wait;"]


def waitonweights(name, lines):
    wait = lines.index("    griddepcontrol.wait;")
    m = next(g.group(1) for l in lines for g in [re.search(rf"ld\.param\.u32 (%r\d+), \[{name}_m\];", l)] if g)
    loads = [re.search(r"ld\.global(?:\.nc)?(?:\.v[24])?\.u32 (\{[^}]*\}|%r\d+), ", l) for l in lines[:wait]]
    regs = [r for g in loads if g for r in re.findall(r"%r\d+", g.group(1))]
    if not regs:
        raise SystemExit(f"decode_ablate: {name}: no weight load above the wait")
    body = [f"    mov.b32 %ww0, {regs[0]};"] + [f"    xor.b32 %ww0, %ww0, {r};" for r in regs[1:]] + [
        f"    shr.u32 %ww1, {m}, 31;", "    and.b32 %ww0, %ww0, %ww1;", "    setp.eq.u32 %ww_p, %ww0, 0;",
        "    @%ww_p griddepcontrol.wait;"]
    brace = lines.index("{")
    return lines[:brace + 1] + ["    .reg .b32 %ww<2>;", "    .reg .pred %ww_p;"] + lines[brace + 1:wait] + body + lines[wait + 1:]


ABLATIONS = {
    "noact": noact,
    "hotact": hotact,
    "noreduce": noreduce,
    "cluster2": cluster2,
    "nowait": nowait,
    "waitonweights": waitonweights,
    "noact+nowait": lambda name, lines: nowait(name, noact(name, lines)),
    "noact+noreduce": lambda name, lines: noreduce(name, noact(name, lines)),
}


def main():
    args = arguments("decode_ablate", __doc__)
    if args is None:
        return 1
    module, text, out = args
    kernels = [(n, l) for n, l in entries(text)
               if "    griddepcontrol.wait;" in l and not any("cp.async.bulk.tensor" in x for x in l)]
    if not kernels:
        print(f"decode_ablate: {module}: no decode kernel built for dependent launches", file=sys.stderr)
        return 1
    for ablation, edit in ABLATIONS.items():
        os.makedirs(os.path.join(out, ablation), exist_ok=True)
        for name, lines in kernels:
            path = os.path.join(out, ablation, name + ".ptx")
            with open(path + ".tmp", "w", encoding="utf-8") as f:
                f.write("\n".join(edit(name, lines)) + "\n")
            os.replace(path + ".tmp", path)
            print(f"{path}: {name}, {ablation}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
