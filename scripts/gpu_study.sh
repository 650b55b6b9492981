#!/usr/bin/env bash
# The GPU study as one time-boxed script, for a GPU machine lent for a few minutes.
#
#   OUT=DIR BENCH_GIT_COMMIT=$(git rev-parse HEAD) bash scripts/gpu_study.sh [SECONDS [STAGE...]]
#
# Runs the stages below in order of importance (or only the STAGEs named, smoke always
# first), each under its own time limit and all within SECONDS (default 540), each
# stage a plain `python -m benchmarks.run` whose
# results.json records its command. Everything lands in DIR/study/<stage>/, with one
# log per stage; DIR/study.tar.gz is rewritten after every stage, so whatever finished
# survives a stage that runs out of time. A failing first stage (the smoke run: the
# frameworks, the GPU, the code on this machine's library versions) stops the script
# at once, so a broken setup costs seconds, not the whole lease.
#
# Render the reports back home with `python -m benchmarks.report DIR/study` (a folder of
# report folders). Uses the machine's own jax/flax/torch: flax 0.12.8 (this CPU machine's)
# does not import with jax 0.11.2 (jax.experimental.hijax changed); 0.12.10 does.
# What one H100 session measured with an earlier version: docs/results/h100/.
# Try it here first: SMOKE=1 runs every stage at the smoke preset's sizes, on the CPU.
set -uo pipefail
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# JAX takes 75% of GPU memory by default; PyTorch runs in the same process with --framework both.
export XLA_PYTHON_CLIENT_MEM_FRACTION=${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.45}
OUT=${OUT:-results/gpu-study}
RES=$OUT/study
BUDGET=${1:-540}
shift $(( $# > 0 ? 1 : 0 ))
ONLY=" $* "
PY=${PYTHON:-python3}
mkdir -p "$RES"
T0=$(date +%s)

log() { echo "[$(( $(date +%s) - T0 )) s] $*" | tee -a "$RES/log.txt"; }
# (checkpoints and exported models stay on the machine: the reports are what comes back)
pack() { tar -czf "$OUT/study.tar.gz" --exclude=checkpoints --exclude=models -C "$OUT" study; }

# stage NAME LIMIT_S CMD...: run CMD under min(LIMIT_S, time left), log it, pack the results.
stage() {
    local name=$1 limit=$2 left rc
    shift 2
    if [[ "$ONLY" != "  " && "$ONLY" != *" $name "* && $name != smoke ]]; then return 0; fi
    left=$(( BUDGET - ($(date +%s) - T0) - 5 ))
    (( limit > left )) && limit=$left
    if (( limit < 15 )); then log "skip $name: no time left"; return 1; fi
    log "start $name (limit ${limit} s): $*"
    timeout -k 5 "$limit" "$@" "${SMALL[@]}" >"$RES/$name.log" 2>&1
    rc=$?
    log "end $name: exit $rc$( (( rc == 124 )) && echo ' (time limit)')"
    grep -E "test accuracy|JAX/PyTorch|error" "$RES/$name.log" | tail -n 12
    pack
    return $rc
}

RUN=("$PY" -m benchmarks.run --no-progress)
# SMOKE=1: the same stages and flags on a few images (a rehearsal on the CPU; the last flag wins).
SMALL=()
[[ ${SMOKE:-0} == 1 ]] && SMALL=(--epochs 1 --train-size 1024 --test-size 500 --seeds 0)

log "host: $(nproc) CPUs; GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
"$PY" - <<'EOF' 2>&1 | tee -a "$RES/log.txt"
import importlib.metadata as md
for p in ("jax", "jaxlib", "flax", "optax", "torch", "torchvision", "numpy", "scikit-learn", "matplotlib"):
    try:
        print(f"{p} {md.version(p)}")
    except md.PackageNotFoundError:
        print(f"{p} MISSING")
EOF

# 0. Smoke: both frameworks, both from-scratch models, on the GPU. Stop here if it fails.
stage smoke 150 "${RUN[@]}" --framework both --model cnn,vit --preset smoke --out "$RES/smoke" \
    || { log "smoke run failed: stopping"; pack; exit 1; }

# 1. CNN time to accuracy (goals: >= 99.0% in <= 0.3 s, >= 99.4% in <= 1.5 s of training): the lab's
#    CNN on the whole training split, no validation pass, three seeds. One H100 session measured
#    0.41 s for 3 epochs of batch 512 (351 steps, ~1.2 ms a step: dispatch more than compute), so the
#    levers here are one compiled call per epoch (--steps-per-call 117: a lax.fori_loop, the same
#    updates) and bfloat16. Two epochs do not reach 99.0% in every seed (docs/results/cpu-2core-cnn-2epochs).
FAST=(--framework jax --model cnn --preset full --seeds 0,1,2 --val-size 0 --epochs 3 --batch-size 512 --lr 5e-3
      --warmup-epochs 0.2)
stage cnn-fast-loop 60 "${RUN[@]}" "${FAST[@]}" --steps-per-call 117 --out "$RES/cnn-fast-loop"
stage cnn-fast-loop-bf16 60 "${RUN[@]}" "${FAST[@]}" --steps-per-call 117 --precision bfloat16 \
    --out "$RES/cnn-fast-loop-bf16"
stage cnn-accurate 90 "${RUN[@]}" --framework jax --model cnn --preset full --seeds 0,1,2 --val-size 0 \
    --epochs 8 --batch-size 256 --lr 3e-3 --warmup-epochs 0.5 --augment-shift 2 --steps-per-call 234 \
    --out "$RES/cnn-accurate"

# 2. Each framework at its best, as one matrix with both ratios (stock against stock, best against
#    best): JAX stock/tuned against PyTorch eager and compiled with CUDA graphs (reduce-overhead),
#    float32 (TF32) and bfloat16, the cpu preset's batch of 128, two epochs of 25,600 images.
MATRIX=(--framework both --preset cpu --epochs 2 --train-size 25600 --val-size 0 --kernels stock,tuned
        --torch-compile none,reduce-overhead --precision float32,bfloat16)
stage matrix-cnn 150 "${RUN[@]}" "${MATRIX[@]}" --model cnn --out "$RES/matrix-cnn"
stage matrix-vit 240 "${RUN[@]}" "${MATRIX[@]}" --model vit --out "$RES/matrix-vit"

# 3. The ViT towards 99.5%: tiny/4 at the full preset reached 99.33% after 60 epochs on the H100; the
#    candidate recipe is the wider small/4 (6 blocks of 256) with shifts and label smoothing, bfloat16,
#    JAX only. One seed in the time there is; the report says so.
stage vit-small 240 "${RUN[@]}" --framework jax --model vit --preset full --variant small/4 --epochs 40 \
    --batch-size 256 --lr 2e-3 --augment-shift 2 --precision bfloat16 --out "$RES/vit-small"

# 4. Named only: VGG16 and AlexNet at the full preset's 224 px in both frameworks (the Flax ports
#    beside torchvision's) on a subset that fits a lease (random init unless the cache holds weights),
#    and PyTorch's full-preset ViT (about 6 min on an H100).
if [[ "$ONLY" == *" vgg16-alexnet "* ]]; then
    stage vgg16-alexnet 200 "${RUN[@]}" --framework both --model vgg16,alexnet --preset full --optimizer adam \
        --lr 1e-4 --epochs 1 --train-size 20000 --out "$RES/vgg16-alexnet"
fi
if [[ "$ONLY" == *" vit-torch-full "* ]]; then
    stage vit-torch-full 590 "${RUN[@]}" --framework torch --model vit --preset full --out "$RES/vit-torch-full"
fi

log "done"
pack
