"""Generation speed: our static-KV-cache decode vs a no-cache baseline (full forward per token).

Prints time to first token (TTFT), decode tokens/s and peak memory for one image + a text prompt,
then the speed-up over the baseline measured in the same run.

    python benchmarks/generate.py --preset toy-1k                      # CPU, seconds
    python benchmarks/generate.py --preset sphinx-1k --device cuda --dtype bfloat16 \\
        --prompt-tokens 40 --new-tokens 128                            # GPU, random weights
"""

from __future__ import annotations

import argparse
import resource
import time

import torch

from sphinx_mllm import build
from sphinx_mllm.constants import DTYPES
from sphinx_mllm.constants import IMAGE_PLACEHOLDER_ID
from sphinx_mllm.inference.engine import Engine
from sphinx_mllm.inference.generate import SamplingParams




def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def cached_run(model, prompt, image, new_tokens, device):
    """(ttft seconds, decode tokens/s) with the static KV cache."""
    params = SamplingParams(max_new_tokens=new_tokens)
    sync(device)
    start = time.perf_counter()
    first = None
    n = 0
    engine = Engine(model, max_batch=1, max_seq_len=len(prompt) + new_tokens, prefix_cache=0)
    for _ in engine.submit(prompt, image, params):
        n += 1
        if first is None:
            sync(device)
            first = time.perf_counter()
    sync(device)
    end = time.perf_counter()
    return first - start, (n - 1) / (end - first)


@torch.inference_mode()
def uncached_run(model, prompt, image, new_tokens, device):
    """Baseline: re-run the whole sequence (image included) for every new token."""
    ids = torch.tensor([prompt], device=device)
    sync(device)
    start = time.perf_counter()
    first = None
    for i in range(new_tokens):
        nxt = model(ids, image)[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
        if first is None:
            sync(device)
            first = time.perf_counter()
    sync(device)
    return first - start, (new_tokens - 1) / (time.perf_counter() - first)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="toy-1k")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--prompt-tokens", type=int, default=40)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--baseline-tokens", type=int, default=None,
                    help="new tokens for the no-cache baseline (default: same)")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = build(args.preset, device=device, dtype=DTYPES[args.dtype])
    cfg = model.cfg
    vocab = cfg.llm.vocab_size
    prompt = [1] + [IMAGE_PLACEHOLDER_ID] * cfg.image_tokens + \
        torch.randint(3, vocab, (args.prompt_tokens,)).tolist()
    image = torch.randn(1, 3, cfg.image_size, cfg.image_size, device=device, dtype=DTYPES[args.dtype])
    cached_run(model, prompt, image, 4, device)  # warm-up
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    ttft, tps = cached_run(model, prompt, image, args.new_tokens, device)
    if device.type == "cuda":
        peak = f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"
    else:
        peak = f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    base_n = args.baseline_tokens or args.new_tokens
    b_ttft, b_tps = uncached_run(model, prompt, image, base_n, device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    print(f"{cfg.name} on {name}, {args.dtype}: {len(prompt)} prompt tokens "
          f"({cfg.image_tokens} visual), {args.new_tokens} new tokens")
    print(f"  KV cache : TTFT {ttft * 1e3:8.1f} ms   decode {tps:8.1f} tok/s   {peak}")
    print(f"  no cache : TTFT {b_ttft * 1e3:8.1f} ms   decode {b_tps:8.1f} tok/s   ({base_n} tokens)")
    print(f"  decode speed-up over the no-cache baseline: {tps / b_tps:.1f}x")


if __name__ == "__main__":
    main()
