#!/usr/bin/env bash
# Runs the libFuzzer targets of fuzz/ (built by `make fuzz-build`), each for SECONDS seconds on a
# scratch copy of its seed corpus (fuzz/corpus/<target>), and prints per target the inputs run,
# libFuzzer's coverage and corpus size, and the result. Exits 1 when any target finds a crash,
# a sanitizer report, a leak, a timeout (an input over 1 s) or an out-of-memory (over 2 GB).
#
#   fuzz/run.sh SECONDS [TARGET…]          (default: every target)
#
# Dictionaries (fuzz/dict/<target>.dict, written by fuzz/make_corpus.py) give libFuzzer the
# keywords and field names of each format. Scratch corpora, logs and crash files go to
# fuzz/.build/fuzz-work/<target>/ (git-ignored), so the inputs libFuzzer adds do not pile up in git. Extra libFuzzer flags: FUZZ_FLAGS="…"; other
# binaries or work folder (a long run beside a rebuild): FUZZ_BIN=…, FUZZ_WORK=….
set -u -o pipefail

here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET…]}
shift
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(nmir pipeline gguf safetensors tokenizer tokenizer-json)
bin=${FUZZ_BIN:-$here/.build/debug}
work=${FUZZ_WORK:-$here/.build/fuzz-work}
# Crashes go to libFuzzer's handler (which saves the input), not Swift's backtracer (which trips
# ASan while it reads the crashed process's memory).
export SWIFT_BACKTRACE=enable=no
# Swift's Foundation leaks the 4 KB read buffer of an empty file (readBytesFromFile); nothing of
# NMC's own is suppressed.
export LSAN_OPTIONS="suppressions=$here/lsan-suppressions.txt${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

failed=()
printf '%-16s %10s %8s %8s %12s  %s\n' target inputs exec/s cov corpus result
for t in "${targets[@]}"; do
  exe=$bin/fuzz-$t
  [ -x "$exe" ] || { echo "fuzz/run.sh: $exe is missing; run make fuzz-build" >&2; exit 2; }
  dir=$work/$t
  rm -rf "$dir" && mkdir -p "$dir/corpus" "$dir/artifacts"
  cp "$here/corpus/$t/"* "$dir/corpus/"
  log=$dir/fuzz.log
  # The targets that read paths write each input there; on tmpfs when there is one.
  scratch=$(mktemp -d "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")/nmc-fuzz-$t.XXXXXX")
  export NMC_FUZZ_SCRATCH=$scratch
  dict=()
  [ -f "$here/dict/$t.dict" ] && dict=(-dict="$here/dict/$t.dict")
  # shellcheck disable=SC2086
  "$exe" "$dir/corpus" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 "${dict[@]}" \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/" ${FUZZ_FLAGS:-} >"$log" 2>&1
  status=$?
  rm -rf "$scratch"
  inputs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' <<<"$last")
  artifacts=$(ls "$dir/artifacts" 2>/dev/null)
  if [ $status -eq 0 ] && [ -z "$artifacts" ]; then
    result=ok
  else
    result="FAILED (exit $status; log $log)"
    failed+=("$t")
  fi
  printf '%-16s %10s %8s %8s %12s  %s\n' "$t" "${inputs:-?}" "${rate:-?}" "${cov:-?}" "${corp:-?}" "$result"
  if [ "$result" != ok ]; then
    grep -E 'ERROR|SUMMARY|Fatal error|fatalError|panic|==[0-9]+==' "$log" | head -5 | sed 's/^/    /'
    for a in $artifacts; do echo "    crashing input: $dir/artifacts/$a"; done
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (reproduce: fuzz/.build/debug/fuzz-TARGET CRASH_FILE)"
  exit 1
fi
echo "fuzz: every target ran ${seconds}s without a crash"
