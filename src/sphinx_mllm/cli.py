"""``sphinx-mllm`` command line: thin wrappers over library functions."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _config_for(name_or_path: str):
    from .checkpoint import ours
    from .config import PRESET_NAMES, SphinxConfig

    if name_or_path in PRESET_NAMES:
        return SphinxConfig.from_name(name_or_path)
    path = Path(name_or_path)
    if path.is_dir() and (path / ours.CONFIG).is_file():
        return SphinxConfig.from_file(path / ours.CONFIG)
    if path.is_file() and path.suffix == ".json":
        return SphinxConfig.from_file(path)
    raise SystemExit(f"error: {name_or_path!r} is not a preset ({', '.join(PRESET_NAMES)}), "
                     "a checkpoint directory or a config JSON")


def model_info(name_or_path: str) -> dict:
    """Visual tokens per image, parameter counts and bf16 weight bytes; built on ``meta``."""
    from .model import build

    cfg = _config_for(name_or_path)
    params = build(cfg, device="meta").param_counts()
    return {"name": cfg.name, "image_size": cfg.image_size, "views": cfg.num_views,
            "image_tokens": cfg.image_tokens, "params": params,
            "bf16_weight_bytes": 2 * params["total"]}


def cmd_info(args) -> int:
    info = model_info(args.model)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    p = info["params"]
    rows = [("LLM", p["llm"]), ("projections + start/end", p["projector"])]
    rows += [(f"vision: {k}", v) for k, v in p["vision"].items()]
    rows += [("total", p["total"])]
    print(f"{info['name']}: {info['image_size']} px, {info['views']} view(s), "
          f"{info['image_tokens']} visual tokens per image")
    for label, n in rows:
        print(f"  {label:<26} {n / 1e9:8.3f} B params")
    print(f"  {'bf16 weights':<26} {info['bf16_weight_bytes'] / 2**30:8.2f} GiB")
    return 0


def cmd_chat(args) -> int:
    from .inference.pipeline import load

    if args.image is not None and not Path(args.image).is_file():
        raise SystemExit(f"error: image not found: {args.image}")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = DTYPES[args.dtype] if args.dtype else (torch.bfloat16 if device != "cpu" else None)
    try:
        pipe = load(args.model, device=device, dtype=dtype)
    except (FileNotFoundError, KeyError) as err:
        raise SystemExit(f"error: {err}")
    sampling = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                    top_p=args.top_p, top_k=args.top_k, seed=args.seed)
    try:
        if args.stream and not args.json:
            for delta in pipe.stream(args.image, args.question, **sampling):
                print(delta, end="", flush=True)
            print()
            return 0
        answer = pipe.chat(args.image, args.question, **sampling)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    if args.json:
        print(json.dumps({"answer": answer.text, "tokens": answer.tokens,
                          "prompt_tokens": answer.prompt_tokens,
                          "finish_reason": answer.finish_reason}))
    else:
        print(answer.text)
    return 0


def cmd_data_convert(args) -> int:
    from .data.adapters import FORMATS
    from .data.convert import convert

    if args.format not in FORMATS:
        raise SystemExit(f"error: unknown format {args.format!r}; one of {', '.join(FORMATS)}")
    if not Path(args.root).is_dir():
        raise SystemExit(f"error: --root is not a directory: {args.root}")
    report = convert(args.format, args.root, args.out, images=args.images, split=args.split,
                     seed=args.seed)
    skipped = sum(report.skipped.values())
    print(f"wrote {report.written} conversations to {args.out}; skipped {skipped} malformed "
          f"record(s)" + (f": {report.skipped}" if skipped else ""))
    return 0


def cmd_data_stats(args) -> int:
    from .data.convert import format_stats, mixture_stats
    from .inference.pipeline import bundled_tokenizer_path
    from .tokenizer import Tokenizer

    tokenizer = Tokenizer.from_file(args.tokenizer or bundled_tokenizer_path())
    print(format_stats(mixture_stats(args.config, tokenizer, args.preset, seed=args.seed)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sphinx-mllm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="visual tokens and parameter counts of a preset or checkpoint")
    info.add_argument("model", help="preset name, checkpoint directory or config JSON")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    chat = sub.add_parser("chat", help="answer one question about an image")
    chat.add_argument("question")
    chat.add_argument("--model", required=True, help="checkpoint directory or preset name "
                      "(presets have random weights)")
    chat.add_argument("--image", help="image file; omit for a text-only chat")
    chat.add_argument("--json", action="store_true", help="print answer, tokens and finish reason as JSON")
    chat.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    chat.add_argument("--max-new-tokens", type=int, default=128)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument("--top-k", type=int, default=0)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    chat.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                      help="default: bfloat16 on GPU, as stored on CPU")
    chat.set_defaults(func=cmd_chat)

    data = sub.add_parser("data", help="dataset conversion and mixture statistics")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    conv = data_sub.add_parser("convert", help="convert a downloaded dataset to conversation JSONL")
    conv.add_argument("--format", required=True, help="dataset format, e.g. coco-instances, refcoco")
    conv.add_argument("--root", required=True, help="dataset directory (annotations)")
    conv.add_argument("--images", help="image folder when the images are not under --root")
    conv.add_argument("--split", help="split to read (RefCOCO, VQA, ...)")
    conv.add_argument("--out", required=True, help="output .jsonl")
    conv.add_argument("--preset", help="accepted for symmetry with training; boxes are written "
                      "normalised to the padded square, which is the same for every preset")
    conv.add_argument("--seed", type=int, default=0, help="seed of the per-sample prompt choice")
    conv.set_defaults(func=cmd_data_convert)
    stats = data_sub.add_parser("stats", help="per-source counts and token-length percentiles")
    stats.add_argument("config", help="mixture YAML (LLaMA2-Accessory META list + format/weight)")
    stats.add_argument("--preset", default="sphinx-1k", help="counts this preset's visual tokens")
    stats.add_argument("--tokenizer", help="tokenizer.model (default: the bundled toy tokenizer)")
    stats.add_argument("--seed", type=int, default=0)
    stats.set_defaults(func=cmd_data_stats)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
