#!/bin/bash
# The decode-step checks and benchmark of docs/performance-gpu.md, in one call on the GPU machine.
# Expects DIR (default device-out/ptx2) to hold nmc-run (or nmc-run.gz); tinyfp16, tiny24 and
# tinyint4: real weights (lit-tests/import/Inputs/make_tiny_llama.py's GGUF) compiled with
#   nmc compile tiny.gguf --target ptx --ctx 64 --reference-steps 32 -o DIR/tinyfp16
#   nmc compile tiny.gguf --passes "[nm-prune{n=2 m=4},]quantize-int4{group=32 exclude=token_embd.weight,output.weight,blk.*.ffn_down.weight},fuse-dequant-matmul,canonicalize,dce" \
#       --target ptx --ctx 64 --reference-steps 32 -o DIR/tiny24 (DIR/tinyint4 without nm-prune)
# (its 64-column ffn_down would need two scale groups per 128-column unit, which the kernels do not take); the SmolLM2-shaped
# artifacts smol24, smolint4, smolfp16 (each with its CPU reference) and the LLaMA-7B-shaped
# l7b24, l7bint4, l7bfp16, as written by:
#   nmc compile --config tools/configs/smollm2-135m-untied.json --synthetic-weights 7 [--quant int4 [--sparsity 2:4]] \
#       --target ptx --ctx 256 --reference-steps 32 -o DIR/smol…
#   nmc compile --config tools/configs/llama-7b.json --synthetic-weights 7 [--quant int4 [--sparsity 2:4]] --target ptx --ctx 256 -o DIR/l7b…
# Logs go to $OUT (or /tmp/out). CHECK=0 skips the --gpu-check (about 2.5 minutes).
DIR=${1:-device-out/ptx2}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
[ -x "$DIR/nmc-run" ] || gunzip -c "$DIR/nmc-run.gz" > "$DIR/nmc-run" && chmod +x "$DIR/nmc-run"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
status=0
if [ "${CHECK:-1}" != 0 ]; then                                # CHECK=0: the build's --gpu-check ran already
  "$DIR/nmc-run" --gpu-check > "$OUT/gpu-check.log" 2>&1 || status=1
  tail -3 "$OUT/gpu-check.log"
fi
for m in smol24 smolint4 smolfp16 tinyfp16 tiny24 tinyint4; do
  echo "== $m"
  "$DIR/nmc-run" "$DIR/$m" --check > "$OUT/check-$m.log" 2>&1 || status=1
  grep -v "^greedy tokens" "$OUT/check-$m.log"
done
# Text through the GPU step with the artifact's tokenizer (the CPU backend gives the same 12 tokens).
echo "== tinyfp16 --prompt the"
"$DIR/nmc-run" "$DIR/tinyfp16" --prompt "the" -n 12 | tail -1 | od -c
PYTHONUNBUFFERED=1 python3 "$(dirname "$0")/bench_matmul.py" --decode-step --nmc-run "$DIR/nmc-run" \
  --artifacts "$DIR/l7b24,$DIR/l7bint4,$DIR/l7bfp16" --runs 50 --position 128 --ctx 256 \
  --json "$OUT/decode-step.json" --markdown "$OUT/decode-step.md" > "$OUT/decode-step.log" 2>&1 || status=1
tail -12 "$OUT/decode-step.log"
# Where the 2:4 step's time goes (each launch alone).
"$DIR/nmc-run" "$DIR/l7b24" --bench-step --profile --runs 20 2>&1 | tail -12 | tee "$OUT/profile-l7b24.log"
exit $status
