"""Generation speed: our engine vs HF transformers' LlavaForConditionalGeneration, in one process.

Both models get random weights and the same LLM shape (dim, layers, heads, KV heads, FFN width,
vocabulary), the same number of visual tokens in the prompt and the same prompt length; both
decode greedily without stopping. HF's LLaVA sees its visual tokens from one small CLIP tower (a
LLaVA image is a square grid of patches, so the count is made up from several images when the
preset's count is not a square); ours from the preset's encoders. Decode speed compares the
LLMs; TTFT includes each side's own vision towers.

Reported: time to first token (TTFT), decode tokens/s over all rows after the first token, peak
memory, and ours / HF ratios; for ours also the vision share of TTFT (``encoder_ms``: each
encoder on its views of one image, and the whole ``encode_images``). ``--compare hf`` is HF's
default (dynamic) cache, ``hf-static`` its static cache (``cache_implementation="static"``; HF
compiles that step only on GPUs by default).

    python benchmarks/generate.py --preset toy-1k --compare hf
    python benchmarks/generate.py --preset sphinx-tiny --text-only --compare hf --new-tokens 16
    python benchmarks/generate.py --preset sphinx-tiny --text-only --quantize int8 --compare hf
    python benchmarks/generate.py --preset sphinx-1k --device cuda --dtype bfloat16 \\
        --compile --compare hf,hf-static --new-tokens 128 --json
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import platform
import resource
import sys
import time

import torch

from sphinx_mllm import build
from sphinx_mllm.constants import DTYPES, IMAGE_PLACEHOLDER_ID
from sphinx_mllm.inference.engine import Engine
from sphinx_mllm.inference.sampling import SamplingParams


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_gb(device: torch.device) -> float:
    """Peak GPU memory allocated, or on CPU the process's peak RSS (a high-water mark)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


# --- ours ----------------------------------------------------------------------------------------


def build_ours(preset: str, device, dtype, text_only: bool = False, quantize: str | None = None):
    """Our model with random weights (``benchmarks/throughput.py`` builds it here too)."""
    if text_only:  # encoders stay on the meta device (never run): no memory for them
        from sphinx_mllm.model import _default_dtype
        from sphinx_mllm.model.llm import Transformer

        model = build(preset, device="meta")
        with torch.device(device), _default_dtype(dtype):
            model.llm = Transformer(model.cfg.llm)
    else:
        model = build(preset, device=device, dtype=dtype)
    if quantize:
        from sphinx_mllm.model.quantize import quantize_llm

        quantize_llm(model, quantize)
    return model


def our_prompts(model, args, gen: torch.Generator):
    cfg = model.cfg
    visual = 0 if args.text_only else cfg.image_tokens
    prompts = [[1] + [IMAGE_PLACEHOLDER_ID] * visual
               + torch.randint(3, cfg.llm.vocab_size, (args.prompt_tokens,), generator=gen).tolist()
               for _ in range(args.batch)]
    images = [None if args.text_only else
              torch.randn(1, 3, cfg.image_size, cfg.image_size, generator=gen).to(args.device, model.dtype)
              for _ in range(args.batch)]
    return prompts, images


def run_ours(engine: Engine, prompts, images, new_tokens: int, device) -> tuple[float, float]:
    """(TTFT s: until every row has its first token, decode tokens/s over all rows after it)."""
    params = SamplingParams(max_new_tokens=new_tokens)
    sync(device)
    start = time.perf_counter()
    seqs = [engine.submit(p, im, params) for p, im in zip(prompts, images)]
    for seq in seqs:
        next(seq)
    first = time.perf_counter()
    for seq in seqs:
        seq.result()
    sync(device)
    end = time.perf_counter()
    return first - start, len(seqs) * (new_tokens - 1) / (end - first)


