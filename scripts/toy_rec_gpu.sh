#!/usr/bin/env bash
# The thirteenth run's REC stage at GPU scale, in one call of the device tool (repository root):
#   bash scripts/toy_rec_gpu.sh   # $OUT: rec.tar.gz (final model, metrics, config), a log
# REC and REG alone on scenes of exactly two shapes (configs/toy/rec-two-shapes.yaml), from MODEL
# (default: the bundled model) at batch BATCH, for as many steps as fit before BUDGET_S seconds
# (a PROBE_STEPS-step probe measures the step time first). It asks whether the choice between
# two shapes, at even odds after 8,500 CPU steps of 16, comes with many more steps
# (docs/toy-world.md, "Thirteenth run"). Scoring is left to a CPU, where pycocotools is installed:
#   sphinx-mllm toy eval --model DIR --seed 1001 --n 300 --tasks rec
# Dry run on a CPU:
#   N=200 BATCH=4 PROBE_STEPS=4 BUDGET_S=240 WORKERS=0 bash scripts/toy_rec_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
OUT=${OUT:-runs/toy-rec-gpu} WORK=${WORK:-/tmp/toy-rec-gpu} PY=${PY:-python3}
BUDGET_S=${BUDGET_S:-540} N=${N:-50000} BATCH=${BATCH:-64} PROBE_STEPS=${PROBE_STEPS:-100}
WORKERS=${WORKERS:-6} MODEL=$(realpath "${MODEL:-src/sphinx_mllm/assets/toy-world}")
DEADLINE=$((START + BUDGET_S))
mkdir -p "$OUT" "$WORK"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH}
LOG="$OUT/toy-rec-gpu-log.txt"
say() { echo "[$((SECONDS - START)) s] $*" | tee -a "$LOG"; }
left() {  # seconds left before the deadline, less a margin; at least 1 (`timeout 0` never stops)
    local n=$((DEADLINE - SECONDS - $1)); echo $((n > 1 ? n : 1))
}
{ date -u; nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null; nproc; } 2>&1 | tee "$LOG"
CLI=($PY -m sphinx_mllm.cli)
# the world where the data config expects it (runs/ is not tracked)
WORLD=runs/toy/world-2shapes
if [ "$($PY -c "import json; print(json.load(open('$WORLD/world.json'))['n'])" 2>/dev/null)" != "$N" ]; then
    say "world: $N pictures, two shapes per scene"
    "${CLI[@]}" toy generate --seed 3 --n "$N" --min-objects 2 --max-objects 2 --out "$WORLD" \
        >>"$LOG" 2>&1 || { say "world generation failed"; exit 1; }
fi
rec_cmd() {  # rec_cmd OUT STEPS [overrides]
    local out=$1 steps=$2; shift 2
    REC_CMD=("${CLI[@]}" train configs/toy/rec-two-shapes.yaml "model=$MODEL" "out=$out"
             "steps=$steps" "batch_size=$BATCH" "num_workers=$WORKERS" "$@")
}
rec_cmd "$WORK/probe" "$PROBE_STEPS" save_every=0
timeout -k 10 "$(left 60)" "${REC_CMD[@]}" >"$WORK/probe-stdout.txt" 2>&1
STEP_S=$($PY -c "import json, statistics
s = [json.loads(x)['step_s'] for x in open('$WORK/probe/metrics.jsonl')]
print(f'{statistics.median(s[len(s) // 2:]):.4f}')" 2>>"$LOG" || echo 1)
STEPS=$($PY -c "print(max(20, int($(left 60) / ($STEP_S * 1.1))))")
say "probe: ${STEP_S} s a step at batch $BATCH -> $STEPS steps"
rec_cmd "$WORK/run" "$STEPS" save_every=1000
timeout -k 10 "$(left 30)" "${REC_CMD[@]}" >"$WORK/run-stdout.txt" 2>&1
say "run: exit $? ($(wc -l <"$WORK/run/metrics.jsonl" 2>/dev/null || echo 0) steps logged)"
tail -c 3000 "$WORK/run-stdout.txt" >>"$LOG"
have=(); for p in probe/metrics.jsonl run/metrics.jsonl run/config.yaml run/final; do
    [ -e "$WORK/$p" ] && have+=("$p"); done
[ ${#have[@]} -gt 0 ] && tar -czf "$OUT/rec.tar.gz" -C "$WORK" "${have[@]}"
say "done; packed: $(ls "$OUT" | tr '\n' ' ')"
