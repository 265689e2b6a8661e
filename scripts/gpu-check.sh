#!/usr/bin/env bash
# One-call GPU check: everything vaelab promises about CUDA, measured on a machine with one
# GPU and PyTorch's torch 2.11 wheel (its python3 has torch), within one deadline.
#
#   make gpu-binary                                  # here: gpu/vaelab-gpu.tar.xz
#   tar -xJf gpu/vaelab-gpu.tar.xz -C gpu && scripts/gpu-check.sh gpu/vaelab   # there
#   scripts/gpu-check.sh target/debug/vaelab --dry-run   # the CPU-safe parts, on the CPU
#
# On the GPU machine it installs nothing and sources nothing: the binary finds that
# machine's libtorch (torch/lib of its python3) through LD_LIBRARY_PATH, and the script
# stops within seconds, saying what is missing, when torch 2.11 or CUDA is not there.
#
# Order: correctness first, then the headline figures, then the rest, so a call cut short
# still has what matters most. Each row of the summary is one step:
#   info            `vaelab info` runs and sees the device
#   init-weights    the initial weights built for CUDA equal the CPU's, bit for bit
#   first-step      a tiny run's first-step loss on CUDA is the CPU's to 1e-3 relative
#   exact-resume    with train.deterministic, a run SIGKILLed after its first checkpoint and
#                   resumed ends with the same weights as an uninterrupted one, bit for bit
#   bench-P-B-L     vaelab's train step, residual 64x64: P is fp32 (TF32 off), tf32 (fp32
#                   with TF32 on) or bf16; B the batch; L nchw or nhwc (channels-last)
#   pytorch-...     PyTorch eager on the same card and model (cudnn.benchmark on), on
#                   tensors on the device or through a DataLoader with persistent workers
#   epoch-N         one epoch over N uint8 images held on the device (bench), its last,
#                   smaller batch's shape warmed before the timing
#   train-epoch-L   a real `vaelab run` epoch in each memory layout (train.memory_format)
#   phases-*        where a step's time goes (forward and loss / backward / Adam, ms)
#   jobs-1, jobs-N  a sweep on one GPU with one worker and with N (runs per minute)
# Writes into $OUT (default ./gpu-check) as it goes, so a timeout or a kill keeps every
# figure measured so far: rows.jsonl (one line per check, appended as each ends),
# summary.json and summary.md (rewritten after every row), log.txt (everything the steps
# print). The whole check has one deadline, GPU_CHECK_DEADLINE seconds (480 by default):
# a step not started by then is a row "not run: deadline", so the summary always lists
# every step. Each step runs under `timeout -k 10` with at most STEP_LIMIT seconds (120)
# and never past the deadline; a failed row carries its step's last log line. On the CPU
# (--dry-run) a comparison that needs a GPU is a row "not run: no GPU". Needs bash,
# coreutils' timeout, the binary and a python with torch (for PyTorch and the JSON).
set -uo pipefail
started_at=$(date +%s)
DEADLINE=${GPU_CHECK_DEADLINE:-480}
STEP_LIMIT=${STEP_LIMIT:-120}
target=${1:?usage: gpu-check.sh PATH/TO/vaelab [--dry-run]}
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
bin=$(realpath "$target")
fail_fast() { echo "gpu-check: $*" | tee -a "$log" >&2; exit 2; }
[[ -x $bin ]] || fail_fast "$target is not an executable (make gpu-binary, then unpack gpu/vaelab-gpu.tar.xz)"
torch_bin="$(dirname "$bin")/vaelab-torch"
[[ -x $torch_bin ]] || fail_fast "$torch_bin is missing: it ships beside $bin (make gpu-binary packs both)"

