"""Throughput: N concurrent sequences through one engine (continuous batching) vs one at a time.

N requests (each its own image and prompt, random weights, greedy, no early stop) are sent from
N client threads at once to an engine with N cache slots, and then, as the baseline, one after
another through an engine with one slot, over the same model, in one run. Reported: total new
tokens/s of each (wall clock from the first submit to the last token, prefills included), their
ratio, and the p50 / p95 latency between consecutive tokens as the clients see them.

    python benchmarks/throughput.py --preset toy-1k --concurrent 8
    python benchmarks/throughput.py --preset sphinx-1k --device cuda --dtype bfloat16 \\
        --concurrent 8 --new-tokens 128 --json
    python benchmarks/throughput.py --preset sphinx-tiny --text-only --new-tokens 32 --rounds 1

``--text-only`` sends text prompts only and builds the LLM alone (the encoders stay on the meta
device), which makes a 1B-parameter LLM's decode measurable on a CPU.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import torch

from generate import build_ours  # benchmarks/ is on sys.path when this script runs
from sphinx_mllm.constants import DTYPES, IMAGE_PLACEHOLDER_ID
from sphinx_mllm.inference.engine import Engine
from sphinx_mllm.inference.sampling import SamplingParams


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def client(engine: Engine, prompt, image, new_tokens: int, gaps: list[float]) -> None:
    """Submit one request and record the time between consecutive tokens."""
    last = None
    for _ in engine.submit(prompt, image, SamplingParams(max_new_tokens=new_tokens)):
        now = time.perf_counter()
        if last is not None:
            gaps.append(now - last)
        last = now


def concurrent(engine: Engine, requests, new_tokens: int, device) -> tuple[float, list[float]]:
    gaps: list[float] = []
    threads = [threading.Thread(target=client, args=(engine, p, im, new_tokens, gaps))
               for p, im in requests]
    sync(device)
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    sync(device)
    return time.perf_counter() - start, gaps


def one_by_one(engine: Engine, requests, new_tokens: int, device) -> tuple[float, list[float]]:
    gaps: list[float] = []
    sync(device)
    start = time.perf_counter()
    for p, im in requests:
        client(engine, p, im, new_tokens, gaps)
    sync(device)
    return time.perf_counter() - start, gaps


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="toy-1k")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--concurrent", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=40, help="text tokens after the image")
    ap.add_argument("--compile", action="store_true", help="compile the decode step")
    ap.add_argument("--text-only", action="store_true", help="no image: text prompts only")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds (best kept)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", type=int, default=None,
                    help="intra-op CPU threads for every side (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), DTYPES[args.dtype]
    torch.manual_seed(0)
    model = build_ours(args.preset, device, dtype, text_only=args.text_only)
    cfg = model.cfg
    visual = 0 if args.text_only else cfg.image_tokens
    gen = torch.Generator().manual_seed(1)
    requests = [([1] + [IMAGE_PLACEHOLDER_ID] * visual
                 + torch.randint(3, cfg.llm.vocab_size, (args.prompt_tokens,), generator=gen).tolist(),
                 None if args.text_only else
                 torch.randn(1, 3, cfg.image_size, cfg.image_size, generator=gen).to(device, dtype))
                for _ in range(args.concurrent)]
    seq_len = visual + 1 + args.prompt_tokens + args.new_tokens
    batched = Engine(model, max_batch=args.concurrent, max_seq_len=seq_len, prefix_cache=0,
                     compile=args.compile)
    single = Engine(model, max_batch=1, max_seq_len=seq_len, prefix_cache=0, compile=args.compile)
    concurrent(batched, requests[:2], 4, device)  # warm-up (and compile)
    one_by_one(single, requests[:1], 4, device)
    best = {}
    for _ in range(args.rounds):
        for name, run, engine in (("concurrent", concurrent, batched),
                                  ("one_by_one", one_by_one, single)):
            wall, gaps = run(engine, requests, args.new_tokens, device)
            if name not in best or wall < best[name][0]:
                best[name] = (wall, gaps)
    total = args.concurrent * args.new_tokens
    result = {"device": str(device), "threads": torch.get_num_threads(), "preset": args.preset,
              "dtype": args.dtype, "text_only": args.text_only,
              "torch": torch.__version__, "concurrent": args.concurrent,
              "new_tokens": args.new_tokens, "prompt_tokens": len(requests[0][0])}
    for name, (wall, gaps) in best.items():
        result[f"{name}_tok_s"] = total / wall
        result[f"{name}_p50_ms"] = 1e3 * pct(gaps, 50)
        result[f"{name}_p95_ms"] = 1e3 * pct(gaps, 95)
    result["throughput_ratio"] = result["concurrent_tok_s"] / result["one_by_one_tok_s"]
    print(f"{args.preset} on {device} ({args.dtype}): {args.concurrent} requests of "
          f"{result['prompt_tokens']} prompt tokens + {args.new_tokens} new; torch {torch.__version__}")
    print(f"  {'':12s} {'tokens/s':>9s} {'p50 ms/token':>13s} {'p95 ms/token':>13s}")
    for name in ("concurrent", "one_by_one"):
        print(f"  {name:12s} {result[name + '_tok_s']:9.1f} {result[name + '_p50_ms']:13.2f} "
              f"{result[name + '_p95_ms']:13.2f}")
    print(f"  concurrent / one at a time: {result['throughput_ratio']:.2f}x tokens/s")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
