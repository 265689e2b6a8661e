#!/usr/bin/env bash
# Issue 6's GPU measurements in one call on a lent GPU machine (which has torch 2.11 in its
# python3 but no network). Prepare the binary here, then run this there:
#   make build && mkdir -p gpu && cp target/debug/vaelab gpu/ && strip gpu/vaelab
#   (device run, carry ["gpu"]):  scripts/gpu-bench.sh gpu/vaelab
# Writes JSON and logs to $OUT (or ./gpu-results): vaelab's and PyTorch eager's (with a
# DataLoader) train-step img/s per model and batch on the same card, and the quickstart
# sweep trained on CUDA with its report.
set -uo pipefail
bin=$(realpath "${1:?usage: gpu-bench.sh PATH/TO/vaelab}")
out=$(realpath -m "${OUT:-gpu-results}")
mkdir -p "$out"
py=$(command -v python3)
torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
cd "$(dirname "$0")/.."
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
"$bin" info > "$out/info.txt" 2>&1
for model in residual plain; do
  for batch in 64 256 1024; do
    "$bin" bench --device cuda --model "$model" --image-size 64 --batch-size "$batch" \
      --warmup 5 --steps 30 --json > "$out/vaelab-$model-$batch.json" 2>> "$out/errors.log"
    "$py" benches/pytorch_eager.py --device cuda --model "$model" --image-size 64 \
      --batch-size "$batch" --warmup 5 --steps 30 --dataloader --images 16384 \
      > "$out/pytorch-$model-$batch.json" 2>> "$out/errors.log"
  done
done
/usr/bin/time -v "$bin" --runs-dir "$out/runs" --report-dir "$out/report" run \
  experiments/quickstart.yaml --device cuda > "$out/quickstart.log" 2>&1
"$bin" --runs-dir "$out/runs" --report-dir "$out/report" report experiments/quickstart.yaml \
  >> "$out/quickstart.log" 2>&1
cat "$out"/*.json