def setup_ours(args, dtype, device):
    """Our model and engine, warmed up; returns (run() -> (ttft s, tok/s), facts, close)."""
    torch.manual_seed(0)
    model = build_ours(args.preset, args.device, dtype, args.text_only, args.quantize)
    prompts, images = our_prompts(model, args, torch.Generator().manual_seed(1))
    # timed before the engine's worker thread exists: on a CPU, two threads' OpenMP teams spin
    # against each other (toy-1k encode_images took 1176 ms after the engine's warm-up, 15 ms
    # with OMP_WAIT_POLICY=PASSIVE; a training job ran beside both)
    vision = None if args.text_only else encoder_ms(model, images[0], device)
    engine = Engine(model, max_batch=args.batch, compile=args.compile, prefix_cache=0,
                    max_seq_len=len(prompts[0]) + args.new_tokens)
    run_ours(engine, prompts, images, min(args.new_tokens, 8), device)  # warm-up (and compile)
    facts = {"prefill_flops": prefill_flops(model, prompts, images)} if device.type == "cuda" else {}
    if vision:
        facts["encoder_ms"] = vision
    facts |= {"prompt_tokens": len(prompts[0]),
             "visual_tokens": 0 if args.text_only else model.cfg.image_tokens,
             "llm_weight_bytes": llm_weight_bytes(model)}
    # close: a GPU engine keeps its worker thread (and so the model) alive until closed
    return (lambda: run_ours(engine, prompts, images, args.new_tokens, device)), facts, engine.close


def encoder_ms(model, image: torch.Tensor, device) -> dict[str, float]:
    """The vision share of TTFT: milliseconds of each encoder on its views of one image, and of
    ``encode_images`` (views, every encoder, projections), each the best of 3 after a warm call."""
    from sphinx_mllm.model.views import make_views

    def best(fn) -> float:
        fn()
        times = []
        for _ in range(3):
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times.append(1e3 * (time.perf_counter() - start))
        return min(times)

    out = {}
    with torch.inference_mode():
        for kind, encoder in model.encoders.items():
            views = make_views(image, model.cfg.encoder(kind).view_size, model.cfg.grid)
            views = views.to(model._encoder_dtype(encoder))  # as encode_views does
            out[kind] = best(lambda: encoder(views))
        out["encode_images"] = best(lambda: model.encode_images(image))
    return out


def llm_weight_bytes(model) -> int:
    """Bytes of LLM weights a decode step reads (quantized storage counted as stored)."""
    total = 0
    for t in list(model.llm.parameters()) + list(model.llm.buffers()):
        inner = [getattr(t, name) for name in getattr(t, "__tensor_flatten__", lambda: ([], None))()[0]]
        total += sum(x.numel() * x.element_size() for x in (inner or [t]))
    return total - model.llm.rope.numel() * model.llm.rope.element_size()


# --- HF transformers LLaVA -----------------------------------------------------------------------


