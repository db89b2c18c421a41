#!/usr/bin/env bash
# Builds and runs the cargo-fuzz targets, one after another, for SECONDS each.
#
#   bash fuzz/run.sh [SECONDS] [TARGET...]     (default: 60 s, every target)
#
# Each target reads fuzz/corpus/<t> (grown here, not committed), fuzz/seeds/<t> and
# fuzz/regressions/<t> (both committed, read-only to libFuzzer). A crash leaves its input
# in fuzz/artifacts/<t>/; copy it to fuzz/regressions/<t>/ so `cargo test` replays it.
# Exits 1 if any target crashed (every target still runs), and prints the executions
# of each from libFuzzer's closing `#N DONE` line.
#
# Stable Rust only: cargo-fuzz needs nightly flags (-Zsanitizer, sancov passes), which
# RUSTC_BOOTSTRAP=1 unlocks on the stable compiler. FUZZ_SANITIZER=none skips ASan
# (faster; the Rust code under test is safe code, ASan mainly guards dependencies).
# FUZZ_RUNS=N also stops each target after N executions (the long runs: 10000000).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
case $seconds in
  '' | *[!0-9]*) echo "usage: bash fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
export RUSTC_BOOTSTRAP=1
sanitizer=${FUZZ_SANITIZER:-address}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

echo "== build (${targets[*]})"
build_start=$SECONDS
# One build of every target (they share the crate graph) rather than one per `run`.
cargo fuzz build --sanitizer "$sanitizer"
echo "build took $((SECONDS - build_start)) s"
# Run the binaries just built rather than `cargo fuzz run`, which would rebuild (and
# so fuzz a different build) if the sources changed during the run.
host=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=fuzz/target/$host/release
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

declare -a summary=()
failed=0
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "fuzz/seeds/$t" "fuzz/regressions/$t" "fuzz/artifacts/$t"
  log=fuzz/artifacts/$t.log
  echo "== fuzz $t for ${seconds} s (log: $log)"
  set +e
  # -timeout: one input taking over 10 s is a hang, reported like a crash.
  # -rss_limit_mb (and so -malloc_limit_mb): a decoder allocating past 2 GiB is a bug.
  "$bin_dir/$t" -artifact_prefix="fuzz/artifacts/$t/" ${FUZZ_RUNS:+-runs="$FUZZ_RUNS"} \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "$corpus" "fuzz/seeds/$t" "fuzz/regressions/$t" >"$log" 2>&1
  rc=$?
  set -e
  # libFuzzer's last status line: "#1234567 DONE cov: … exec/s: 20576 rss: …".
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1 || true)
  execs=$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$done_line")
  rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")
  if [ -z "$execs" ]; then
    # No DONE line (crash): -print_final_stats still counts the executions.
    execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n 1)
    rate=$(sed -nE 's/^stat::average_exec_per_sec: *([0-9]+).*/\1/p' "$log" | tail -n 1)
  fi
  if [ "$rc" -eq 0 ]; then
    status=ok
  else
    status=CRASH
    failed=1
    echo "-- $t failed (exit $rc); end of log:"
    tail -n 40 "$log"
    ls -1 "fuzz/artifacts/$t" 2>/dev/null | sed "s|^|   artifact: fuzz/artifacts/$t/|"
  fi
  summary+=("$(printf '%-16s %-6s %12s execs %8s exec/s' "$t" "$status" "${execs:-?}" "${rate:-?}")")
  echo "${summary[-1]}"
done

echo "== summary (${seconds} s per target)"
printf '%s\n' "${summary[@]}"
if [ "$failed" -ne 0 ]; then
  echo "a fuzz target crashed: copy its artifact into fuzz/regressions/<target>/" >&2
fi
exit "$failed"
