#!/usr/bin/env python3
"""The floor of the benchmark's graph of dependent launches, for nmc-run --replace-ptx.

For every kernel of a module written by `nmc-run --emit-ptx` that is built for dependent launches
(it has `griddepcontrol.wait`), writes OUTDIR/ENTRY.ptx: the same entry (name, parameters,
directives, shared memory), with a body that only lets the next launch start, waits for the one
ahead, and (thread 0 of each block) stores one f16 zero into y's first element of the block's
row block, so that each launch has an output the next one waits on. Timed by
`nmc-run --bench-matmul --replace-ptx OUTDIR` with the same options that emitted the module, each
such kernel's "graph with dependent launches" figure is the period of a chain of launches of that
grid and block that do no work: what launch, grid-dependency wait and completion cost by
themselves, which no kernel of that shape can beat by this method. (Its results are reported, not
checked: nmc-run says so.)

Usage: python3 tools/chain_floor.py MODULE.ptx OUTDIR
"""
import os
import re
import sys


def entries(text):
    """(name, lines) of each entry with what precedes it since the previous one's closing brace."""
    lines = text.splitlines()
    start, found = 0, []
    for i, line in enumerate(lines):
        if line == "}":
            chunk = lines[start:i + 1]
            name = next((re.match(r"\.visible \.entry (\w+)\(", l).group(1) for l in chunk
                         if l.startswith(".visible .entry ")), None)
            if name:
                found.append((name, [l for l in chunk if not l.startswith("//") and l.strip() != ""
                                     and not l.startswith((".version", ".target", ".address_size"))]))
            start = i + 1
    return found


def floor(name, lines):
    """The entry with its body replaced; None where it is not built for dependent launches."""
    if not any("griddepcontrol.wait;" in l for l in lines):
        return None
    open_brace = lines.index("{")
    header = lines[:open_brace + 1]
    params = [re.match(r"\s*\.param \.u64 (\S+?),?$", l) for l in header]
    params = [m.group(1) for m in params if m]
    if len(params) < 5:
        raise SystemExit(f"{name}: expected the linear kernels' parameters (w, meta, scales, x, y, …); found {params}")
    y = params[4]
    body = [
        "    .reg .pred %p<2>;",
        "    .reg .b32 %r<4>;",
        "    .reg .b64 %rd<4>;",
        "    .reg .b16 %h<2>;",
        "    griddepcontrol.launch_dependents;",
        "    griddepcontrol.wait;",
        "    mov.u32 %r0, %tid.x;",
        "    setp.ne.u32 %p0, %r0, 0;",
        "    @%p0 bra FLOOR_DONE;",
        f"    ld.param.u64 %rd0, [{y}];",
        "    cvta.to.global.u64 %rd0, %rd0;",
        "    mov.u32 %r1, %ctaid.x;",
        "    mul.wide.u32 %rd1, %r1, 2;",
        "    add.u64 %rd0, %rd0, %rd1;",
        "    mov.b16 %h0, 0;",
        "    st.global.b16 [%rd0], %h0;",
        "FLOOR_DONE:",
        "    ret;",
        "}",
    ]
    return "\n".join(header + body) + "\n"


def arguments(tool, usage):
    """(module path, its text, OUTDIR) from `TOOL MODULE.ptx OUTDIR`; None, said why, otherwise."""
    if len(sys.argv) != 3:
        print(usage.strip().splitlines()[-1], file=sys.stderr)
        return None
    module, out = sys.argv[1], sys.argv[2]
    try:
        return module, open(module, encoding="utf-8").read(), out
    except OSError as e:
        print(f"{tool}: {module}: {e.strerror}", file=sys.stderr)
        return None


def main():
    args = arguments("chain_floor", __doc__)
    if args is None:
        return 1
    module, text, out = args
    os.makedirs(out, exist_ok=True)
    written = 0
    for name, lines in entries(text):
        ptx = floor(name, lines)
        if ptx is None:
            continue
        path = os.path.join(out, name + ".ptx")
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write(ptx)
        os.replace(path + ".tmp", path)
        print(f"{path}: {name} with a body that only triggers, waits and stores one value a block")
        written += 1
    if written == 0:
        print(f"chain_floor: {module}: no kernel built for dependent launches (no griddepcontrol.wait)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
