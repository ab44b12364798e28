#!/usr/bin/env python3
"""Finds instructions that write a register an in-flight `wgmma` still reads, in a cubin's SASS.

A `wgmma.mma_async` (SASS `HGMMA`) reads its A registers and, for the sparse form, its
metadata register after it is issued, until the `wgmma.wait_group` that retires its group. The
PTX of NMC's wgmma kernel never writes those registers before then, but ptxas may give an
operand the physical register of a value the PTX redefines later (it did: the 8-buffer kernel
of session 13 handed the `HGMMA.SP` the metadata registers that the next unit's load then
overwrote in flight; docs/performance-gpu.md, "Session 13"). This reads the SASS (cuobjdump)
and reports every write of an in-flight HGMMA's A or metadata registers, assuming the kernel's
pattern: one group a stage, retired by the second `wait_group 1` after it (or a `wait_group 0`).

    ptxas -arch=sm_90a -e ENTRY -o k.cubin kernel.ptx
    python3 tools/wgmma_hazards.py k.cubin [--cuobjdump PATH]

Exit status 1 when it finds any (no GPU needed; CUDA's cuobjdump, e.g. from the PyPI package
nvidia-cuda-cuobjdump).
"""
import argparse
import re
import subprocess
import sys

NO_DESTINATION = ("ST", "RED", "ATOM", "BAR", "SYNCS", "WARPGROUP", "BRA", "EXIT", "RET", "UTMA", "HGMMA", "NOP",
                  "MEMBAR", "FENCE", "DEPBAR", "CCTL", "ERRBAR", "BSSY", "BSYNC", "CALL", "WARPSYNC", "ELECT", "UCGABAR")


def instructions(sass):
    for line in sass.splitlines():
        m = re.match(r"\s+/\*([0-9a-f]{4,})\*/\s+(.*?);", line)
        if m:
            yield m.group(1), m.group(2).strip()


def written(text):
    """The registers an instruction writes (its first operand, for instructions that have one)."""
    body = re.sub(r"^@!?U?P[T0-9]+\s+", "", text)
    opcode, _, operands = body.partition(" ")
    if opcode.startswith(NO_DESTINATION):
        return set()
    m = re.match(r"(R\d+)\b", operands)
    if not m or m.group(1) == "RZ":
        return set()
    width = 4 if ".128" in opcode else 2 if (".64" in opcode or ".WIDE" in opcode) else 1
    first = int(m.group(1)[1:])
    return set(range(first, first + width))


def hazards(sass):
    ins = list(instructions(sass))
    found = []
    for i, (address, text) in enumerate(ins):
        m = re.match(r"HGMMA(\.SP)?\.\S+ R\d+, (R\d+|gdesc\[\w+\]), gdesc\[\w+\], R\d+(?:, (R\d+))?", text)
        if not m:
            continue
        reads = set()
        if m.group(2).startswith("R"):
            a = int(m.group(2)[1:]); reads |= set(range(a, a + 4))
        if m.group(1) and m.group(3):
            reads.add(int(m.group(3)[1:]))
        waits = 0
        for later_address, later in ins[i + 1:]:
            if later.startswith("WARPGROUP.DEPBAR.LE"):
                waits += 1
                if waits == 2 or later.endswith("0x0"):
                    break
            clash = written(later) & reads
            if clash:
                found.append((address, text, later_address, later))
    return found


def cubin_sass(description, tool):
    """Parses `CUBIN [--cuobjdump PATH]` and returns (the cubin's path, its SASS)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cubin")
    ap.add_argument("--cuobjdump", default="cuobjdump")
    args = ap.parse_args()
    try:
        return args.cubin, subprocess.run([args.cuobjdump, "-sass", args.cubin], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.exit(f"{tool}: {args.cubin}: cuobjdump failed: {e}")


def main():
    cubin, sass = cubin_sass(__doc__, "wgmma_hazards.py")
    found = hazards(sass)
    for address, text, later_address, later in found[:20]:
        print(f"/*{address}*/ {text}\n    written in flight at /*{later_address}*/ {later}")
    print(f"{cubin}: {len(found)} writes of an in-flight HGMMA's A or metadata registers")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
