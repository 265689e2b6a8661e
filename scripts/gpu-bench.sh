#!/usr/bin/env bash
# Issue 6's GPU measurements in one call on a lent GPU machine (which has torch 2.11 in its
# python3 but no network). Prepare the binary here, then run this there:
#   make build && mkdir -p gpu && cp target/debug/vaelab gpu/ && strip gpu/vaelab
#   (device run, carry ["gpu"], timeout 560):  scripts/gpu-bench.sh gpu/vaelab
# Writes JSON and logs to $OUT (or ./gpu-results), then prints one summary table:
# - vaelab's train step, residual 64x64, fp32 and bf16, NCHW and channels-last, batch 256
#   and 1024 (cuDNN benchmark on, as training has it; once off for comparison);
# - one full CelebA-sized epoch (162,770 uint8 images held on the card) in bf16;
# - PyTorch eager with a DataLoader on the same card, fp32 and bf16 autocast;
# - the quickstart trained on CUDA, then the same sweep in bf16 (experiments/precision.yaml,
#   whose fp32 runs are the quickstart's), with the precision report.
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
started=$SECONDS
stamp() { echo "[$((SECONDS - started)) s] $*" | tee -a "$out/timeline.txt"; }

vaelab_bench() { # NAME ARGS...
  local name=$1
  shift
  stamp "vaelab $name"
  "$bin" bench --device cuda --model residual --image-size 64 --warmup 5 --steps 30 --json "$@" \
    > "$out/vaelab-$name.json" 2>> "$out/errors.log"
}
for batch in 256 1024; do
  for precision in fp32 bf16; do
    epoch=()
    [[ $batch == 1024 && $precision == bf16 ]] && epoch=(--epoch-images 162770)
    vaelab_bench "$precision-$batch" --batch-size "$batch" --precision "$precision" "${epoch[@]}"
    vaelab_bench "$precision-$batch-cl" --batch-size "$batch" --precision "$precision" \
      --channels-last "${epoch[@]}"
  done
done
vaelab_bench "bf16-1024-nobench" --batch-size 1024 --precision bf16 --no-cudnn-benchmark

for batch in 256 1024; do
  for precision in fp32 bf16; do
    stamp "pytorch $precision-$batch"
    "$py" benches/pytorch_eager.py --device cuda --model residual --image-size 64 \
      --batch-size "$batch" --precision "$precision" --warmup 5 --steps 30 --dataloader \
      --images 32768 > "$out/pytorch-$precision-$batch.json" 2>> "$out/errors.log"
  done
done

stamp "quickstart (fp32) on CUDA"
/usr/bin/time -v "$bin" --runs-dir "$out/runs" --report-dir "$out/report" run \
  experiments/quickstart.yaml --device cuda > "$out/quickstart.log" 2>&1
stamp "precision sweep (bf16 runs) on CUDA"
/usr/bin/time -v "$bin" --runs-dir "$out/runs" --report-dir "$out/report" run \
  experiments/precision.yaml --device cuda > "$out/precision.log" 2>&1
"$bin" --runs-dir "$out/runs" --report-dir "$out/report" report experiments/precision.yaml \
  >> "$out/precision.log" 2>&1
"$bin" --runs-dir "$out/runs" status > "$out/status.txt" 2>&1
stamp "done"

"$py" - "$out" <<'EOF'
import glob, json, os, sys
out = sys.argv[1]
print("| run | precision | batch | layout | cuDNN bench | img/s | epoch s |")
print("|---|---|---|---|---|---|---|")
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    try:
        r = json.load(open(path))
    except Exception as e:
        print(f"| {os.path.basename(path)} | unreadable: {e} |")
        continue
    epoch = r.get("epoch") or {}
    print("| {} | {} | {} | {} | {} | {:.0f} | {} |".format(
        os.path.basename(path)[:-5], r.get("precision"), r.get("batch_size"),
        "NHWC" if r.get("channels_last") else "NCHW", r.get("cudnn_benchmark", "-"),
        r["median_images_per_second"], f"{epoch['seconds']:.2f}" if epoch else ""))
EOF
cat "$out/status.txt"
grep -h "answer\|bits/dim\|val loss" "$out/report/precision/report.md" 2>/dev/null | head -20
cat "$out/errors.log" 2>/dev/null | tail -20