# What the binaries need of this machine, before anything runs.
describe_binary() {
  local glibc glibcxx runpath
  glibc=$(grep -ao 'GLIBC_[0-9][0-9.]*' "$1" | sort -uV | tail -n 1)
  glibcxx=$(grep -ao 'GLIBCXX_[0-9][0-9.]*' "$1" | sort -uV | tail -n 1)
  if command -v readelf > /dev/null; then
    runpath=$(readelf -d "$1" 2> /dev/null | sed -n 's/.*(R[UN]*PATH).*\[\(.*\)\]/\1/p' | head -n 1)
  else
    runpath="(readelf not found)"
  fi
  echo "$(basename "$1"): needs ${glibc:-no GLIBC}, ${glibcxx:-no GLIBCXX}; RUNPATH ${runpath:-none}"
}
{
  describe_binary "$bin"
  describe_binary "$torch_bin"
  echo "this machine: $(ldd --version 2> /dev/null | head -n 1)"
} | tee -a "$log"

if ((dry)); then
  device=cpu
else
  device=cuda
  version=$(timeout -k 5 60 "$py" -c 'import torch; print(torch.__version__)' 2>> "$log") ||
    fail_fast "$py cannot import torch (needs PyTorch 2.11 there; set VAELAB_TORCH_PYTHON to a python that has it)"
  [[ $version == 2.11.* ]] || fail_fast "$py has torch $version, the binary needs 2.11"
  # A binary built on another machine finds libtorch through the wheel here.
  torch_lib=$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')
  export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  missing=$(ldd "$torch_bin" 2>&1 | grep 'not found')
  [[ -z $missing ]] || fail_fast "$torch_bin does not find its libraries under $torch_lib: $missing"
fi
# Deterministic cuBLAS needs its workspace in the environment before the process starts.
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
seconds_left() { echo $((started_at + DEADLINE - $(date +%s))); }
# Seconds the next command may take: STEP_LIMIT, never past the deadline (at least 1).
limit() {
  local left
  left=$(seconds_left)
  ((left < STEP_LIMIT)) && echo $((left > 1 ? left : 1)) || echo "$STEP_LIMIT"
}
# Every command of a step: its own time limit, killed 10 s after the polite signal.
bounded() { timeout -k 10 "$(limit)" "$@"; }
step_log=$work/step.log
last_error() { grep -v '^\s*$' "$step_log" 2> /dev/null | tail -n 1 | cut -c1-200; }

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
  note=${note//\"/\'}
  printf '{"check":"%s","ok":%s,"value":"%s","unit":"%s","note":"%s"}\n' \
    "$1" "$ok" "$3" "$4" "$note" >> "$rows"
  summarize
}
# step NAME FUNCTION ARGS...: runs one step, or records it "not run: deadline" when the
# deadline has passed. A step records its own row; one that records none failed.
step() {
  local name=$1 before status
  shift
  if (($(seconds_left) <= 0)); then
    record "$name" skip "" "" "not run: deadline (${DEADLINE} s)"
    return
  fi
  before=$(wc -l < "$rows")
  : > "$step_log"
  echo "== $name" >> "$log"
  "$@" 2>&1 | tee -a "$log" > "$step_log"
  status=${PIPESTATUS[0]}
  (($(wc -l < "$rows") > before)) && return
  # Stopped by its time limit because the deadline came: cut off, not failed.
  if ((status == 124 || status == 137)) && (($(seconds_left) <= 0)); then
    record "$name" skip "" "" "not run: cut off at the deadline (${DEADLINE} s)"
  else
    record "$name" 0 "" "" ""
  fi
}
json_field() { "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$@"; }

# Sizes: real on a GPU, tiny for the dry run on two CPU cores.
if ((dry)); then
  size=16; channels="[8, 16]"; latent=8; images=64; small=8; large=16; steps=(1 2)
  epoch_images=72; resume_epochs=6; sweep_images=64; sweep_epochs=1; jobs=2; py_images=64
  train_epoch_images=64
else
  size=32; channels="[32, 64, 128, 256]"; latent=32; images=2048; small=256; large=1024
  epoch_images=162770; resume_epochs=6; sweep_images=2048; sweep_epochs=3; jobs=4
  py_images=32768; steps=(3 10); train_epoch_images=16384
