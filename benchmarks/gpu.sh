#!/usr/bin/env bash
# Generation numbers on one lent GPU (prepared, not yet run; run from the repository root):
#   bash benchmarks/gpu.sh            # writes $OUT/gen-*.json (OUT defaults to ./runs/bench)
# sphinx-1k (LLaMA-2-13B + four encoders, one 448-px image = 1455 visual tokens), bf16, random
# weights, 40 text tokens, 128 new tokens. Every script prints ours next to its baseline measured
# in the same process:
# 1. bs=1 decode and TTFT, compiled decode step (CUDA graphs), vs HF LLaVA-13B eager and with its
#    static cache; roofline = LLM weight bytes / measured read bandwidth.
# 2. bs=8 throughput vs HF eager.
# 3. second/third-turn TTFT with and without prefix reuse.
# 4. 8 concurrent sequences vs one at a time (continuous batching).
# 5. int8 / int4 weight-only (needs torchao: pip install 'sphinx-mllm[quantize]'; skipped without).
# Budget: building a 13B model with random weights takes ~20 s on the card; the whole set is sized
# to finish in under 8 minutes on an H100/H200.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/bench}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONPATH=${PYTHONPATH:-src}
PY=${PY:-python}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gen-gpu.txt"
common=(--preset sphinx-1k --device cuda --dtype bfloat16 --new-tokens 128 --json)
$PY benchmarks/generate.py "${common[@]}" --compile --compare hf,hf-static --rounds 1 \
    | tee "$OUT/gen-bs1.json"
$PY benchmarks/generate.py "${common[@]}" --compile --batch 8 --compare hf --rounds 1 --repeats 1 \
    | tee "$OUT/gen-bs8.json"
$PY benchmarks/multiturn.py --preset sphinx-1k --device cuda --dtype bfloat16 --trials 3 --json \
    | tee "$OUT/gen-multiturn.json"
$PY benchmarks/throughput.py --preset sphinx-1k --device cuda --dtype bfloat16 --concurrent 8 \
    --new-tokens 128 --rounds 1 --compile --json | tee "$OUT/gen-throughput.json"
if $PY -c "import torchao" 2>/dev/null; then
    for q in int8 int4; do
        $PY benchmarks/generate.py "${common[@]}" --quantize $q --compare none --rounds 1 \
            | tee "$OUT/gen-$q.json"
    done
else
    echo "torchao not installed: int8/int4 GPU runs skipped" | tee "$OUT/gen-quantize.txt"
fi
