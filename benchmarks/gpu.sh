#!/usr/bin/env bash
# Generation numbers on one lent GPU (run from the repository root):
#   bash benchmarks/gpu.sh            # writes $OUT/gen-*.json and $OUT/gen-log.txt
# sphinx-1k (LLaMA-2-13B + four encoders, one 448-px image = 1455 visual tokens), bf16, random
# weights, 40 text tokens, 128 new tokens. Every script prints ours next to its baseline measured
# in the same process:
# 0. the engine's GPU tests: CUDA-graph decode, continuous batching and prefix reuse give the eager
#    path's greedy tokens (tests/inference/test_engine.py, marked gpu).
# 1. bs=1 decode and TTFT, compiled decode step (CUDA graphs), vs HF LLaVA-13B eager and with its
#    static cache; roofline = LLM weight bytes / measured read bandwidth.
# 2. bs=8 throughput vs HF eager.
# 3. second/third-turn TTFT with and without prefix reuse.
# 4. 8 concurrent sequences vs one at a time (continuous batching).
# 5. int8 / int4 weight-only (needs torchao: pip install 'sphinx-mllm[quantize]'; skipped without).
# Steps run in that order (most wanted first), each under its own time limit (STEP_S seconds), so
# that one slow or failing step leaves the others' numbers. STEPS picks some: STEPS="bs1 bs8".
# The same script runs on a CPU with a toy preset, to check it before a GPU is lent:
#   PRESET=toy-1k DEVICE=cpu DTYPE=float32 NEW=16 bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/bench}
PRESET=${PRESET:-sphinx-1k} DEVICE=${DEVICE:-cuda} DTYPE=${DTYPE:-bfloat16} NEW=${NEW:-128}
STEPS=${STEPS:-tests bs1 bs8 multiturn throughput quantize} STEP_S=${STEP_S:-300}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=${PYTHONPATH:-src}
PY=${PY:-python3}
LOG="$OUT/gen-log.txt"
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null
  $PY -c "import sys, torch, transformers; print(sys.version.split()[0], torch.__version__, transformers.__version__)"
} 2>&1 | tee "$LOG"
common=(--preset "$PRESET" --device "$DEVICE" --dtype "$DTYPE" --new-tokens "$NEW" --json)
step() {  # step NAME command...: run it under the time limit, JSON line to $OUT/gen-NAME.json
    local name=$1; shift
    echo "== $name ($(date -u +%T)): $*" | tee -a "$LOG"
    local t0=$SECONDS
    timeout "$STEP_S" "$@" 2>&1 | tee -a "$LOG" | grep '^{' >"$OUT/gen-$name.json"
    echo "== $name: exit ${PIPESTATUS[0]} after $((SECONDS - t0)) s" | tee -a "$LOG"
    [ -s "$OUT/gen-$name.json" ] || rm -f "$OUT/gen-$name.json"  # no JSON line (tests, failures)
}
for s in $STEPS; do
    case $s in
    tests) step tests $PY -m pytest -q -m gpu -p no:cacheprovider tests/inference/test_engine.py ;;
    bs1) step bs1 $PY benchmarks/generate.py "${common[@]}" --compile --compare hf,hf-static \
             --rounds 1 ;;
    bs8) step bs8 $PY benchmarks/generate.py "${common[@]}" --compile --batch 8 --compare hf \
             --rounds 1 --repeats 1 ;;
    multiturn) step multiturn $PY benchmarks/multiturn.py --preset "$PRESET" --device "$DEVICE" \
             --dtype "$DTYPE" --trials 3 --json ;;
    throughput) step throughput $PY benchmarks/throughput.py --preset "$PRESET" --device "$DEVICE" \
             --dtype "$DTYPE" --concurrent 8 --new-tokens "$NEW" --rounds 1 --compile --json ;;
    quantize)
        if $PY -c "import torchao" 2>/dev/null; then
            for q in int8 int4; do
                step "$q" $PY benchmarks/generate.py "${common[@]}" --quantize $q --compare none --rounds 1
            done
        else
            echo "torchao not installed: int8/int4 runs skipped" | tee -a "$LOG"
        fi ;;
    *) echo "unknown step $s" | tee -a "$LOG" ;;
    esac
done
