#!/usr/bin/env bash
# Training numbers on one lent GPU (prepared; run from the repository root):
#   bash benchmarks/train_gpu.sh            # writes $OUT/train-*.json (OUT defaults to ./runs/bench)
# 1. sphinx-tiny (TinyLlama-1.1B + ConvNeXt-XXL + DINOv2-g, 512 px), bf16: full fine-tuning (the
#    baseline) vs LoRA vs activation checkpointing.
# 2. sphinx-1k (LLaMA-2-13B + four encoders, 448 px, 1455 visual tokens), bf16, LoRA with activation
#    checkpointing: full 13B fine-tuning needs fp32 master weights + AdamW state (16 B/param, 208 GB)
#    and so FSDP over several GPUs (docs/training.md gives the torchrun command); one card runs LoRA.
# Each prints tokens/s, peak memory and MFU (6 * LLM params * tokens / dense bf16 peak).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/bench}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/train-gpu.txt"
python benchmarks/train.py --preset sphinx-tiny --device cuda --precision bf16 \
    --variants full,lora,full+ac --steps 20 --warmup 5 --batch-size 4 --json \
    | tee "$OUT/train-sphinx-tiny.json"
python benchmarks/train.py --preset sphinx-1k --device cuda --precision bf16 \
    --variants lora+ac --steps 12 --warmup 4 --batch-size 2 --json \
    | tee "$OUT/train-sphinx-1k.json"
