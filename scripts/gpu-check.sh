#!/usr/bin/env bash
# One-call GPU check: everything vaelab promises about CUDA, measured on a machine with one
# GPU and PyTorch's torch 2.11 wheel (its python3 has torch), in under 8 minutes.
#
#   make gpu-binary                              # here: gpu/vaelab and gpu/vaelab-torch
#   scripts/gpu-check.sh gpu/vaelab              # on the GPU machine; results in $OUT
#   scripts/gpu-check.sh target/debug/vaelab --dry-run   # the CPU-safe parts, on the CPU
#
# On the GPU machine it installs nothing and sources nothing: the binary finds that
# machine's libtorch (torch/lib of its python3) through LD_LIBRARY_PATH, and the script
# stops within seconds, saying what is missing, when torch 2.11 or CUDA is not there.
#
# Checks and figures, each one row of the summary:
#   info            `vaelab info` runs and sees the device
#   init-weights    the initial weights built for CUDA equal the CPU's, bit for bit
#   first-step      a tiny run's first-step loss on CUDA is the CPU's to 1e-3 relative
#   exact-resume    with train.deterministic, a run SIGKILLed after its first checkpoint and
#                   resumed ends with the same weights as an uninterrupted one, bit for bit
#   bench-*         vaelab's train step, residual 64x64, fp32/bf16, batch 256/1024, NCHW/NHWC
#   phases-*        where a step's time goes (forward and loss / backward / Adam, ms), fp32
#                   at the smaller batch, vaelab and PyTorch eager
#   epoch-162770    one bf16 epoch over 162,770 uint8 images held on the device
#   pytorch-*       PyTorch eager on the same card (cudnn.benchmark on), random tensors on
#                   the device and a DataLoader with persistent workers
#   jobs-1, jobs-4  a sweep on one GPU with one worker and with four (runs per minute)
# Writes into $OUT (default ./gpu-check) as it goes, so a timeout or a kill keeps every
# figure measured so far: rows.jsonl (one line per check, appended as each ends),
# summary.json and summary.md (rewritten after every row), log.txt (everything the steps
# print). Every step runs under its own `timeout`; a failed row carries the log's last
# line. On the CPU (--dry-run) a comparison that needs a GPU is a row "not run: no GPU",
# neither passed nor failed. Needs bash, coreutils' timeout, the binary and the wheel's
# python (for PyTorch and to write the JSON).
set -uo pipefail
bin=$(realpath "${1:?usage: gpu-check.sh PATH/TO/vaelab [--dry-run]}")
dry=0
[[ "${2:-}" == "--dry-run" ]] && dry=1
here=$(cd "$(dirname "$0")/.." && pwd)
out=$(realpath -m "${OUT:-gpu-check}")
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$out/log.txt"
rows="$out/rows.jsonl"
: > "$rows"
: > "$log"
py="${VAELAB_TORCH_PYTHON:-python3}"
# Seconds each kind of step may take before it is stopped (the GPU machine's call has 10
# minutes in all; these add up to well under 8 on an H200, see the dry run's step count).
STEP_LIMIT=${STEP_LIMIT:-120}
fail_fast() { echo "gpu-check: $*" | tee -a "$log" >&2; exit 2; }
if ((dry)); then
  device=cpu
else
  device=cuda
  version=$(timeout 60 "$py" -c 'import torch; print(torch.__version__)' 2>> "$log") ||
    fail_fast "$py cannot import torch (needs PyTorch 2.11 there; set VAELAB_TORCH_PYTHON to a python that has it)"
  [[ $version == 2.11.* ]] || fail_fast "$py has torch $version, the binary needs 2.11"
  # A binary built on another machine finds libtorch through the wheel here.
  torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  # vaelab hands training to vaelab-torch beside it, the binary that loads libtorch.
  torch_bin="$(dirname "$bin")/vaelab-torch"
  [[ -x $torch_bin ]] || fail_fast "$torch_bin is missing: copy it beside $bin (make gpu-binary makes both)"
  missing=$(ldd "$torch_bin" 2>&1 | grep 'not found')
  [[ -z $missing ]] || fail_fast "$torch_bin does not find its libraries under $torch_lib: $missing"
