#!/usr/bin/env bash
# The toy recipe on one lent GPU, in one call of the device tool (run from the repository root):
#   bash scripts/toy_gpu.sh   # $OUT: recipe.tar.gz, curriculum.tar.gz, long.tar.gz, two logs
#                             # (and line.tar.gz when the recipe ran the optional stages)
# Needs the package's eval dependencies (pycocotools, pycocoevalcap) importable: the recipe's
# validations score with them. A bare device image lacks both; the call that ran this put them
# on PYTHONPATH first (docs/toy-world-runs.md, "Tenth run").
# RECIPE_ARGS="--set rec_view_steps=6000 --set tail=tail-pose.yaml" runs the bundled model's whole
# line instead: 15,000 more steps and 6 more validations, about 17 more minutes at the tenth
# run's H200 rates (0.045 s a step, 60 s a validation), about 26 in all: more than one call and
# more than one 15-minute lend. A later call resumes only on the same warm machine (WORK lives in
# /tmp); LONG_JOB=0 leaves the card to A.
# Two jobs share the card (each keeps it mostly idle: 4.7M parameters, launch-bound):
# A. `toy train` with the default budget (--set num_workers=WORKERS if WORKERS is set; else the
#    recipe's default for a GPU): the recipe's wall time on a GPU,
#    stage by stage (recipe.jsonl), and its final model.
# B. once A's training world exists: `train configs/toy/finetune.yaml` continued from LONG_MODEL
#    (default: the bundled model) at batch LONG_BATCH, for as many steps as fit before the
#    deadline (a PROBE_STEPS-step probe measures the step time first): what more fine-tuning buys.
# Everything stops by BUDGET_S seconds after the start; what finished is packed, each final model
# in bf16 with its logs and metrics (the device tool returns at most 8 files of 16 MiB).
# Scoring on held-out seeds is left to a CPU (`sphinx-mllm toy eval --model DIR`).
# RECIPE=0 skips A (only its training world is generated). docs/toy-world-runs.md ("Tenth run") has
# what the two calls on an H200 measured.
# Dry run on a CPU:
#   RECIPE_ARGS=--quick LONG_BATCH=4 PROBE_STEPS=4 BUDGET_S=300 bash scripts/toy_gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
START=$SECONDS
OUT=${OUT:-runs/toy-gpu} WORK=${WORK:-/tmp/toy-gpu} PY=${PY:-python3}
BUDGET_S=${BUDGET_S:-540} WORKERS=${WORKERS:-} RECIPE_ARGS=${RECIPE_ARGS:-}
RECIPE=${RECIPE:-1} LONG_JOB=${LONG_JOB:-1} LONG_MODEL=$(realpath "${LONG_MODEL:-src/sphinx_mllm/assets/toy-world}")
LONG_BATCH=${LONG_BATCH:-64} LONG_WORKERS=${LONG_WORKERS:-6} PROBE_STEPS=${PROBE_STEPS:-100}
DEADLINE=$((START + BUDGET_S))
mkdir -p "$OUT" "$WORK"
LOG="$OUT/toy-gpu-log.txt"
source scripts/gpu_lib.sh  # say, left, probe_step_s
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null; nproc
  $PY -c "import sys, torch, transformers as t; print(sys.version.split()[0], torch.__version__,
t.__version__)"
} 2>&1 | tee "$LOG"
$PY -c "import pycocotools, pycocoevalcap" 2>>"$LOG" \
    || { echo "pycocotools / pycocoevalcap missing: see the header" | tee -a "$LOG"; exit 1; }
CLI=($PY -m sphinx_mllm.cli)
RUN=$WORK/toy LONG=$WORK/long

if [ "$RECIPE" = 1 ]; then
    say "A: toy train $RECIPE_ARGS ${WORKERS:+--set num_workers=$WORKERS}"
    timeout -k 10 "$(left 60)" "${CLI[@]}" toy train --out "$RUN" $RECIPE_ARGS \
        ${WORKERS:+--set "num_workers=$WORKERS"} >"$WORK/recipe-stdout.txt" 2>&1 &
else
    say "A: only the training world"
    "${CLI[@]}" toy generate --seed 0 --n 20000 --out "$RUN/world" >"$WORK/recipe-stdout.txt" 2>&1 &
