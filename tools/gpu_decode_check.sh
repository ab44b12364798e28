#!/bin/bash
# The decode-step checks and benchmark of docs/performance-gpu.md, in one call on the GPU machine.
# Expects DIR (default device-out/ptx2) to hold nmc-run (or nmc-run.xz, nmc-run.gz); tinyfp16, tiny24 and
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
# Here, `tools/gpu_decode_check.sh --build DIR [--gpu sm_90]` builds nmc and nmc-run (release,
# static) and writes all nine with that nmc, the nmc-run (xz-compressed, tools/gpu_ab.sh --pack) beside them.
# Logs go to $OUT (or /tmp/out). CHECK=0 skips the --gpu-check (about 2.5 minutes).
if [ "${1:-}" = "--build" ]; then
  dir=${2:?usage: tools/gpu_decode_check.sh --build DIR [nmc compile options, e.g. --gpu sm_90]}; shift 2
  cd "$(dirname "$0")/.." || exit 1
  swift build -c release --static-swift-stdlib --product nmc && bash tools/gpu_ab.sh --pack "$dir" || exit 1
  nmc=.build/release/nmc
  python3 lit-tests/import/Inputs/make_tiny_llama.py "$dir/tiny.gguf" || exit 1
  q="quantize-int4{group=32 exclude=token_embd.weight,output.weight,blk.*.ffn_down.weight},fuse-dequant-matmul,canonicalize,dce"
  set -x
  $nmc compile "$dir/tiny.gguf" --target ptx --ctx 64 --reference-steps 32 -o "$dir/tinyfp16" "$@" >/dev/null || exit 1
  $nmc compile "$dir/tiny.gguf" --passes "nm-prune{n=2 m=4},$q" --target ptx --ctx 64 --reference-steps 32 -o "$dir/tiny24" "$@" >/dev/null || exit 1
  $nmc compile "$dir/tiny.gguf" --passes "$q" --target ptx --ctx 64 --reference-steps 32 -o "$dir/tinyint4" "$@" >/dev/null || exit 1
  configured() {                                                # NAME CONFIG OPTION...: the three forms of one config
    local name=$1 config=$2; shift 2
    $nmc compile --config tools/configs/$config.json --synthetic-weights 7 --quant int4 --sparsity 2:4 --target ptx -o "$dir/${name}24" "$@" >/dev/null &&
    $nmc compile --config tools/configs/$config.json --synthetic-weights 7 --quant int4 --target ptx -o "$dir/${name}int4" "$@" >/dev/null &&
    $nmc compile --config tools/configs/$config.json --synthetic-weights 7 --target ptx -o "$dir/${name}fp16" "$@" >/dev/null
  }
  configured smol smollm2-135m-untied --ctx 256 --reference-steps 32 "$@" && configured l7b llama-7b --ctx 256 "$@" || exit 1
  exit 0
fi
DIR=${1:-device-out/ptx2}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
if [ ! -x "$DIR/nmc-run" ]; then                                # a packed one: unpacked outside DIR (carried folders are replaced)
  mkdir -p /tmp/decode-check
  if [ -f "$DIR/nmc-run.xz" ]; then xz -dc "$DIR/nmc-run.xz"; else gunzip -c "$DIR/nmc-run.gz"; fi > /tmp/decode-check/nmc-run || exit 1
  chmod +x /tmp/decode-check/nmc-run
  RUN=/tmp/decode-check/nmc-run
else
  RUN=$DIR/nmc-run
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
status=0
if [ "${CHECK:-1}" != 0 ]; then                                # CHECK=0: the build's --gpu-check ran already
  "$RUN" --gpu-check > "$OUT/gpu-check.log" 2>&1 || status=1
  tail -3 "$OUT/gpu-check.log"
fi
for m in smol24 smolint4 smolfp16 tinyfp16 tiny24 tinyint4; do
  echo "== $m"
  "$RUN" "$DIR/$m" --check > "$OUT/check-$m.log" 2>&1 || status=1
  grep -v "^greedy tokens" "$OUT/check-$m.log"
done
# Text through the GPU step with the artifact's tokenizer (the CPU backend gives the same 12 tokens).
echo "== tinyfp16 --prompt the"
"$RUN" "$DIR/tinyfp16" --prompt "the" -n 12 | tail -1 | od -c
PYTHONUNBUFFERED=1 python3 "$(dirname "$0")/bench_matmul.py" --decode-step --nmc-run "$RUN" \
  --artifacts "$DIR/l7b24,$DIR/l7bint4,$DIR/l7bfp16" --runs 50 --position 128 --ctx 256 \
  --json "$OUT/decode-step.json" --markdown "$OUT/decode-step.md" > "$OUT/decode-step.log" 2>&1 || status=1
tail -12 "$OUT/decode-step.log"
# Where the 2:4 step's time goes (each launch alone).
"$RUN" "$DIR/l7b24" --bench-step --profile --runs 20 2>&1 | tail -12 | tee "$OUT/profile-l7b24.log"
exit $status
