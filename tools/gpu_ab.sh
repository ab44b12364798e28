#!/bin/bash
# A/B of nmc-run builds on the GPU machine, in one call: every build's --gpu-check, then the
# same nmc-run --bench-matmul command for each build in turn, repeated (alternated, so that
# drift of the card shows as spread rather than as a difference).
#
# Here (no GPU needed), one folder per build under device-out/ (git-ignored, carried):
#   bash tools/gpu_ab.sh --pack device-out/ab/new        # builds a static nmc-run, xz-compressed
#   git stash; bash tools/gpu_ab.sh --pack device-out/ab/main; git stash pop
# A stripped static nmc-run is about 58 MB, nearly the device tool's 64 MiB carry; compressed it
# is about 15 MB, so three or four builds travel in one call.
# There (device run, carry device-out):
#   bash tools/gpu_ab.sh device-out/ab/main device-out/ab/new -- --kernels int4Sparse24 --tokens 128,512,4096 --runs 50
# A build may carry nmc-run flags of its own after commas, to compare options of one build:
#   bash tools/gpu_ab.sh device-out/ab/now device-out/ab/now,--stream-k -- --kernels int4Sparse24 --tokens 512,4096
# Options: REPEATS (default 2) rounds of the builds; CHECK=0 skips the --gpu-check runs.
# Logs go to $OUT (or /tmp/out): gpu-check-NAME.log each, ab.log, and ab-table.md (each point's
# medians per build and round: per launch, by graph, by a graph of dependent launches), rewritten
# after every run. A call's time goes mostly to --gpu-check (about 2.5 minutes a build) and to each
# build's run (about 35 s for --tokens 1,16 over the three shapes, after the first, until session 20;
# most of it was the host drawing the random weights: 48 s for the three shapes on the 2-core build
# machine then, 1.2 s since session 21, and the prefill kernels are no longer compiled where no M runs them).
set -uo pipefail

if [ "${1:-}" = "--pack" ]; then
  dir=${2:?usage: tools/gpu_ab.sh --pack DIR}
  cd "$(dirname "$0")/.." || exit 1
  swift build -c release --static-swift-stdlib --product nmc-run || exit 1
  mkdir -p "$dir"
  strip -o "$dir/nmc-run.tmp" .build/release/nmc-run && xz -T0 -6 -c "$dir/nmc-run.tmp" > "$dir/nmc-run.xz.tmp" \
    && mv "$dir/nmc-run.xz.tmp" "$dir/nmc-run.xz" && rm -f "$dir/nmc-run.tmp" || exit 1
  echo "$dir/nmc-run.xz ($(du -h "$dir/nmc-run.xz" | cut -f1), $(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes'))"
  exit 0
fi

builds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do builds+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
if [ ${#builds[@]} -eq 0 ] || [ $# -eq 0 ]; then
  echo "usage: tools/gpu_ab.sh BUILD_DIR[,FLAG...]... -- NMC_RUN_BENCH_ARGUMENTS   (or --pack DIR)" >&2
  exit 1
fi
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
status=0
dir_of() { echo "${1%%,*}"; }                                            # the build's folder
flags_of() { [[ "$1" == *,* ]] && echo "${1#*,}" | tr ',' ' '; }         # its own flags, if any
name_of() { echo "$(basename "$(dir_of "$1")")$(flags_of "$1" | tr -d ' ')"; }
for b in "${builds[@]}"; do
  d=$(dir_of "$b"); name=$(basename "$d")
  [ -x "/tmp/ab/$name/nmc-run" ] && continue
  mkdir -p "/tmp/ab/$name"
  if [ -f "$d/nmc-run.xz" ]; then xz -dc "$d/nmc-run.xz" > "/tmp/ab/$name/nmc-run"; else cp "$d/nmc-run" "/tmp/ab/$name/nmc-run"; fi || exit 1
  chmod +x "/tmp/ab/$name/nmc-run"
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv | tee "$OUT/machine.txt"
if [ "${CHECK:-1}" != 0 ]; then
  for b in "${builds[@]}"; do
    name=$(basename "$(dir_of "$b")")
    [ -f "$OUT/gpu-check-$name.log" ] && continue                      # one check a build
    "/tmp/ab/$name/nmc-run" --gpu-check > "$OUT/gpu-check-$name.log" 2>&1 || { echo "gpu-check $name FAILED"; status=1; }
    echo "gpu-check $name: $(tail -1 "$OUT/gpu-check-$name.log")"
  done
fi
# The table: each point's medians per build, round by round, per launch / by graph / by a graph of
# dependent launches where the kernel has them. At M = 4096 the per-launch medians of one kernel
# moved by up to 9% between rounds of one call (session 14), the graph ones by under 1%: read A/B
# decisions there from the graph column. It is rewritten after every run, so that a call cut by
# its time limit still leaves the table of the runs that finished.
table() {
python3 - "$OUT/ab.log" > "$OUT/ab-table.md.tmp" <<'PY' && mv "$OUT/ab-table.md.tmp" "$OUT/ab-table.md"
import re, sys
build = shape = None
points = {}
for line in open(sys.argv[1]):
    if m := re.match(r"== (\S+) round \d+", line): build = m.group(1); continue
    if m := re.match(r"(\d+x\d+) \S+: laying out", line): shape = m.group(1); continue
    if m := re.match(r"\s+(\S+) M=(\d+): ([\d.]+) us(?:, graph ([\d.]+) us/launch)?(?:, graph with dependent launches ([\d.]+))?", line):
        cell = points.setdefault((shape, m.group(1), int(m.group(2))), {}).setdefault(build, [])
        cell.append(" / ".join(v for v in m.group(3, 4, 5) if v))
builds = list(dict.fromkeys(b for cells in points.values() for b in cells))
print("| point | " + " | ".join(f"{b}: per launch / graph [/ dependent] (us, by round)" for b in builds) + " |")
print("| --- |" + " --- |" * len(builds))
for (shape, kernel, m), cells in points.items():
    print(f"| {shape} {kernel} M={m} | " + " | ".join(", ".join(cells.get(b, [])) for b in builds) + " |")
PY
}
echo "# nmc-run --bench-matmul $*; builds: ${builds[*]}; ${REPEATS:-2} rounds" > "$OUT/ab.log"
for r in $(seq "${REPEATS:-2}"); do
  for b in "${builds[@]}"; do
    name=$(basename "$(dir_of "$b")")
    echo "== $(name_of "$b") round $r" >> "$OUT/ab.log"
    # shellcheck disable=SC2046 # the build's own flags split into words on purpose
    "/tmp/ab/$name/nmc-run" --bench-matmul $(flags_of "$b") "$@" 2>&1 | grep -E " M=[0-9]+:|laying out|error|fail" >> "$OUT/ab.log" || status=1
    table
  done
done
cat "$OUT/ab.log" "$OUT/ab-table.md"
exit $status
