"""Multi-turn TTFT: later turns about the same image with and without image-prefix reuse.

A three-turn conversation about one image (random weights, fixed earlier answers). Each turn's
time to first token (encoders + prefill + the first sample) is measured through one engine with
the prefix cache on and one with it off, both over the same model, in one run, alternating. Every
trial starts from an empty prefix cache, so turn 1 is always cold. The best (lowest) TTFT over the
trials is kept per turn and side: on a shared machine the other processes only ever add time.

    python benchmarks/multiturn.py --preset toy-1k
    python benchmarks/multiturn.py --preset sphinx-1k --device cuda --dtype bfloat16 --json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from sphinx_mllm import build
from sphinx_mllm.constants import DTYPES
from sphinx_mllm.conversation import history_to_messages
from sphinx_mllm.inference.engine import Engine
from sphinx_mllm.inference.pipeline import bundled_tokenizer_path
from sphinx_mllm.inference.sampling import SamplingParams
from sphinx_mllm.processing import Processor
from sphinx_mllm.tokenizer import Tokenizer

QUESTIONS = ["What is in the image?", "What colour is the largest shape?",
             "Where is the smallest shape, as a box?"]
ANSWERS = ["Three shapes on a grey background: a red square, a blue circle and a green triangle.",
           "The largest shape is the red square in the upper left."]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def conversation(processor: Processor) -> list[list[int]]:
    """Prompt ids of turns 1..3 (each with the earlier turns as history)."""
    prompts = []
    for turn, question in enumerate(QUESTIONS):
        history = list(zip(QUESTIONS[:turn], ANSWERS[:turn]))
        prompts.append(processor.encode_prompt(history_to_messages(history, question), True))
    return prompts


def ttfts(engine: Engine, prompts, image, device, reused: list | None = None) -> list[float]:
    """TTFT in seconds of each turn, in order, from an empty prefix cache (``reused`` collects
    each turn's prompt tokens taken from the cache)."""
    engine.clear_prefixes()
    out = []
    for prompt in prompts:
        sync(device)
        start = time.perf_counter()
        seq = engine.submit(prompt, image, SamplingParams(max_new_tokens=1))
        seq.result()
        sync(device)
        out.append(time.perf_counter() - start)
        if reused is not None:
            reused.append(seq.reused)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="toy-1k")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--trials", type=int, default=15, help="conversations per side (best kept)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="intra-op CPU threads for every side (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    torch.manual_seed(0)
    model = build(args.preset, device=device, dtype=dtype)
    processor = Processor(Tokenizer.from_file(bundled_tokenizer_path()), model.cfg)
    prompts = conversation(processor)
    image = torch.randn(1, 3, model.cfg.image_size, model.cfg.image_size).to(device, dtype)
    sides = {"reuse": Engine(model, max_batch=1, prefix_cache=4),
             "no_reuse": Engine(model, max_batch=1, prefix_cache=0)}
    reused: list[int] = []
    for engine in sides.values():
        ttfts(engine, prompts, image, device, reused if engine.prefixes.capacity else None)  # warm-up
    runs = {name: [] for name in sides}
    for _ in range(args.trials):  # alternate the sides so that load bursts fall on both
        for name, engine in sides.items():
            runs[name].append(ttfts(engine, prompts, image, device))
    best = {name: [min(r[t] for r in rs) for t in range(len(prompts))] for name, rs in runs.items()}
    result = {"device": str(device), "threads": torch.get_num_threads(), "preset": args.preset,
              "dtype": args.dtype,
              "torch": torch.__version__, "prompt_tokens": [len(p) for p in prompts],
              "visual_tokens": model.cfg.image_tokens,
              "reuse_ttft_ms": [1e3 * t for t in best["reuse"]],
              "no_reuse_ttft_ms": [1e3 * t for t in best["no_reuse"]],
              "ttft_ratio": [a / b for a, b in zip(best["reuse"], best["no_reuse"])],
              "reused_tokens": reused}
    print(f"{args.preset} on {device} ({args.dtype}), {model.cfg.image_tokens} visual tokens, "
          f"best of {args.trials} conversations; torch {torch.__version__}")
    print(f"  {'turn':>4s} {'prompt':>7s} {'reused':>7s} {'TTFT reuse ms':>14s} "
          f"{'TTFT no reuse ms':>17s} {'ratio':>6s}")
    for t in range(len(prompts)):
        print(f"  {t + 1:4d} {result['prompt_tokens'][t]:7d} {reused[t]:7d} "
              f"{result['reuse_ttft_ms'][t]:14.1f} "
              f"{result['no_reuse_ttft_ms'][t]:17.1f} {result['ttft_ratio'][t]:6.2f}")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
