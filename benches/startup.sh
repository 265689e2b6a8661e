#!/usr/bin/env bash
# Start-up time of the commands that touch no tensor: the median wall time of N calls of
# `vaelab --help`, `vaelab plan experiments/quickstart.yaml` and `vaelab status` (an empty
# store), and the peak resident memory of `--help`, with what the binary loads; then
# `vaelab-torch --help`, the binary that loads libtorch, for comparison.
#   benches/startup.sh [PATH/TO/vaelab] [N]       (defaults: target/debug/vaelab, 21)
set -euo pipefail
bin=$(realpath "${1:-target/debug/vaelab}")
calls=${2:-21}
experiments=$(realpath experiments)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
ln -s "$experiments" experiments
median() {
  local times=()
  for _ in $(seq "$calls"); do
    local start end
    start=$(date +%s%N)
    "$bin" "$@" > /dev/null 2>&1
    end=$(date +%s%N)
    times+=($(( (end - start) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{ a[NR] = $1 } END { printf "%.1f ms", a[int((NR + 1) / 2)] / 1000 }'
}
echo "binary: $bin ($calls calls each)"
echo "vaelab --help                            $(median --help)"
echo "vaelab plan experiments/quickstart.yaml  $(median plan experiments/quickstart.yaml)"
echo "vaelab status                            $(median status)"
peak=$(/usr/bin/time -f %M "$bin" --help 2>&1 > /dev/null | tail -n 1)
echo "peak resident memory of --help           $((peak / 1024)) MB"
echo "libtorch libraries it loads              $(ldd "$bin" | grep -c -E 'libtorch|libc10' || true)"
# For comparison: the binary beside it that links libtorch, as every command did before
# the split.
torch="$(dirname "$bin")/vaelab-torch"
if [[ -x $torch ]]; then
  bin=$torch
  echo "vaelab-torch --help (loads libtorch)     $(median --help)"
fi