fi
spec() { # NAME EPOCHS IMAGES BATCH EXTRA-TRAIN-LINES [IMAGE-SIZE]
  printf 'name: %s\nseed: 1\ndata: {source: synthetic, image_size: %s, train_images: %s, val_images: 16}\nmodel: {latent_dim: %s, channels: %s}\ntrain:\n  epochs: %s\n  batch_size: %s\n%s' \
    "$1" "${6:-$size}" "$3" "$latent" "$channels" "$2" "$4" "${5:-}"
}
# Arguments of `vaelab bench` and `pytorch_eager.py` for one row's precision and layout.
precision_args() { # PRECISION(fp32|tf32|bf16) LAYOUT(nchw|nhwc)
  case $1 in
    fp32) echo "--precision fp32 --tf32 off" ;;
    tf32) echo "--precision fp32 --tf32 on" ;;
    bf16) echo "--precision bf16 --tf32 off" ;;
  esac
  [[ $2 == nhwc ]] && echo "--channels-last"
}

# --- correctness ---------------------------------------------------------------------
check_info() {
  if bounded "$bin" info --json > "$work/info.json"; then
    local cuda gpus
    cuda=$(json_field "$work/info.json" '["cuda_available"]')
    gpus=$(json_field "$work/info.json" '["cuda_devices"]' | tr -d "[]'")
    if ((dry)); then record info skip "$cuda" cuda "not run: no GPU"
    elif [[ $cuda == True ]]; then record info 1 "$cuda" cuda "$gpus"
    else record info 0 "$cuda" cuda "vaelab info --json: CUDA unavailable ($(json_field "$work/info.json" '["libtorch_version"]'))"; fi
  fi
}

# Initial weights: the same seed builds the same bits on the CPU and on the device.
digest() {
  bounded "$bin" bench --device "$1" --model residual --image-size $((size * 2)) \
    --latent-dim "$latent" --batch-size 2 --warmup 0 --steps 1 --json > "$work/digest-$1.json" &&
    json_field "$work/digest-$1.json" '["init_digest"]'
}
check_init_weights() {
  local cpu_digest dev_digest ok
  cpu_digest=$(digest cpu) || return
  if ((dry)); then
    record init-weights skip "${cpu_digest:0:16}" sha256 "not run: no GPU (cpu ${cpu_digest:0:16})"
    return
  fi
  dev_digest=$(digest "$device") || return
  [[ -n $cpu_digest && $cpu_digest == "$dev_digest" ]] && ok=1 || ok=0
  record init-weights "$ok" "${dev_digest:0:16}" sha256 "cpu ${cpu_digest:0:16}"
}

# First-step loss: one step per epoch, so epoch 1's train loss is the first step's; fp32
# convolutions as fp32 (TF32 off), so the comparison is of arithmetic, not precision.
first_loss() {
  bounded "$bin" --runs-dir "$work/first-$1" run "$work/first.yaml" --device "$1" >&2 &&
    bounded "$bin" --runs-dir "$work/first-$1" status --json |
    "$py" -c 'import json,sys; print(json.load(sys.stdin)[0]["last"]["train_loss"])'
}
check_first_step() {
  local cpu_loss dev_loss rel ok
  spec first 1 64 64 "  tf32: false
" > "$work/first.yaml"
  cpu_loss=$(first_loss cpu) || return
  if ((dry)); then
    record first-step skip "" relative "not run: no GPU (cpu $cpu_loss)"
    return
  fi
  dev_loss=$(first_loss "$device") || return
  rel=$("$py" -c "a,b=$cpu_loss,$dev_loss; print(abs(a-b)/abs(a))" || echo nan)
  ok=$("$py" -c "print(1 if $rel <= 1e-3 else 0)" || echo 0)
  record first-step "$ok" "$rel" "relative" "cpu $cpu_loss, $device $dev_loss, tf32 off"
}

