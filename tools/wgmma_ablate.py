#!/usr/bin/env python3
"""Ablations of a `wgmma` linear kernel's stage loop, for timing with `nmc-run --replace-ptx`.

Each ablation removes one piece of the real kernel's work (so its results are wrong and
`nmc-run` does not check them); the time it saves against the unchanged kernel is what that
piece costs in the real kernel, on the real grid, beside everything else it does:

  base       the entry unchanged (loaded from the file: the same time as the generated one)
  l1weights  the weight streams' pointers never advance: every unit's loads hit the same
             addresses, so the weights come from L1 instead of L2 (loads and dequantization kept)
  hotact     every activation copy takes the same box (the split's first stage): the copy engine
             still writes each stage into shared memory, but from L2 lines that stay hot
  noact      no activation copies: each stage's mbarrier completes on thread 0's arrival alone,
             the wgmmas read stale shared memory (no shared-memory writes, no L2 reads for them)
  l1weights+noact: the two together

(Not the block barrier: without it a warpgroup can fall two phases of a buffer's mbarrier behind
and wait for a copy that never comes. tools/wgmma_peak.py measured the barrier free at the peak.)

Usage (here, no GPU):
  nmc-run --emit-ptx /tmp/e --shapes 4096x4096 --tokens 4096
  python3 tools/wgmma_ablate.py /tmp/e/linear_int4Sparse24_4096x4096.ptx ENTRY OUT_DIR
then on the GPU machine, for each ablation A:
  nmc-run --bench-matmul --kernels int4Sparse24 --shapes 4096x4096 --tokens 4096 --replace-ptx OUT_DIR/A
"""
import os
import re
import sys


def entry_text(module: str, entry: str) -> str:
    """The entry as the kernel's ptx() wrote it: its header comment and shared declaration, the
    .entry, through its closing brace."""
    start = module.index(f".visible .entry {entry}(")
    before = module[:start].split("\n")[:-1]          # the lines before the .entry's
    head = 0
    while head < len(before) and before[-1 - head].startswith(("//", ".extern")):
        head += 1
    end = module.index("\n}\n", start) + 3
    return "".join(l + "\n" for l in before[len(before) - head:]) + module[start:end]


def loop_bounds(lines):
    """(first, last) line indices of the stage loop: its label through its backward branch."""
    first = next(i for i, l in enumerate(lines) if re.match(r"WGMMA_UNITS_\d+:", l))
    label = lines[first].rstrip(":")
    last = next(i for i, l in enumerate(lines) if l.strip().endswith(f"bra {label};"))
    return first, last


def l1weights(lines):
    first, last = loop_bounds(lines)
    advances = [i for i in range(first, last) if re.match(r"\s*add\.s64 (%rd\d+), \1, \d+;", lines[i])]
    assert len(advances) == 3, f"expected the three weight streams' advances, found {len(advances)}"
    return [l for i, l in enumerate(lines) if i not in advances]


def hotact(lines):
    copies = [i for i, l in enumerate(lines) if "cp.async.bulk.tensor" in l]
    column = re.search(r"\{(%r\d+), %r\d+\}", lines[copies[0]]).group(1)
    out = list(lines)
    for i in copies:
        out[i] = re.sub(r"\{%r\d+, (%r\d+)\}", lambda m: "{" + column + ", " + m.group(1) + "}", out[i])
    return out


def noact(lines):
    out = []
    for l in lines:
        if "cp.async.bulk.tensor" in l:
            continue
        m = re.match(r"(\s*@%p\d+ )mbarrier\.arrive\.expect_tx\.shared::cta\.b64 (%rd\d+), (\[[^\]]+\]), \d+;", l)
        out.append(f"{m.group(1)}mbarrier.arrive.shared::cta.b64 {m.group(2)}, {m.group(3)};" if m else l)
    return out


ABLATIONS = {
    "base": [],
    "l1weights": [l1weights],
    "hotact": [hotact],
    "noact": [noact],
    "l1weights+noact": [l1weights, noact],
}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    module_path, entry, out_dir = sys.argv[1:]
    text = entry_text(open(module_path).read(), entry)
    for name, steps in ABLATIONS.items():
        lines = text.split("\n")
        for step in steps:
            lines = step(lines)
        os.makedirs(f"{out_dir}/{name}", exist_ok=True)
        path = f"{out_dir}/{name}/{entry}.ptx"
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines))
        os.replace(path + ".tmp", path)
        print(f"{path}: {len(lines)} lines")


if __name__ == "__main__":
    main()
