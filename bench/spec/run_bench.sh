#!/bin/bash
# Speculative decoding on fg-target (+ fg-draft): acceptance, tokens per target forward and the
# wall-clock speedup against plain greedy decoding measured in the same process (--spec-compare).
# Usage: bench/spec/run_bench.sh [FASTGEN_BINARY] [N_TOKENS] [THREADS]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/fastgen}
n=${2:-200}
threads=${3:-2}
models=$root/../shared/models
modes=(
  "--spec draft --draft-model $models/fg-draft"
  "--spec draft --draft-model $models/fg-draft --draft-tree 3"
  "--spec draft --draft-model $models/fg-draft --draft-min-conf 0.3"
  "--spec lookup"
  "--spec lookup --lookup-branches 3"
  "--spec jacobi"
  "--spec layerskip --skip-layers auto"
)
for task in code edit; do
  for mode in "${modes[@]}"; do
    err=$("$bin" run -m "$models/fg-target" -f "$here/${task}_prompt.txt" -n "$n" --temp 0 --ignore-eos \
          -t "$threads" $mode --spec-compare 2>&1 >/dev/null)
    acc=$(grep -o 'acceptance [0-9.]*' <<<"$err" | cut -d' ' -f2)
    tpf=$(grep -o '[0-9.]* tokens per target forward' <<<"$err" | cut -d' ' -f1)
    spd=$(grep -o 'speedup: [0-9.]*x' <<<"$err" | cut -d' ' -f2)
    same=$(grep -o 'output [a-z]*' <<<"$err" | cut -d' ' -f2)
    printf '%-5s %-62s acceptance %-6s tokens/forward %-5s speedup %-6s output %s\n' \
      "$task" "${mode/$models\//}" "$acc" "$tpf" "$spd" "$same"
  done
done
