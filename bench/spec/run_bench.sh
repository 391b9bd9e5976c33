#!/bin/bash
# Speculative decoding on fg-target (+ fg-draft): acceptance, tokens per target forward and the
# wall-clock speedup against plain greedy decoding measured in the same process (--spec-compare),
# median of REPS runs (timings on a shared 2-core machine are noisy).
# Usage: bench/spec/run_bench.sh [FASTGEN_BINARY] [N_TOKENS] [THREADS] [EXTRA FLAGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/fastgen}
n=${2:-400}
threads=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
extra=("$@")
reps=${REPS:-3}
models=$root/../shared/models
modes=(
  "--spec draft --draft-model $models/fg-draft"
  "--spec draft --draft-model $models/fg-draft --draft-tree 3"
  "--spec lookup"
  "--spec lookup --lookup-branches 3"
  "--spec jacobi"
  "--spec layerskip --skip-layers auto"
)
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for task in code edit; do
  for mode in "${modes[@]}"; do
    speedups=()
    for ((r = 0; r < reps; r++)); do
      err=$("$bin" run -m "$models/fg-target" -f "$here/${task}_prompt.txt" -n "$n" --temp 0 --ignore-eos \
            -t "$threads" $mode --spec-compare "${extra[@]}" 2>&1 >/dev/null)
      speedups+=("$(grep -o 'speedup: [0-9.]*x' <<<"$err" | grep -o '[0-9.]*' | head -1)")
    done
    acc=$(grep -o 'acceptance [0-9.]*' <<<"$err" | cut -d' ' -f2)
    tpf=$(grep -o '[0-9.]* tokens per target forward' <<<"$err" | cut -d' ' -f1)
    same=$(grep -o 'output [a-z]*' <<<"$err" | cut -d' ' -f2)
    spd=$(printf '%s\n' "${speedups[@]}" | median)
    printf '%-5s %-50s acceptance %-6s tokens/forward %-5s speedup %-5sx (runs: %s) output %s\n' \
      "$task" "${mode/$models\//}" "$acc" "$tpf" "$spd" "${speedups[*]}" "$same"
  done
done
