"""Peak memory of ``sphinx-mllm convert`` (streaming) vs a load-everything baseline.

Writes a synthetic released-format checkpoint (toy encoders, a LLaMA decoder sized to reach
``--gb`` of bf16 weights, 2 model-parallel shards), then in fresh subprocesses measures the peak
RSS of (a) our streaming ``convert`` and (b) the baseline that ``torch.load``s every shard fully,
merges in memory and saves one safetensors file. Prints both against the checkpoint size.

    python benchmarks/convert_memory.py --workdir /tmp/convbench --gb 2.2
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

BASELINE = r"""
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
from sphinx_mllm.checkpoint.official import split_dim
src, dst = Path(sys.argv[1]), Path(sys.argv[2])
shards = [torch.load(p, weights_only=True)["model"] for p in sorted(src.glob("consolidated.*.pth"))]
merged = {}
for k in shards[0]:
    d = split_dim(k.removeprefix("llma."))
    merged[k] = torch.cat([s[k] for s in shards], d) if d is not None else shards[0][k]
save_file({k: v.contiguous() for k, v in merged.items()}, str(dst))
"""


def synthetic(path: Path, gb: float) -> int:
    """Write the checkpoint; return its size in bytes."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "checkpoint"))
    from conftest import model_args  # the test suite's released-format writer pieces

    from sphinx_mllm import build
    from sphinx_mllm.checkpoint import keymap
    from sphinx_mllm.checkpoint.official import split_dim
    from sphinx_mllm.config import LLMConfig, SphinxConfig
    from sphinx_mllm.inference.pipeline import bundled_tokenizer_path

    dim, vocab = 2048, 32000
    per_layer = 4 * dim * dim + 3 * dim * 5632
    layers = max(1, round((gb * 1e9 / 2 - 2 * vocab * dim) / per_layer))
    cfg = SphinxConfig.from_name("toy-1k")
    cfg.llm = LLMConfig(dim=dim, n_layers=layers, n_heads=16, vocab_size=vocab)
    with torch.device("meta"):
        model = build(cfg, device="meta")
    canonical = {k: (tuple(v.shape), v.dtype) for k, v in keymap.to_canonical(model.state_dict()).items()}
    path.mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(0)
    for rank in range(2):
        state = {}
        for name, (shape, _) in canonical.items():
            d = split_dim(name)
            shape = list(shape)
            if d is not None:
                shape[d] //= 2
            state["llma." + name] = (torch.randn(shape, generator=gen) * 0.02).to(torch.bfloat16)
        torch.save({"model": state}, path / f"consolidated.{rank:02d}-of-02.model.pth")
        del state
    (path / "config.json").write_text(json.dumps(model_args(cfg)))
    (path / "meta.json").write_text(json.dumps({"llama_type": "llama_ens5"}))
    shutil.copyfile(bundled_tokenizer_path(), path / "tokenizer.model")
    return sum(p.stat().st_size for p in path.glob("*.pth"))


def peak_rss_of(cmd: list[str]) -> tuple[float, float]:
    """(peak RSS in GiB, seconds) of one child process."""
    start = time.perf_counter()
    child = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    proc = subprocess.run([sys.executable, "-c", child, *cmd],
                          check=True, capture_output=True, text=True)
    return int(proc.stdout.split()[-1]) / 2**20, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/convbench")
    ap.add_argument("--gb", type=float, default=2.2, help="target checkpoint size")
    args = ap.parse_args()
    work = Path(args.workdir)
    shutil.rmtree(work, ignore_errors=True)
    size = synthetic(work / "released", args.gb)
    ours_rss, ours_s = peak_rss_of([sys.executable, "-m", "sphinx_mllm.cli", "convert",
                                    str(work / "released"), str(work / "ours"), "--preset", "toy-1k",
                                    "--max-shard-gb", "1"])
    base_rss, base_s = peak_rss_of([sys.executable, "-c", BASELINE, str(work / "released"),
                                    str(work / "baseline.safetensors")])
    gib = size / 2**30
    print(f"checkpoint: {gib:.2f} GiB in 2 bf16 shards")
    print(f"  streaming convert : peak RSS {ours_rss:.2f} GiB ({ours_rss / gib:.2f}x checkpoint), {ours_s:.0f} s")
    print(f"  load-all baseline : peak RSS {base_rss:.2f} GiB ({base_rss / gib:.2f}x checkpoint), {base_s:.0f} s")
    print(f"  baseline / streaming peak RSS: {base_rss / ours_rss:.1f}x")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
