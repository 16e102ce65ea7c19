"""Training throughput and memory: full fine-tuning (the baseline) vs LoRA vs activation
checkpointing, each through the real trainer (``sphinx_mllm.train.train``) in its own process.

Every variant trains the same preset (random init) on the same synthetic image + answer data
for the same steps; reported per variant: tokens/s (median over the steps after the first
``--warmup``), peak memory (CUDA: max allocated; CPU: peak RSS of the worker process), trainable
parameters, model FLOPs utilisation on CUDA (``6 * LLM params * tokens``, ``4 *`` for LoRA whose
frozen weights get no weight gradients: LLM matmuls only, no attention and no encoders, so a
lower bound), and each variant's ratio to ``full``. CUDA peak memory is the training steps'
(the trainer resets it after building the model); CPU peak memory is the worker's peak RSS.

    python benchmarks/train.py --config configs/train/tiny-cpu.yaml          # the tiny CPU run
    python benchmarks/train.py --preset toy-1k --variants full,lora,full+ac --steps 30
    python benchmarks/train.py --preset sphinx-tiny --device cuda --precision bf16 \\
        --variants full,lora,full+ac --batch-size 4 --json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

VARIANTS = {
    "full": [],
    "lora": ["lora.rank=16", "lora.alpha=32", "lora.targets=[wq,wk,wv,wo,w1,w2,w3]"],
    "full+ac": ["activation_checkpointing=true"],
    "lora+ac": ["lora.rank=16", "lora.alpha=32", "lora.targets=[wq,wk,wv,wo,w1,w2,w3]",
                "activation_checkpointing=true"],
}
PEAK_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0}  # dense bf16
WORDS = ("red green blue circle square triangle left right top bottom large small the a of "
         "in on near far bright dark").split()


def synthetic_data(root: Path, image_size: int, samples: int, answer_words: int) -> Path:
    """Noise images with long free-form answers, as one LLaVA-style source."""
    from PIL import Image

    rng = random.Random(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(samples):
        pixels = bytes(rng.getrandbits(8) for _ in range(3 * 32 * 32))
        image = Image.frombytes("RGB", (32, 32), pixels).resize((image_size, image_size))
        image.save(root / "images" / f"{i}.png")
        answer = " ".join(rng.choice(WORDS) for _ in range(answer_words))
        records.append({"image": f"images/{i}.png", "conversations": [
            {"from": "human", "value": "Describe the image."}, {"from": "gpt", "value": answer}]})
    (root / "data.json").write_text(json.dumps(records))
    (root / "mixture.yaml").write_text("META:\n  - path: data.json\n    type: image_text\n")
    return root / "mixture.yaml"


def worker(args) -> dict:
    """One variant, in this process: train, then read metrics.jsonl and the peak memory."""
    from sphinx_mllm.train.config import load_config
    from sphinx_mllm.train.trainer import train

    overrides = json.loads(args.worker)
    cfg = load_config(args.config_path, overrides)
    train(cfg)
    records = [json.loads(line) for line in (cfg.out / "metrics.jsonl").read_text().splitlines()]
    timed = records[args.warmup:] or records
    if cfg.device == "cuda":  # the trainer resets the peak after building the model
        peak = max(r["peak_mem_gb"] for r in records)
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB
    from sphinx_mllm import build, checkpoint
    from sphinx_mllm.config import PRESET_NAMES, SphinxConfig

    model_cfg = (SphinxConfig.from_name(cfg.model) if cfg.model in PRESET_NAMES
                 else checkpoint.open(cfg.model).config())
    llm_params = sum(p.numel() for p in build(model_cfg, device="meta").llm.parameters())
    return {"tokens_per_s": statistics.median(r["tokens_per_s"] for r in timed),
            "step_s": statistics.median(r["step_s"] for r in timed),
            "peak_mem_gb": peak, "llm_params": llm_params,
            "final_loss": records[-1]["loss"], "steps": len(records)}


def wider_llm(out: Path, preset: str, spec: str) -> Path:
    """A checkpoint of ``preset`` with its LLM replaced by ``dim,layers,heads`` (random weights),
    so that a CPU can measure what LoRA saves at a size where weights dominate memory."""
    import dataclasses

    from sphinx_mllm import build
    from sphinx_mllm.checkpoint import ours
    from sphinx_mllm.config import LLMConfig, SphinxConfig
    from sphinx_mllm.inference.pipeline import bundled_tokenizer_path

    dim, layers, heads = (int(x) for x in spec.split(","))
    base = SphinxConfig.from_name(preset)
    llm = LLMConfig(dim=dim, n_layers=layers, n_heads=heads, vocab_size=base.llm.vocab_size,
                    max_seq_len=base.llm.max_seq_len)
    cfg = dataclasses.replace(base, name=f"{preset}-llm{dim}x{layers}", llm=llm)
    torch.manual_seed(0)
    return ours.save(build(cfg), bundled_tokenizer_path(), out)


def run_variant(name: str, config: Path, overrides: list[str], warmup: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(overrides), "--config-path",
           str(config), "--warmup", str(warmup)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="a training YAML to run as is (its data and preset)")
    parser.add_argument("--preset", default="toy-1k")
    parser.add_argument("--llm", help="replace the preset's LLM by DIM,LAYERS,HEADS (e.g. 1024,8,16)")
    parser.add_argument("--variants", default="full,lora,full+ac")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5, help="first steps left out of the median")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--answer-words", type=int, default=120)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precision", choices=["fp32", "bf16"], default=None)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--config-path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    tmp = Path(tempfile.mkdtemp(prefix="sphinx-train-bench-"))
    common = [f"steps={args.steps}", "save_every=0", "resume=none", f"device={args.device}"]
    if args.precision:
        common.append(f"precision={args.precision}")
    if args.config:
        config = Path(args.config).resolve()
        label = config.name
    else:
        from sphinx_mllm.config import SphinxConfig

        size = SphinxConfig.from_name(args.preset).image_size
        data = synthetic_data(tmp / "data", size, 8 * args.batch_size, args.answer_words)
        config = tmp / "bench.yaml"
        model = wider_llm(tmp / "model", args.preset, args.llm) if args.llm else args.preset
        config.write_text(f"model: {model}\ndata: {data}\nout: {tmp / 'run'}\n"
                          f"batch_size: {args.batch_size}\noptim: {{lr: 1.0e-4, warmup_steps: 2}}\n")
        label = args.preset + (f" with a {args.llm} LLM" if args.llm else "")
    results = {}
    for name in args.variants.split(","):
        started = time.perf_counter()
        overrides = [*common, *VARIANTS[name], f"out={tmp / ('run-' + name.replace('+', '-'))}"]
        results[name] = run_variant(name, config, overrides, args.warmup)
        results[name]["wall_s"] = time.perf_counter() - started
    base = results.get("full", {})
    peak_tflops = None
    if args.device == "cuda":
        card = torch.cuda.get_device_name()
        peak_tflops = next((v for k, v in PEAK_TFLOPS.items() if k in card), None)
    for name, row in results.items():
        if "error" in row:
            continue
        if base and "error" not in base:
            row["tokens_per_s_vs_full"] = row["tokens_per_s"] / base["tokens_per_s"]
            row["peak_mem_vs_full"] = row["peak_mem_gb"] / base["peak_mem_gb"]
        if peak_tflops and row["llm_params"]:
            # forward 2N + input gradients 2N, + weight gradients 2N unless the weights are frozen
            per_token = (4 if name.startswith("lora") else 6) * row["llm_params"]
            row["mfu"] = per_token * row["tokens_per_s"] / (peak_tflops * 1e12)
    report = {"config": label, "device": args.device,
              "device_name": (torch.cuda.get_device_name() if args.device == "cuda"
                              else f"{platform.machine()} CPU, {os.cpu_count()} cores"),
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "steps": args.steps, "batch_size": args.batch_size, "variants": results}
    if args.json:
        print(json.dumps(report))
        return
    print(f"{label} on {args.device} ({report['device_name']}), torch {torch.__version__}, "
          f"{args.steps} steps, median after {args.warmup}")
    print(f"{'variant':<9} {'tokens/s':>10} {'vs full':>8} {'peak GiB':>9} {'vs full':>8} {'MFU':>6}")
    for name, row in results.items():
        if "error" in row:
            print(f"{name:<9} error: {row['error']}")
            continue
        print(f"{name:<9} {row['tokens_per_s']:>10.0f} {row.get('tokens_per_s_vs_full', 1):>8.2f} "
              f"{row['peak_mem_gb']:>9.2f} {row.get('peak_mem_vs_full', 1):>8.2f} "
              + (f"{row['mfu']:>6.1%}" if "mfu" in row else f"{'-':>6}"))


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
