#!/usr/bin/env bash
# The thirteenth run's REC stage at GPU scale, in one call of the device tool (repository root):
#   bash scripts/toy_rec_gpu.sh   # $OUT: rec.tar.gz (final model, metrics, config), a log
# REC and REG alone on scenes of exactly two shapes (configs/toy/rec-two-shapes.yaml), from MODEL
# (default: the bundled model) at batch BATCH, for as many steps as fit before BUDGET_S seconds
# (a PROBE_STEPS-step probe measures the step time first). It asks whether the choice between
# two shapes, at even odds after 8,500 CPU steps of 16, comes with many more steps
# (docs/toy-world-runs.md, "Thirteenth run"). On five views (`grid=2`; the config's own is the
# fifteenth run's one view) and unpacked, as the config's data (fourteenth run). The world is
# PARTS worlds of N / PARTS pictures (seeds 3, 4, ...), generated in parallel (one
# process: 1.2 ms a picture on a CPU here).
# MIN_OBJECTS / MAX_OBJECTS change the scenes (default 2 / 2) and LR the peak learning rate
# (default the config's 1e-3, a tenth of it at the end): the twentieth run's stretch, REC on one to
# five shapes from the bundled model, at GPU scale is
#   MIN_OBJECTS=1 MAX_OBJECTS=5 LR=2e-4 bash scripts/toy_rec_gpu.sh
# (then multi-task steps on a CPU, as that run's V and W; docs/toy-world-runs.md, "Twentieth run").
# Scoring is left to a CPU, where pycocotools is installed:
#   sphinx-mllm toy eval --model DIR --seed 1001 --n 300 --tasks rec
# Dry run on a CPU:
#   N=200 PARTS=2 BATCH=4 PROBE_STEPS=4 BUDGET_S=150 WORKERS=0 bash scripts/toy_rec_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
OUT=${OUT:-runs/toy-rec-gpu} WORK=${WORK:-/tmp/toy-rec-gpu} PY=${PY:-python3}
BUDGET_S=${BUDGET_S:-540} N=${N:-50000} PARTS=${PARTS:-10} BATCH=${BATCH:-64}
PROBE_STEPS=${PROBE_STEPS:-100} WORKERS=${WORKERS:-6}
MIN_OBJECTS=${MIN_OBJECTS:-2} MAX_OBJECTS=${MAX_OBJECTS:-2} LR=${LR:-}
LR_ARGS=(); [ -n "$LR" ] && LR_ARGS=("optim.lr=$LR" "optim.min_lr=$($PY -c "print($LR / 10)")")
MODEL=$(realpath "${MODEL:-src/sphinx_mllm/assets/toy-world}")
DEADLINE=$((START + BUDGET_S))
rm -rf "$WORK"  # a warm machine keeps /tmp: never resume an earlier call's probe or run
mkdir -p "$OUT" "$WORK"
LOG="$OUT/toy-rec-gpu-log.txt"
source scripts/gpu_lib.sh  # say, left, probe_step_s
fail() { say "$1"; tail -c 3000 "$2" >>"$LOG" 2>/dev/null; exit 1; }
{ date -u; nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null; nproc; } 2>&1 \
    | tee "$LOG"
CLI=($PY -m sphinx_mllm.cli)

say "world: $PARTS x $((N / PARTS)) pictures, $MIN_OBJECTS to $MAX_OBJECTS shapes per scene"
DATA=$WORK/data-rec.yaml
echo "META:" >"$DATA"
pids=()
for ((i = 0; i < PARTS; i++)); do
    world=$WORK/world-$i
    timeout -k 10 "$(left 120)" "${CLI[@]}" toy generate --seed $((3 + i)) --n $((N / PARTS)) \
        --min-objects "$MIN_OBJECTS" --max-objects "$MAX_OBJECTS" --out "$world" \
        >"$WORK/world-$i.txt" 2>&1 &
    pids+=($!)
    printf '  - {path: %s/refcoco, format: refcoco, turns: 1, split: train, root: %s/train, %s}\n' \
        "$world" "$world" "type: image_text" >>"$DATA"
done
for ((i = 0; i < PARTS; i++)); do
    wait "${pids[$i]}" || fail "world $i failed" "$WORK/world-$i.txt"
done

rec_cmd() {  # rec_cmd OUT STEPS [overrides]
    local out=$1 steps=$2; shift 2
    REC_CMD=("${CLI[@]}" train configs/toy/rec-two-shapes.yaml "model=$MODEL" "data=$DATA"
             "out=$out" "steps=$steps" "batch_size=$BATCH" "num_workers=$WORKERS" grid=2
             "${LR_ARGS[@]}" "$@")
}
say "probe: $PROBE_STEPS steps"
rec_cmd "$WORK/probe" "$PROBE_STEPS" save_every=0
timeout -k 10 "$(left 60)" "${REC_CMD[@]}" >"$WORK/probe-stdout.txt" 2>&1 \
    || fail "probe failed (exit $?)" "$WORK/probe-stdout.txt"
STEP_S=$(probe_step_s "$WORK/probe/metrics.jsonl") || fail "probe wrote no metrics" "$LOG"
STEPS=$($PY -c "print(max(20, int($(left 60) / ($STEP_S * 1.1))))")
say "probe: ${STEP_S} s a step at batch $BATCH -> $STEPS steps"
rec_cmd "$WORK/run" "$STEPS" save_every=1000
timeout -k 10 "$(left 30)" "${REC_CMD[@]}" >"$WORK/run-stdout.txt" 2>&1
RC=$?
say "run: exit $RC ($(wc -l 2>/dev/null <"$WORK/run/metrics.jsonl" || echo 0) steps logged)"
tail -c 3000 "$WORK/run-stdout.txt" >>"$LOG"
if [ ! -d "$WORK/run/final" ] && [ -d "$WORK/run/checkpoints" ]; then  # stopped by the deadline
    "${CLI[@]}" export "$WORK/run" --out "$WORK/run/final" >>"$LOG" 2>&1 \
        && say "run: its newest checkpoint exported as final"
fi
have=(); for p in probe/metrics.jsonl run/metrics.jsonl run/config.yaml run/final; do
    [ -e "$WORK/$p" ] && have+=("$p"); done
[ ${#have[@]} -gt 0 ] && tar -czf "$OUT/rec.tar.gz" -C "$WORK" "${have[@]}"
say "done; packed: $(ls "$OUT" | tr '\n' ' ')"
exit $RC