def hf_image_layout(image_tokens: int) -> tuple[int, int, str]:
    """(images, patch grid side, select strategy) giving exactly ``image_tokens`` LLaVA tokens
    with the fewest images: "default" drops CLS (g*g per image), "full" keeps it (1 + g*g)."""
    best = None
    for g in range(1, int(math.isqrt(image_tokens)) + 1):
        for per, strategy in ((g * g, "default"), (1 + g * g, "full")):
            if image_tokens % per == 0 and (best is None or image_tokens // per < best[0]):
                best = (image_tokens // per, g, strategy)
    return best


def build_hf(cfg, args, dtype, image_tokens: int):
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    llm = cfg.llm
    n_images, grid, strategy = hf_image_layout(image_tokens) if image_tokens else (0, 1, "default")
    patch = 14
    vision = CLIPVisionConfig(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                              num_attention_heads=2, image_size=grid * patch, patch_size=patch)
    if cfg.clip is not None and not cfg.name.startswith("toy"):  # real size: a CLIP-L like tower
        vision = CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                  num_attention_heads=16, image_size=grid * patch, patch_size=patch)
    text = LlamaConfig(vocab_size=llm.vocab_size + 1, hidden_size=llm.dim,
                       intermediate_size=llm.hidden_dim, num_hidden_layers=llm.n_layers,
                       num_attention_heads=llm.n_heads, num_key_value_heads=llm.n_kv_heads,
                       rms_norm_eps=llm.norm_eps, rope_theta=llm.rope_theta,
                       max_position_embeddings=llm.max_seq_len, tie_word_embeddings=False)
    config = LlavaConfig(vision_config=vision, text_config=text, image_token_index=llm.vocab_size,
                         image_seq_length=image_tokens // max(n_images, 1),
                         vision_feature_select_strategy=strategy, vision_feature_layer=-2)
    from sphinx_mllm.model import _default_dtype

    with torch.device(args.device), _default_dtype(dtype):  # built in dtype: no fp32 copy of 13B
        model = LlavaForConditionalGeneration(config).eval()
    return model, n_images, grid * patch


class _Clock:
    """A generation streamer that notes when the first new token arrives."""

    def __init__(self):
        self.calls = 0
        self.first = None

    def put(self, value):
        self.calls += 1
        if self.calls == 2:  # the first put is the prompt
            self.first = time.perf_counter()

    def end(self):
        pass


def run_hf(model, inputs, new_tokens, static: bool, device) -> tuple[float, float]:
    clock = _Clock()
    kwargs = {"cache_implementation": "static"} if static else {}
    sync(device)
    start = time.perf_counter()
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                             do_sample=False, streamer=clock, pad_token_id=0, **kwargs)
    sync(device)
    end = time.perf_counter()
    batch, made = out.shape[0], out.shape[1] - inputs["input_ids"].shape[1]
    assert made == new_tokens, (made, new_tokens)
    return clock.first - start, batch * (new_tokens - 1) / (end - clock.first)


def setup_hf(cfg, args, dtype, device, image_tokens: int, prompt_tokens: int, static: bool):
    """HF's model and inputs, warmed up; returns (run() -> (ttft s, tok/s), facts, None)."""
    torch.manual_seed(0)
    model, n_images, side = build_hf(cfg, args, dtype, image_tokens)
    gen = torch.Generator().manual_seed(1)
    text = torch.randint(3, cfg.llm.vocab_size, (args.batch, prompt_tokens - 1 - image_tokens),
                         generator=gen)
    ids = torch.cat([torch.ones(args.batch, 1, dtype=torch.long),
                     torch.full((args.batch, image_tokens), cfg.llm.vocab_size), text], dim=1)
    inputs = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}
    if n_images:
        inputs["pixel_values"] = torch.randn(args.batch * n_images, 3, side, side,
                                             generator=gen).to(device, dtype)
    # warm-up; a static cache is sized by the generation length, so warm up at the timed length
    # (a shorter one would leave the timed run to compile and record its CUDA graphs again)
    run_hf(model, inputs, args.new_tokens if static else min(args.new_tokens, 8), static, device)
    run = lambda: run_hf(model, inputs, args.new_tokens, static, device)  # noqa: E731
    return run, {"images": n_images}, None


def measure(name: str, setup, device, repeats: int) -> dict:
    """Set one side up alone, time it ``repeats`` times (best kept), free it."""
    reset_peak(device)
    run, facts, close = setup()
    runs = [run() for _ in range(repeats)]
    out = {f"{name}_ttft_ms": 1e3 * min(r[0] for r in runs),
           f"{name}_decode_tok_s": max(r[1] for r in runs),
           f"{name}_peak_mem_gb": peak_gb(device)}
    out.update({(k if name == "ours" else f"{name}_{k}"): v for k, v in facts.items()})
    if close:
        close()
    del run, close
    gc.collect()
    print(f"{name}: TTFT {out[f'{name}_ttft_ms']:.1f} ms, decode {out[f'{name}_decode_tok_s']:.1f} "
          f"tok/s, peak {out[f'{name}_peak_mem_gb']:.2f} GiB", file=sys.stderr, flush=True)
    return out


# --- roofline (any device) and FLOP floor (GPU) -------------------------------------------------


