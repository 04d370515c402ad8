#!/usr/bin/env bash
# Builds and runs the libFuzzer targets for a bounded time; tests/fuzz_tests.cmake calls it.
#
#   run_fuzzers.sh build BUILD_DIR                 configure (clang, standalone fuzz/) and build
#   run_fuzzers.sh run BUILD_DIR TARGET SECONDS    fuzz TARGET for SECONDS on its corpus
#   run_fuzzers.sh all BUILD_DIR [SECONDS]         both, for every target (default 30 s each)
#
# The working corpus lives in BUILD_DIR/corpus/TARGET, seeded from fuzz/corpus/TARGET (which
# also holds regression inputs) and from fuzz_make_corpus; it grows across runs. A crash
# leaves its input in BUILD_DIR/artifacts/TARGET/; replay it with BUILD_DIR/TARGET FILE
# (MSTREAM_FUZZ_TRACE=1 makes fuzz_transport print each operation).
# Exits 77 (skipped) when there is no clang++.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cmake_bin="${CMAKE_COMMAND:-cmake}"
cxx="${MSTREAM_FUZZ_CXX:-clang++}"
targets=(fuzz_datagram_decode fuzz_transport fuzz_control_decode fuzz_sealed_decode)

usage() {
  sed -n '2,12p' "$0" >&2
  exit 2
}

build() {
  local dir="$1"
  if ! command -v "$cxx" >/dev/null 2>&1; then
    echo "run_fuzzers: $cxx not found; fuzzing skipped" >&2
    exit 77
  fi
  local gen=()
  if command -v ninja >/dev/null 2>&1; then gen=(-G Ninja); fi
  if [[ ! -f "$dir/CMakeCache.txt" ]]; then
    "$cmake_bin" -S "$here" -B "$dir" "${gen[@]}" -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  "$cmake_bin" --build "$dir" --target "${targets[@]}" fuzz_make_corpus
}

run() {
  local dir="$1" target="$2" seconds="$3"
  local bin="$dir/$target"
  [[ -x "$bin" ]] || { echo "run_fuzzers: $bin not built (run 'build' first)" >&2; exit 1; }
  local corpus="$dir/corpus/$target" artifacts="$dir/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts" "$dir/seeds"
  "$dir/fuzz_make_corpus" "$dir/seeds"
  local extra=()
  if [[ "$target" == fuzz_transport ]]; then extra=(-max_len=2048); fi
  echo "run_fuzzers: $target for ${seconds}s; corpus $corpus"
  # Seed inputs (committed ones first: they include regressions) run before any mutation.
  if ! "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts" "${extra[@]}" \
      "$corpus" "$here/corpus/$target" "$dir/seeds/$target" 2>"$dir/$target.log"; then
    tail -n 60 "$dir/$target.log" >&2
    echo "run_fuzzers: $target FAILED; reproducer(s):" >&2
    ls -1 "$artifacts" >&2
    exit 1
  fi
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$dir/$target.log" || true
}

[[ $# -ge 2 ]] || usage
cmd="$1"
dir="$(mkdir -p "$2" && cd "$2" && pwd)"
case "$cmd" in
  build) build "$dir" ;;
  run) [[ $# -eq 4 ]] || usage; run "$dir" "$3" "$4" ;;
  all)
    build "$dir"
    for t in "${targets[@]}"; do run "$dir" "$t" "${3:-30}"; done
    ;;
  *) usage ;;
esac
