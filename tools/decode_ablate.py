#!/usr/bin/env python3
"""Ablations of the decode kernels (`LinearKernel`, M < 128), for nmc-run --replace-ptx.

For every kernel of a module written by `nmc-run --emit-ptx` that is built for dependent launches
(it has `griddepcontrol.wait`), writes OUTDIR/ABLATION/ENTRY.ptx with one piece of its work taken
out, so that the time it saves against the unchanged kernel, on the real grid in the benchmark's
graph of dependent launches, is what that piece costs there:

  noact    after the wait, every activation load (a weak `ld.global`: the weights' loads after
           the wait are `.nc`) becomes moves of f16 ones into its registers: the weights are still
           loaded, dequantized and multiplied, the L2's activation traffic is gone
  nowait   no `griddepcontrol.wait`: every load and instruction stays, only the order against
           the launch ahead is lost (session 25 timed this edit by hand)
  noact+nowait: the two together

Results are wrong; nmc-run reports them without checking. The `wgmma` kernels take their
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


def nowait(name, lines):
    return [l for l in lines if l.strip() != "griddepcontrol.wait;"]


ABLATIONS = {
    "noact": noact,
    "nowait": nowait,
    "noact+nowait": lambda name, lines: nowait(name, noact(name, lines)),
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
