#!/usr/bin/env bash
# Measures every row of docs/quality.md's compression table: SmolLM2-135M, perplexity on
# wikitext2-test.txt (ctx 512, first 16384 tokens), calibration on wikitext2-valid.txt only.
# Usage: scripts/quality-table.sh [ROW…]   (rows: dense int4-rtn int4-gptq 24-magnitude 24-wanda
# 24-sparsegpt 48-sparsegpt 24-sparsegpt-int4-gptq 14-sparsegpt 28-sparsegpt); prints each
# command and its result lines.
set -euo pipefail
cd "$(dirname "$0")/.."
NMC=${NMC:-.build/release/nmc}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
DATA=${DATA:-../shared/data}
SAMPLES=${SAMPLES:-32}
EVAL="--text $DATA/wikitext2-test.txt --ctx 512 --max-tokens 16384"
CAL="--calibration $DATA/wikitext2-valid.txt --calibration-samples $SAMPLES --calibration-seq 512"

declare -A ROWS=(
  [dense]=""
  [int4-rtn]="--quant int4 --group-size 128"
  [int4-gptq]="--quant int4 --group-size 128 --quant-method gptq $CAL"
  [24-magnitude]="--sparsity 2:4 --sparsity-method magnitude"
  [24-wanda]="--sparsity 2:4 --sparsity-method wanda $CAL"
  [24-sparsegpt]="--sparsity 2:4 --sparsity-method sparsegpt $CAL"
  [48-sparsegpt]="--sparsity 4:8 --sparsity-method sparsegpt $CAL"
  [24-sparsegpt-int4-gptq]="--sparsity 2:4 --sparsity-method sparsegpt --quant int4 --group-size 128 --quant-method gptq $CAL"
  [14-sparsegpt]="--sparsity 1:4 --sparsity-method sparsegpt $CAL"
  [28-sparsegpt]="--sparsity 2:8 --sparsity-method sparsegpt $CAL"
)
ORDER=(dense int4-rtn int4-gptq 24-magnitude 24-wanda 24-sparsegpt 48-sparsegpt 24-sparsegpt-int4-gptq 14-sparsegpt 28-sparsegpt)
[ $# -gt 0 ] && ORDER=("$@")
for row in "${ORDER[@]}"; do
  cmd="$NMC eval perplexity $MODEL $EVAL ${ROWS[$row]}"
  echo "== $row"
  echo "\$ $cmd"
  start=$(date +%s)
  $cmd 2>&1 | grep -E '^(perplexity|linear weights|pipeline)' || true
  echo "(wall $(( $(date +%s) - start )) s)"
done