# Exact resume with train.deterministic: SIGKILL after the first checkpoint, then resume.
check_exact_resume() {
  local victim note deadline last a b ok
  spec resume "$resume_epochs" "$images" 64 "  deterministic: true
" > "$work/resume.yaml"
  bounded "$bin" --runs-dir "$work/straight" run "$work/resume.yaml" --device "$device" || return
  # Killed by the loop below (SIGKILL, so no checkpoint-on-signal), within the step limit.
  "$bin" --runs-dir "$work/killed" run "$work/resume.yaml" --device "$device" &
  victim=$!
  note="killed after epoch 1"
  deadline=$(($(date +%s) + $(limit)))
  until compgen -G "$work/killed/*/checkpoints/epoch-*" > /dev/null; do
    if ! kill -0 "$victim" 2> /dev/null; then note="finished before the kill: raise the epochs"; break; fi
    if (($(date +%s) > deadline)); then note="no checkpoint within the step's limit"; break; fi
    sleep 0.05
  done
  kill -9 "$victim" 2> /dev/null
  wait "$victim" 2> /dev/null
  bounded "$bin" --runs-dir "$work/killed" run "$work/resume.yaml" --device "$device" || return
  last=$(printf 'epoch-%04d' "$resume_epochs")
  a=$(compgen -G "$work/straight/*/checkpoints/$last/model.safetensors")
  b=$(compgen -G "$work/killed/*/checkpoints/$last/model.safetensors")
  [[ -n $a && -n $b && $note == "killed after epoch 1" ]] && cmp -s "$a" "$b" && ok=1 || ok=0
  record exact-resume "$ok" "$ok" "bit-identical" "$note"
}

# --- throughput ----------------------------------------------------------------------
# One row from a benchmark's JSON: img/s, with the TF32 state libtorch reported.
throughput_row() { # NAME JSON NOTE
  local tf32
  tf32=$("$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); print("tf32 " + ("on" if d.get("tf32_convolutions", d.get("tf32")) else "off"))' "$2")
  record "$1" 1 "$(json_field "$2" '["median_images_per_second"]')" img/s "$tf32${3:+, $3}"
}
bench_row() { # PRECISION BATCH LAYOUT
  local name="bench-$1-$2-$3"
  # shellcheck disable=SC2046
  bounded "$bin" bench --device "$device" --model residual --image-size $((size * 2)) \
    --batch-size "$2" $(precision_args "$1" "$3") --warmup "${steps[0]}" \
    --steps "${steps[1]}" --json > "$work/$name.json" &&
    throughput_row "$name" "$work/$name.json" ""
}
pytorch_row() { # PRECISION BATCH LAYOUT FEED(tensors|dataloader)
  local name="pytorch-$1-$2-$3-$4" feed=()
  [[ $4 == dataloader ]] && feed=(--dataloader --images "$py_images")
  # shellcheck disable=SC2046
  bounded "$py" "$here/benches/pytorch_eager.py" --device "$device" --model residual \
    --image-size $((size * 2)) --batch-size "$2" $(precision_args "$1" "$3") \
    --warmup "${steps[0]}" --steps "${steps[1]}" "${feed[@]}" > "$work/$name.json" &&
    throughput_row "$name" "$work/$name.json" ""
}
epoch_row() { # one bench epoch over device-resident uint8 images, bf16 channels-last
  local name="epoch-$epoch_images" warm
  bounded "$bin" bench --device "$device" --model residual --image-size $((size * 2)) \
    --batch-size "$large" --precision bf16 --channels-last --warmup 1 --steps 1 \
    --epoch-images "$epoch_images" --json > "$work/epoch.json" || return
  warm=$(json_field "$work/epoch.json" '["epoch"]["last_batch_warmup_seconds"]')
  record "$name" 1 "$(json_field "$work/epoch.json" '["epoch"]["seconds"]')" s \
    "bf16 channels-last, batch $large; last batch's shape warmed first ($warm s)"
}
# A real training epoch through `vaelab run` in one memory layout (image 64x64, bf16).
train_epoch_row() { # LAYOUT(nchw|channels_last)
  local name="train-epoch-$1" runs="$work/train-epoch-$1"
  spec "train-$1" 1 "$train_epoch_images" "$small" "  precision: bf16
  memory_format: $1
" $((size * 2)) > "$work/train-$1.yaml"
  bounded "$bin" --runs-dir "$runs" run "$work/train-$1.yaml" --device "$device" || return
  record "$name" 1 "$(bounded "$bin" --runs-dir "$runs" status --json |
    "$py" -c 'import json,sys; print(round(json.load(sys.stdin)[0]["last"]["images_per_second"], 1))')" \
    img/s "$train_epoch_images images, bf16, batch $small, data synthesised on the CPU first"
}
phases_row() { # NAME COMMAND...: the command prints JSON with "phases"
  local name=$1
  shift
  bounded "$@" > "$work/$name.json" || return
  record "$name" 1 "$("$py" -c 'import json,sys; p=json.load(open(sys.argv[1]))["phases"]; print("%.2f/%.2f/%.2f" % tuple(1e3 * p[k] for k in ("forward", "backward", "update")))' "$work/$name.json")" \
    "ms fwd/bwd/update" "fp32 (TF32 off) channels-last, batch $small"
}
# Sweep throughput on one device: one worker against several.
jobs_row() { # WORKERS
  local begun seconds
  printf 'name: sweep\nseeds: [0, 1, 2, 3]\ndata: {source: synthetic, image_size: %s, train_images: %s, val_images: 16}\nmodel: {latent_dim: %s, channels: %s}\ntrain: {epochs: %s, batch_size: 64}\nvariants:\n  - {name: residual, model.residual: true}\n  - {name: plain, model.residual: false}\n' \
    "$size" "$sweep_images" "$latent" "$channels" "$sweep_epochs" > "$work/sweep.yaml"
  begun=$(now)
  bounded "$bin" --runs-dir "$work/sweep-$1" run "$work/sweep.yaml" --jobs "$1" --devices "$device" || return
  seconds=$(since "$begun")
  record "jobs-$1" 1 "$("$py" -c "print(round(8 * 60 / $seconds, 2))")" runs/min "8 runs in $seconds s"
}