def prefill_flops(model, prompts, images) -> int:
    """FLOPs of one prefill of ``prompts`` (encoders, LLM over the prompt, head at the last
    token), counted by torch's FlopCounterMode around the same ``steps.prefill`` the engine runs."""
    from torch.utils.flop_counter import FlopCounterMode

    from sphinx_mllm.inference.steps import new_cache, prefill

    device = model.device
    cache = new_cache(model, len(prompts), len(prompts[0])).window()
    ids = torch.tensor(prompts, device=device)
    pics = [im for im in images if im is not None]
    model.requires_grad_(False)  # counted outside inference mode, which the counter cannot see into
    counter = FlopCounterMode(display=False)
    with counter:
        prefill(model, cache, ids, torch.cat(pics) if pics else None,
                torch.full((len(prompts),), len(prompts[0]), device=device))
    return counter.get_total_flops()


def matmul_flops_per_s(device: torch.device, dtype: torch.dtype) -> float:
    """Measured dense matmul throughput (8192^3, best of several) in FLOP/s."""
    a = torch.randn(8192, 8192, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(10):
        sync(device)
        t = time.perf_counter()
        a @ a
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * 8192**3 / best



def read_bandwidth(device: torch.device) -> float:
    """Measured device read bandwidth in bytes/s (a large sum, best of several)."""
    x = torch.empty(2**28, dtype=torch.float32, device=device).uniform_()  # 1 GiB
    best = float("inf")
    for _ in range(10):
        sync(device)
        t = time.perf_counter()
        x.sum()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return x.numel() * x.element_size() / best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="toy-1k")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--prompt-tokens", type=int, default=40, help="text tokens after the image")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    ap.add_argument("--hf-dtype", choices=sorted(DTYPES), default=None,
                    help="HF's dtype (default: --dtype), e.g. float32 against our int8")
    ap.add_argument("--quantize", choices=["int8", "int4"], default=None, help="our LLM's linears")
    ap.add_argument("--compile", action="store_true", help="compile our decode step")
    ap.add_argument("--text-only", action="store_true", help="no image: text prompts only")
    ap.add_argument("--compare", default="hf", help="comma list of hf, hf-static, none")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per side and round")
    ap.add_argument("--rounds", type=int, default=2, help="rounds alternating the sides (best kept)")
    ap.add_argument("--json", action="store_true", help="print one JSON object at the end")
    ap.add_argument("--threads", type=int, default=None,
                    help="intra-op CPU threads for every side (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype, hf_dtype = DTYPES[args.dtype], DTYPES[args.hf_dtype or args.dtype]
    compare = [c for c in args.compare.split(",") if c and c != "none"]

    result = {"device": torch.cuda.get_device_name() if device.type == "cuda" else
              f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)",
              "preset": args.preset, "batch": args.batch, "new_tokens": args.new_tokens,
              "dtype": args.dtype, "hf_dtype": args.hf_dtype or args.dtype,
              "quantize": args.quantize, "compile": args.compile, "text_only": args.text_only,
              "torch": torch.__version__}
    # Each side runs alone (one model in memory at a time), in rounds that alternate the sides,
    # so that a burst of load from other processes does not fall on one side only.
    cfg = build(args.preset, device="meta").cfg
    for _ in range(args.rounds):
        ours = measure("ours", lambda: setup_ours(args, dtype, device), device, args.repeats)
        keep_best(result, ours)
        for kind in compare:
            key = kind.replace("-", "_")
            keep_best(result, measure(key, lambda: setup_hf(
                cfg, args, hf_dtype, device, ours["visual_tokens"], ours["prompt_tokens"],
                static=kind == "hf-static"), device, args.repeats))
    if "hf_decode_tok_s" in result:
        result["decode_ratio"] = result["ours_decode_tok_s"] / result["hf_decode_tok_s"]
        result["ttft_ratio"] = result["ours_ttft_ms"] / result["hf_ttft_ms"]
    if "hf_static_decode_tok_s" in result:
        result["decode_ratio_static"] = result["ours_decode_tok_s"] / result["hf_static_decode_tok_s"]
        result["ttft_ratio_static"] = result["ours_ttft_ms"] / result["hf_static_ttft_ms"]
    # Decode at small batch reads every LLM weight once per step: the roofline is the measured
    # read bandwidth over those bytes (an upper bound for both sides at the same dtype).
    bandwidth = read_bandwidth(device)
    result["read_bandwidth_gb_s"] = bandwidth / 1e9
    result["roofline_tok_s"] = args.batch * bandwidth / result["llm_weight_bytes"]
    result["roofline_fraction"] = result["ours_decode_tok_s"] / result["roofline_tok_s"]
    if "hf_decode_tok_s" in result and hf_dtype == dtype and not args.quantize:
        result["hf_roofline_fraction"] = result["hf_decode_tok_s"] / result["roofline_tok_s"]
    if device.type == "cuda":
        flops = result["prefill_flops"]
        peak = matmul_flops_per_s(device, dtype)
        result["prefill_tflops"] = flops / 1e12
        result["matmul_tflop_s"] = peak / 1e12
        result["ttft_floor_ms"] = 1e3 * flops / peak
        result["ttft_floor_ratio"] = result["ours_ttft_ms"] / result["ttft_floor_ms"]
    import transformers

    result["transformers"] = transformers.__version__
    print_table(result, compare)
    if args.json:
        print(json.dumps(result))


