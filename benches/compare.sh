#!/usr/bin/env bash
# Runs the bench-spec standard configurations REPS times for fieldmesh and both reference
# peers (../shared/peers), interleaved in one session, each run bounded by `timeout`, then
# writes a Markdown table of medians (min–max), the machine's CPU steal during the runs, and
# the ratios fieldmesh / peer.
#
#   benches/compare.sh                       # everything, REPS=3
#   REPS=1 ONLY="--n 50 --m 1000 --window 1" benches/compare.sh
#   IMPLS="fieldmesh rust" benches/compare.sh
#   SCALE=0 benches/compare.sh                # without the n500 scale run
#   FIELDMESH_CMD="path/to/fieldmesh bench" benches/compare.sh   # measure a given build
#
# Output: target/compare/<UTC time>/{runs.jsonl,table.md,*.log}; the table is also printed.
# Nothing is written under ../shared: the Rust peer builds into target/peer-rust, the JS
# peer is copied to target/peer-js and installed there with `npm ci`.
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
PEERS=${PEERS:-$ROOT/../shared/peers}
REPS=${REPS:-3}
IMPLS=${IMPLS:-"fieldmesh rust js"}
RUN_TIMEOUT=${RUN_TIMEOUT:-420}
OUT=${OUT:-$ROOT/target/compare/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$OUT"
CONFIGS=(
  "--n 2 --m 1000 --window 1"
  "--n 20 --m 1000 --window 1"
  "--n 50 --m 1000 --window 1"
  "--n 50 --m 1000"
  "--n 50 --m 500 --rate 10"
  "--n 500 --m 200"
)
# SCALE=0 leaves out the n500 scale run (run it on its own with fewer reps).
if [ "${SCALE:-1}" = 0 ]; then unset 'CONFIGS[5]'; fi
if [ -n "${ONLY:-}" ]; then CONFIGS=("$ONLY"); fi
has() { [[ " $IMPLS " == *" $1 "* ]]; }

if [ -z "${FIELDMESH_CMD:-}" ]; then
  echo "building fieldmesh (release)" >&2
  cargo build --release --locked --bin fieldmesh 2>&1 | tail -1 >&2 || exit 2
  FIELDMESH_CMD="$ROOT/target/release/fieldmesh bench"
fi
# shellcheck disable=SC2206
FM=($FIELDMESH_CMD)
if has rust; then
  echo "building the rust-libp2p peer into target/peer-rust" >&2
  if ! CARGO_TARGET_DIR=$ROOT/target/peer-rust cargo build --release --locked \
      --manifest-path "$PEERS/rust-gossipsub/Cargo.toml" 2>&1 | tail -1 >&2; then
    echo "rust peer did not build: skipped" >&2; IMPLS=${IMPLS/rust/}
  fi
fi
RUST=$ROOT/target/peer-rust/release/bench
if has js; then
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node/npm not installed: the js-libp2p peer is skipped" >&2; IMPLS=${IMPLS/js/}
  else
    echo "installing the js-libp2p peer into target/peer-js (node $(node --version))" >&2
    mkdir -p "$ROOT/target/peer-js"
    cp "$PEERS/js-gossipsub/"{bench.mjs,package.json,package-lock.json} "$ROOT/target/peer-js/"
    if ! (cd "$ROOT/target/peer-js" && npm ci --no-audit --no-fund >"$OUT/npm.log" 2>&1); then
      echo "npm ci failed (see $OUT/npm.log): the js-libp2p peer is skipped" >&2; IMPLS=${IMPLS/js/}
    fi
  fi
fi

# The machine's CPU ticks from /proc/stat's first line: "steal total". Steal is time
# the hypervisor gave to other guests; on a busy VM it inflates latency and CPU per
# delivery, so each run records its share and the table shows it.
ticks() { awk '/^cpu / {t = 0; for (i = 2; i <= 9; i++) t += $i; print $9, t; exit}' /proc/stat 2>/dev/null; }
steal_between() { # "steal total" before, after -> fraction, or null
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " ");
    d = y[2] - x[2]; if (d > 0) printf "%.4f", (y[1] - x[1]) / d; else printf "null" }'
}

