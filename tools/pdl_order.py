#!/usr/bin/env python3
"""Checks, in a cubin's SASS, that no kernel reads its input or computes before its grid-dependency wait.

A kernel launched as a programmatic dependent launch may start while the kernel before it still
runs; `griddepcontrol.wait` (SASS `ACQBULK`) is where it waits for that kernel's writes. Before
it, only the weights (read-only for the whole step: `ld.global.nc`, SASS `LDG….CONSTANT`) and L2
prefetches (`CCTL….PF2`) may be read. ptxas may move `.nc` loads across the wait, and did: once
an L2 prefetch was added, every activation load and `mma` of NMC's decode kernels ran before it
(docs/performance-gpu.md, "Session 17"); the activations are coherent loads since. This reports,
for every function with an `ACQBULK`, what comes before the first one, and fails where anything
else reads or writes memory or runs a tensor-core instruction there. Weak loads (`LDG` without
`.CONSTANT` or `.STRONG`) before the wait are counted apart and allowed: ptxas keeps coherent loads
in the PTX's order around the wait (session 23), so those are the PTX's own, the weights' first
batch where a kernel loads it weakly (`LinearKernel.weakWeightLoads`; the PTX tests check that no
activation load comes before the wait).

It also reports, after the wait, how many global loads come before the first tensor-core
instruction and how many after it (of them, the read-only `.CONSTANT` ones): in NMC's 16-warp
4096² M = 16 decode kernel ptxas issues the weights' `.nc` loads after the activations', and a
warp's second unit's among the first `HMMA`s; weak weight loads after the wait (session 30's
`--decode-weights-after-wait`, measured slower and removed) it issued with the rest, before any
(docs/performance-gpu.md, "Session 30"). A kernel with a loop reports its listing's order, not its
execution's.

    nmc-run --emit-ptx DIR --shapes 4096x4096 [--decode-prefetch]
    ptxas -arch=sm_90a -o k.cubin DIR/linear_int4Sparse24_4096x4096.ptx
    python3 tools/pdl_order.py k.cubin [--cuobjdump PATH]

Exit status 1 when a kernel breaks the rule (no GPU needed; CUDA's ptxas and cuobjdump, e.g. from
the PyPI packages nvidia-cuda-nvcc and nvidia-cuda-cuobjdump).
"""
import re
import sys

from wgmma_hazards import cubin_sass, instructions

# Opcodes that touch memory or the tensor cores: before the wait only the weights' read-only
# loads (LDG….CONSTANT) and L2 prefetches (CCTL) may appear.
MEMORY_OR_MMA = ("LDG", "LD", "LDS", "LDSM", "STG", "ST", "STS", "ATOM", "RED", "HMMA", "HGMMA", "UTMA", "LDGSTS")


def opcode(text):
    return re.sub(r"^@!?U?P[T0-9]+\s+", "", text).split(" ")[0]


def before_wait(function_sass):
    """(allowed, weak, forbidden) instructions before the first ACQBULK, or None without one."""
    allowed, weak, forbidden = [], [], []
    for address, text in instructions(function_sass):
        op = opcode(text)
        if op == "ACQBULK":
            return allowed, weak, forbidden
        if op.startswith("CCTL") or (op.startswith("LDG") and ".CONSTANT" in op):
            allowed.append((address, text))
        elif op.startswith("LDG") and ".STRONG" not in op:
            weak.append((address, text))
        elif op.split(".")[0] in MEMORY_OR_MMA:
            forbidden.append((address, text))
    return None


def after_wait(function_sass):
    """(loads before the first mma, of them read-only; loads after it, of them read-only) past the first ACQBULK."""
    seen_wait = seen_mma = False
    counts = [0, 0, 0, 0]
    for _, text in instructions(function_sass):
        op = opcode(text)
        if op == "ACQBULK":
            seen_wait = True
        elif seen_wait and (op.startswith("HMMA") or op.startswith("HGMMA")):
            seen_mma = True
        elif seen_wait and op.startswith("LDG"):
            counts[2 * seen_mma] += 1
            counts[2 * seen_mma + 1] += ".CONSTANT" in op
    return counts


def main():
    cubin, sass = cubin_sass(__doc__, "pdl_order.py")
    bad = 0
    for part in re.split(r"\n\s*Function : ", sass)[1:]:
        name = part.split("\n", 1)[0].strip()
        found = before_wait(part)
        if found is None:
            continue
        allowed, weak, forbidden = found
        print(f"{name}: before the wait {len(allowed)} weight loads or prefetches, {len(weak)} weak loads (the PTX's, in its order), "
              f"{len(forbidden)} other memory or mma instructions")
        early, early_nc, late, late_nc = after_wait(part)
        print(f"    after it: {early} global loads before the first mma ({early_nc} read-only), {late} after it ({late_nc} read-only)")
        for address, text in forbidden[:5]:
            print(f"    /*{address}*/ {text}")
        bad += bool(forbidden)
    print(f"{cubin}: {bad} kernels read or compute before their grid-dependency wait")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