def keep_best(result: dict, new: dict) -> None:
    """Merge a round's numbers: the best TTFT and decode speed. Peak memory: the first round's
    (on a CPU peak RSS is a process high-water mark, so later rounds carry the other side's)."""
    for key, value in new.items():
        if key not in result:
            result[key] = value
        elif key.endswith(("_ttft_ms", "_peak_mem_gb")):
            result[key] = min(result[key], value)
        elif key.endswith("_decode_tok_s"):
            result[key] = max(result[key], value)


def print_table(r: dict, compare: list[str]) -> None:
    what = "text only" if r["text_only"] else f"{r['visual_tokens']} visual"
    print(f"{r['preset']} on {r['device']}, ours {r['dtype']}"
          f"{' ' + r['quantize'] if r['quantize'] else ''}{' compiled' if r['compile'] else ''}, "
          f"batch {r['batch']}, {r['prompt_tokens']} prompt tokens ({what}), "
          f"{r['new_tokens']} new tokens; torch {r['torch']}, transformers {r['transformers']}")
    print(f"  {'':10s} {'TTFT ms':>10s} {'decode tok/s':>13s} {'peak GiB':>9s}")
    rows = [("ours", "ours")] + [(c, c.replace("-", "_")) for c in compare]
    for name, key in rows:
        print(f"  {name:10s} {r[key + '_ttft_ms']:10.1f} {r[key + '_decode_tok_s']:13.1f} "
              f"{r[key + '_peak_mem_gb']:9.2f}")
    if "decode_ratio" in r:
        print(f"  ours / hf ({r['hf_dtype']}): decode {r['decode_ratio']:.2f}x, TTFT {r['ttft_ratio']:.2f}x")
    if "decode_ratio_static" in r:
        print(f"  ours / hf-static: decode {r['decode_ratio_static']:.2f}x, "
              f"TTFT {r['ttft_ratio_static']:.2f}x")
    if "roofline_tok_s" in r:
        print(f"  roofline {r['roofline_tok_s']:.1f} tok/s ({r['read_bandwidth_gb_s']:.0f} GB/s read), "
              f"ours at {100 * r['roofline_fraction']:.0f}%"
              + (f", HF at {100 * r['hf_roofline_fraction']:.0f}%" if "hf_roofline_fraction" in r
                 else ""))
    if "encoder_ms" in r:
        ms = dict(r["encoder_ms"])
        whole = ms.pop("encode_images")
        parts = ", ".join(f"{k} {v:.1f}" for k, v in ms.items())
        print(f"  ours' vision share of TTFT: encode_images {whole:.1f} ms ({parts} ms)")
    if "ttft_floor_ms" in r:
        print(f"  TTFT floor {r['ttft_floor_ms']:.1f} ms ({r['prefill_tflops']:.2f} TFLOP at "
              f"{r['matmul_tflop_s']:.0f} TFLOP/s measured), ours at {r['ttft_floor_ratio']:.2f}x")


if __name__ == "__main__":
    main()