run() { # impl rep config
  local impl=$1 rep=$2 cfg=$3 line
  local -a cmd
  # shellcheck disable=SC2206
  local -a args=($cfg --s 512 --seed 1 --timeout-s $((RUN_TIMEOUT - 20)))
  case $impl in
    fieldmesh) cmd=("${FM[@]}" "${args[@]}") ;;
    rust) cmd=("$RUST" "${args[@]}") ;;
    js)
      # The JS peer has no n500 figure in bench-spec.md (it does not finish in time).
      [[ $cfg == *"--n 500"* ]] && return
      cmd=(node "$ROOT/target/peer-js/bench.mjs" "${args[@]}") ;;
  esac
  echo "rep $rep $impl: $cfg" >&2
  local before steal
  before=$(ticks)
  line=$(timeout "$RUN_TIMEOUT" "${cmd[@]}" 2>>"$OUT/$impl.log" | tail -1)
  steal=$(steal_between "$before" "$(ticks)")
  [ -n "$steal" ] || steal=null
  [ -n "$line" ] || line="{\"error\":\"no output (killed by timeout $RUN_TIMEOUT s?)\"}"
  printf '{"impl":"%s","rep":%s,"args":"%s","steal":%s,"result":%s}\n' "$impl" "$rep" "$cfg" "$steal" "$line" >>"$OUT/runs.jsonl"
}

for rep in $(seq 1 "$REPS"); do
  for cfg in "${CONFIGS[@]}"; do
    for impl in $IMPLS; do run "$impl" "$rep" "$cfg"; done
  done
done

python3 - "$OUT/runs.jsonl" >"$OUT/table.md" <<'PY'
import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
order = []
for r in runs:
    if r["args"] not in order:
        order.append(r["args"])
names = {"fieldmesh": "fieldmesh", "rust": "rust-libp2p", "js": "js-libp2p"}
metrics = [("p50 ms", lambda x: x["latency_ms"]["p50"]), ("p99 ms", lambda x: x["latency_ms"]["p99"]),
           ("msgs/s", lambda x: x["msgs_per_s"]), ("wire B/delivery", lambda x: x["wire_bytes_per_delivery"]),
           ("CPU µs/delivery", lambda x: x["cpu_us_per_delivery"])]
def fmt(v):
    return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
def cell(vals):
    if not vals:
        return "—"
    return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"
med = {}
print("| config | implementation | ok runs | " + " | ".join(m for m, _ in metrics) + " | delivered | CPU steal % |")
print("|---|---|---|" + "---|" * (len(metrics) + 2))
for cfg in order:
    for impl in ["fieldmesh", "rust", "js"]:
        rs = [r["result"] for r in runs if r["args"] == cfg and r["impl"] == impl]
        if not rs:
            continue
        ok = [x for x in rs if x and "error" not in x and x["latency_ms"]["p50"] is not None]
        cells = []
        for m, f in metrics:
            vals = [f(x) for x in ok]
            med[(cfg, impl, m)] = statistics.median(vals) if vals else None
            cells.append(cell(vals))
        errs = [x.get("error", "?") for x in rs if x is None or "error" in x]
        note = f" ({len(errs)} failed: {errs[0][:60]})" if errs else ""
        steal = [r["steal"] * 100 for r in runs if r["args"] == cfg and r["impl"] == impl
                 and r.get("steal") is not None]
        print(f"| `{cfg}` | {names[impl]} | {len(ok)}/{len(rs)}{note} | " + " | ".join(cells)
              + f" | {cell([x['delivered_fraction'] for x in ok])} | {cell(steal)} |")
print()
print("Ratios fieldmesh / peer (medians; below 1 is better for latency, wire and CPU, above 1 for msgs/s):")
print()
print("| config | peer | " + " | ".join(m for m, _ in metrics) + " |")
print("|---|---|" + "---|" * len(metrics))
for cfg in order:
    for peer in ["rust", "js"]:
        row = []
        for m, _ in metrics:
            a, b = med.get((cfg, "fieldmesh", m)), med.get((cfg, peer, m))
            row.append(f"{a / b:.2f}×" if a is not None and b else "—")
        if any(c != "—" for c in row):
            print(f"| `{cfg}` | {names[peer]} | " + " | ".join(row) + " |")
PY
cat "$OUT/table.md"
echo "raw runs: $OUT/runs.jsonl" >&2