fi
A=$!

# B waits for A's training world, then reads it through its own mixture copy
while [ ! -f "$RUN/world/world.json" ] && kill -0 $A 2>/dev/null; do sleep 2; done
if [ "$LONG_JOB" != 1 ]; then
    say "B: skipped (LONG_JOB=$LONG_JOB)"
elif [ -f "$RUN/world/world.json" ]; then
    say "B: world ready"
    mkdir -p "$LONG" && ln -sfn "$RUN/world" "$LONG/world"
    DATA=$($PY -c "from pathlib import Path
from sphinx_mllm.toy.recipe import Run, Budget, rebase_mixture
print(rebase_mixture('data-all.yaml', Run(Path('$LONG'), Budget())))")
    long_cmd() {  # long_cmd OUT STEPS [overrides]: LONG_CMD = finetune.yaml from LONG_MODEL
        local out=$1 steps=$2; shift 2
        LONG_CMD=("${CLI[@]}" train configs/toy/finetune.yaml "model=$LONG_MODEL"
                  "data=$DATA" "out=$out" "steps=$steps" "batch_size=$LONG_BATCH" seed=7
                  "num_workers=$LONG_WORKERS" "$@")
    }
    long_cmd "$LONG/probe" "$PROBE_STEPS" save_every=0
    timeout -k 10 "$(left 60)" "${LONG_CMD[@]}" >"$WORK/long-probe.txt" 2>&1
    STEP_S=$(probe_step_s "$LONG/probe/metrics.jsonl" 2>>"$LOG" || echo 1)
    STEPS=$($PY -c "print(max(20, int($(left 60) / ($STEP_S * 1.1))))")
    say "B: probe step ${STEP_S} s at batch $LONG_BATCH -> $STEPS steps"
    long_cmd "$LONG/run" "$STEPS" save_every=500 optim.warmup_steps=50
    timeout -k 10 "$(left 40)" "${LONG_CMD[@]}" >"$WORK/long-stdout.txt" 2>&1
    say "B: exit $? ($(wc -l <"$LONG/run/metrics.jsonl" 2>/dev/null || echo 0) steps logged)"
else
    say "B: skipped, A ended before its training world was complete"
fi

wait $A
say "A: exit $?"
tail -c 3000 "$WORK/recipe-stdout.txt" >>"$LOG"
tail -c 3000 "$WORK/long-stdout.txt" >>"$LOG" 2>/dev/null
cat "$RUN/recipe.jsonl" >>"$LOG" 2>/dev/null
# pack: names relative to each run folder, only what exists
pack() {  # pack ARCHIVE DIR PATH...
    local archive=$1 dir=$2; shift 2
    local have=(); for p in "$@"; do [ -e "$dir/$p" ] && have+=("$p"); done
    [ ${#have[@]} -gt 0 ] && tar -czf "$OUT/$archive" -C "$dir" "${have[@]}"
}
pack recipe.tar.gz "$RUN" recipe.jsonl budget.json curves.png logs val mixed/choice.json \
    encoders/probe.json encoders/metrics.jsonl pretrain/metrics.jsonl synthetic/metrics.jsonl \
    curriculum/metrics.jsonl finetune/metrics.jsonl finetune/config.yaml finetune/final
pack curriculum.tar.gz "$RUN" curriculum/final
# with RECIPE_ARGS="--set rec_view_steps=6000 --set tail=tail-pose.yaml" (the bundled model's
# line, docs/toy-world.md "The recipe"): those stages' curves and the last finished one's model
LAST=$(grep -o '"stage": "tail-[^"]*"' "$RUN/recipe.jsonl" 2>/dev/null | tail -1 | cut -d'"' -f4)
pack line.tar.gz "$RUN" rec-two-shapes/metrics.jsonl \
    $(cd "$RUN" 2>/dev/null && ls -d tail-*/metrics.jsonl tail-*/config.yaml 2>/dev/null) \
    ${LAST:+$LAST/final}
cp "$WORK/recipe-stdout.txt" "$OUT/" 2>/dev/null
pack long.tar.gz "$LONG" probe/metrics.jsonl run/metrics.jsonl run/config.yaml run/final
say "done; packed: $(ls "$OUT" | tr '\n' ' ')"