fi
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
last_error() { grep -v '^\s*$' "$log" | tail -n 1 | cut -c1-200; }
# Rewrites summary.json and summary.md from the rows so far.
summarize() {
  "$py" - "$rows" "$out" "$dry" <<'PY'
import json, os, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
out, dry = sys.argv[2], sys.argv[3] == "1"
def replace(name, text):  # whole or not at all, should the call be killed here
    with open(f"{out}/.{name}.tmp", "w") as f:
        f.write(text)
    os.replace(f"{out}/.{name}.tmp", f"{out}/{name}")
replace("summary.json", json.dumps({"dry_run": dry, "checks": rows}, indent=2))
lines = ["| check | result | value | unit | note |", "|---|---|---|---|---|"]
word = {True: "ok", False: "FAILED", None: "not run"}
for r in rows:
    lines.append(f"| {r['check']} | {word[r['ok']]} | {r['value']} | {r['unit']} | {r['note']} |")
passed = sum(r["ok"] is True for r in rows)
failed = sum(r["ok"] is False for r in rows)
skipped = sum(r["ok"] is None for r in rows)
lines.append("")
lines.append(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
replace("summary.md", "\n".join(lines) + "\n")
PY
}
# record NAME OK(1|0|skip) VALUE UNIT NOTE: one row, written at once, summary updated.
record() {
  local ok=false note=${5//\"/\'}
  [[ $2 == 1 ]] && ok=true
  [[ $2 == skip ]] && ok=null
  [[ $2 == 0 && -z $note ]] && note="failed: $(last_error)"
  note=${note//\\//}
  printf '{"check":"%s","ok":%s,"value":"%s","unit":"%s","note":"%s"}\n' \
    "$1" "$ok" "$3" "$4" "${note//\"/\'}" >> "$rows"
  summarize
}
# A step: the binary under its own time limit, its output to the log.
vaelab() { timeout "$STEP_LIMIT" "$bin" "$@" >> "$log" 2>&1; }
# throughput NAME COMMAND...: runs a benchmark that prints JSON and records its img/s.
throughput() {
  local name=$1
  shift
  if timeout "$STEP_LIMIT" "$@" > "$work/$name.json" 2>> "$log"; then
    record "$name" 1 "$(json_field "$work/$name.json" '["median_images_per_second"]')" img/s ""
  else
    record "$name" 0 "" img/s ""
  fi
}
json_field() { "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$@"; }

# Sizes: real on a GPU, tiny for the dry run on two CPU cores.
if ((dry)); then
  size=16; channels="[8, 16]"; latent=8; images=64; batches=(8); precisions=(fp32); steps=(1 2)
  epoch_images=64; resume_epochs=6; sweep_images=64; sweep_epochs=1; jobs=2; py_images=64
else
  size=32; channels="[32, 64, 128, 256]"; latent=32; images=2048; batches=(256 1024)
  precisions=(fp32 bf16); epoch_images=162770; resume_epochs=30; sweep_images=2048
  sweep_epochs=3; jobs=4; py_images=32768; steps=(3 10)
fi
spec() { # NAME EPOCHS IMAGES BATCH EXTRA-TRAIN-LINES
  printf 'name: %s\nseed: 1\ndata: {source: synthetic, image_size: %s, train_images: %s, val_images: 16}\nmodel: {latent_dim: %s, channels: %s}\ntrain:\n  epochs: %s\n  batch_size: %s\n%s' \
    "$1" "$size" "$3" "$latent" "$channels" "$2" "$4" "${5:-}"
}

echo "== vaelab gpu-check ($([[ $dry == 1 ]] && echo dry run on the CPU || echo CUDA))" | tee -a "$log"
# ok only when vaelab itself sees CUDA (on the CPU: not run).
if timeout 60 "$bin" info --json > "$work/info.json" 2>> "$log"; then
  cuda=$(json_field "$work/info.json" '["cuda_available"]')
  gpus=$(json_field "$work/info.json" '["cuda_devices"]' | tr -d "[]'")
  if ((dry)); then record info skip "$cuda" cuda "not run: no GPU"
  elif [[ $cuda == True ]]; then record info 1 "$cuda" cuda "$gpus"
  else record info 0 "$cuda" cuda "vaelab info --json: CUDA unavailable ($(json_field "$work/info.json" '["libtorch_version"]'))"; fi
else
  record info 0 "" cuda ""
fi

# Initial weights: the same seed builds the same bits on the CPU and on the device.
digest() { timeout "$STEP_LIMIT" "$bin" bench --device "$1" --model residual --image-size $((size * 2)) --latent-dim "$latent" \
  --batch-size 2 --warmup 0 --steps 1 --json 2> /dev/null | "$py" -c 'import json,sys; print(json.load(sys.stdin)["init_digest"])'; }
cpu_digest=$(digest cpu)
if ((dry)); then
  record init-weights skip "${cpu_digest:0:16}" sha256 "not run: no GPU (cpu ${cpu_digest:0:16})"
else
  dev_digest=$(digest "$device")
  [[ -n $cpu_digest && $cpu_digest == "$dev_digest" ]] && ok=1 || ok=0
  record init-weights "$ok" "${dev_digest:0:16}" sha256 "cpu ${cpu_digest:0:16}"
fi

# First-step loss: one step per epoch, so epoch 1's train loss is the first step's; fp32
# convolutions as fp32 (TF32 off), so the comparison is of arithmetic, not precision.
spec first 1 64 64 "  tf32: false
" > "$work/first.yaml"
first_loss() {
  vaelab --runs-dir "$work/first-$1" run "$work/first.yaml" --device "$1"
  "$bin" --runs-dir "$work/first-$1" status --json 2> /dev/null |
    "$py" -c 'import json,sys; print(json.load(sys.stdin)[0]["last"]["train_loss"])'
}
cpu_loss=$(first_loss cpu)
if ((dry)); then
  record first-step skip "" relative "not run: no GPU (cpu $cpu_loss)"
else
  dev_loss=$(first_loss "$device")
  rel=$("$py" -c "a,b=$cpu_loss,$dev_loss; print(abs(a-b)/abs(a))" 2> /dev/null || echo nan)
  ok=$("$py" -c "print(1 if $rel <= 1e-3 else 0)" 2> /dev/null || echo 0)
  record first-step "$ok" "$rel" "relative" "cpu $cpu_loss, $device $dev_loss, tf32 off"
fi

# Exact resume with train.deterministic: SIGKILL after the first checkpoint, then resume.
spec resume "$resume_epochs" "$images" 64 "  deterministic: true
" > "$work/resume.yaml"
vaelab --runs-dir "$work/straight" run "$work/resume.yaml" --device "$device"
# Not under `timeout` (its kill would miss the trainer): the loop below has the deadline.
"$bin" --runs-dir "$work/killed" run "$work/resume.yaml" --device "$device" >> "$log" 2>&1 &
victim=$!
note="killed after epoch 1"
deadline=$(( $(date +%s) + STEP_LIMIT ))
until compgen -G "$work/killed/*/checkpoints/epoch-*" > /dev/null; do
  if ! kill -0 "$victim" 2> /dev/null; then note="finished before the kill: raise the epochs"; break; fi
  if (( $(date +%s) > deadline )); then note="no checkpoint within ${STEP_LIMIT} s"; break; fi
  sleep 0.05
done
kill -9 "$victim" 2> /dev/null; wait "$victim" 2> /dev/null
vaelab --runs-dir "$work/killed" run "$work/resume.yaml" --device "$device"
last=$(printf 'epoch-%04d' "$resume_epochs")
a=$(compgen -G "$work/straight/*/checkpoints/$last/model.safetensors")
b=$(compgen -G "$work/killed/*/checkpoints/$last/model.safetensors")
[[ -n $a && -n $b && $note == "killed after epoch 1" ]] && cmp -s "$a" "$b" && ok=1 || ok=0
record exact-resume "$ok" "$ok" "bit-identical" "$note"

# vaelab's train step and a full epoch on device-resident data.
for batch in "${batches[@]}"; do
  for precision in "${precisions[@]}"; do
    for layout in nchw nhwc; do
      name="bench-$precision-$batch-$layout"
      extra=(); [[ $layout == nhwc ]] && extra=(--channels-last)
      throughput "$name" "$bin" bench --device "$device" --model residual \
        --image-size $((size * 2)) --batch-size "$batch" --precision "$precision" \
        --warmup "${steps[0]}" --steps "${steps[1]}" --json "${extra[@]}"
    done
  done
done
# Where a step's time goes, vaelab and PyTorch eager alike (each waits for the device
# between phases). PHASES NAME COMMAND...: the command prints JSON with "phases".
phases() {
  local name=$1
  shift
  if timeout "$STEP_LIMIT" "$@" > "$work/$name.json" 2>> "$log"; then
    record "$name" 1 "$("$py" -c 'import json,sys; p=json.load(open(sys.argv[1]))["phases"]; print("%.2f/%.2f/%.2f" % tuple(1e3 * p[k] for k in ("forward", "backward", "update")))' "$work/$name.json")" \
      "ms fwd/bwd/update" "fp32, batch ${batches[0]}"
  else
    record "$name" 0 "" "ms fwd/bwd/update" ""
  fi
}
phases phases-vaelab "$bin" bench --device "$device" --model residual --image-size $((size * 2)) \
  --batch-size "${batches[0]}" --warmup "${steps[0]}" --steps "${steps[1]}" --phases --json
phases phases-pytorch "$py" "$here/benches/pytorch_eager.py" --device "$device" --model residual \
  --image-size $((size * 2)) --batch-size "${batches[0]}" --warmup "${steps[0]}" \
  --steps "${steps[1]}" --phases

epoch_precision=${precisions[-1]}
if timeout "$STEP_LIMIT" "$bin" bench --device "$device" --model residual --image-size $((size * 2)) \
  --batch-size "${batches[-1]}" --precision "$epoch_precision" --warmup 1 --steps 1 \
  --epoch-images "$epoch_images" --json > "$work/epoch.json" 2>> "$log"; then
  record "epoch-$epoch_images" 1 "$(json_field "$work/epoch.json" '["epoch"]["seconds"]')" s \
    "$epoch_precision, batch ${batches[-1]}"
else
  record "epoch-$epoch_images" 0 "" s ""
fi

# PyTorch eager on the same device, the same model and loss.
for batch in "${batches[@]}"; do
  for precision in "${precisions[@]}"; do
    for feed in tensors dataloader; do
      name="pytorch-$precision-$batch-$feed"
      extra=(); [[ $feed == dataloader ]] && extra=(--dataloader --images "$py_images")
      throughput "$name" "$py" "$here/benches/pytorch_eager.py" --device "$device" \
        --model residual --image-size $((size * 2)) --batch-size "$batch" \
        --precision "$precision" --warmup "${steps[0]}" --steps "${steps[1]}" "${extra[@]}"
    done
  done
done

# Sweep throughput on one device: one worker against several.
printf 'name: sweep\nseeds: [0, 1, 2, 3]\ndata: {source: synthetic, image_size: %s, train_images: %s, val_images: 16}\nmodel: {latent_dim: %s, channels: %s}\ntrain: {epochs: %s, batch_size: 64}\nvariants:\n  - {name: residual, model.residual: true}\n  - {name: plain, model.residual: false}\n' \
  "$size" "$sweep_images" "$latent" "$channels" "$sweep_epochs" > "$work/sweep.yaml"
for n in 1 "$jobs"; do
  started=$(now)
  if vaelab --runs-dir "$work/sweep-$n" run "$work/sweep.yaml" --jobs "$n" --devices "$device"; then
    seconds=$(since "$started")
    record "jobs-$n" 1 "$("$py" -c "print(round(8 * 60 / $seconds, 2))")" runs/min "8 runs in $seconds s"
  else
    record "jobs-$n" 0 "" runs/min ""
  fi
done

summarize
cat "$out/summary.md"
# Exit status: whether any check failed (not-run rows are neither).
! grep -q '"ok":false' "$rows"