echo "== vaelab gpu-check ($([[ $dry == 1 ]] && echo dry run on the CPU || echo CUDA)), deadline ${DEADLINE} s" | tee -a "$log"
step info check_info
step init-weights check_init_weights
step first-step check_first_step
step exact-resume check_exact_resume
# The headline figures.
step "bench-bf16-$small-nhwc" bench_row bf16 "$small" nhwc
step "bench-fp32-$small-nhwc" bench_row fp32 "$small" nhwc
step "pytorch-bf16-$small-nhwc-tensors" pytorch_row bf16 "$small" nhwc tensors
step "epoch-$epoch_images" epoch_row
# The rest.
step train-epoch-nchw train_epoch_row nchw
step train-epoch-channels_last train_epoch_row channels_last
step "pytorch-fp32-$small-nhwc-tensors" pytorch_row fp32 "$small" nhwc tensors
step "pytorch-bf16-$small-nhwc-dataloader" pytorch_row bf16 "$small" nhwc dataloader
step "bench-tf32-$small-nhwc" bench_row tf32 "$small" nhwc
step "bench-bf16-$small-nchw" bench_row bf16 "$small" nchw
step "bench-fp32-$small-nchw" bench_row fp32 "$small" nchw
step "pytorch-bf16-$small-nchw-tensors" pytorch_row bf16 "$small" nchw tensors
step "bench-bf16-$large-nhwc" bench_row bf16 "$large" nhwc
step "pytorch-bf16-$large-nhwc-tensors" pytorch_row bf16 "$large" nhwc tensors
step phases-vaelab phases_row phases-vaelab "$bin" bench --device "$device" --model residual \
  --image-size $((size * 2)) --batch-size "$small" --precision fp32 --tf32 off --channels-last \
  --warmup "${steps[0]}" --steps "${steps[1]}" --phases --json
step phases-pytorch phases_row phases-pytorch "$py" "$here/benches/pytorch_eager.py" \
  --device "$device" --model residual --image-size $((size * 2)) --batch-size "$small" \
  --precision fp32 --tf32 off --channels-last --warmup "${steps[0]}" --steps "${steps[1]}" --phases
step jobs-1 jobs_row 1
step "jobs-$jobs" jobs_row "$jobs"

summarize
cat "$out/summary.md"
echo "gpu-check: $(since "$started_at") s of the ${DEADLINE} s deadline"
# Exit status: whether any check failed (not-run rows are neither).
! grep -q '"ok":false' "$rows"
