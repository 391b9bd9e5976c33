#!/bin/bash
# Speculative decoding on fg-target (+ fg-draft): for each task and proposer, `fastgen bench
# --spec` decodes the prompt greedily REPS times plainly and REPS times speculatively
# (alternated, so machine drift hits both) and prints the median speedup with its range, the
# acceptance rate and the tokens per target forward; it fails if an output differs from plain.
# Usage: bench/spec/run_bench.sh [FASTGEN_BINARY] [N_TOKENS] [THREADS] [EXTRA FLAGS...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${1:-$root/build/fastgen}
n=${2:-400}
threads=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
extra=("$@")
reps=${REPS:-5}
models=$root/../shared/models
# Each proposer alone (--no-lookup-first) and as run by default, behind prompt lookup.
modes=(
  "--spec draft --draft-model $models/fg-draft --no-lookup-first"
  "--spec draft --draft-model $models/fg-draft --draft-tree 3 --no-lookup-first"
  "--spec draft --draft-model $models/fg-draft"
  "--spec lookup"
  "--spec lookup --lookup-branches 3"
  "--spec jacobi --no-lookup-first"
  "--spec jacobi"
  "--spec layerskip --skip-layers auto --no-lookup-first"
  "--spec layerskip --skip-layers 6,7 --no-lookup-first"
  "--spec layerskip --skip-layers 6,7"
)
for task in code edit; do
  for mode in "${modes[@]}"; do
    # A layer-skip search that finds nothing paying makes fastgen bench stop with that message.
    line=$("$bin" bench -m "$models/fg-target" -f "$here/${task}_prompt.txt" -n "$n" -r "$reps" -t "$threads" \
           $mode "${extra[@]}" 2>&1 | grep -E '^speedup|no layer subset pays' | sed 's/^fastgen: error: //' || true)
    printf '%-5s %-50s %s\n' "$task" "${mode/$models\//}" "$line"
  done
done
