"""``sphinx-mllm`` command line: thin wrappers over library functions."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from .config import STEMS
from .constants import DTYPES


def _config_for(name_or_path: str):
    from . import checkpoint
    from .config import PRESET_NAMES, SphinxConfig

    if name_or_path in PRESET_NAMES:
        return SphinxConfig.from_name(name_or_path)
    path = Path(name_or_path)
    if checkpoint.is_checkpoint(path):
        return checkpoint.open(path).config()
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


def _load_pipeline(args):
    """``--model`` on ``--device`` in ``--dtype`` (defaults: see ``sphinx_mllm.load``)."""
    from .inference.pipeline import load

    if args.device and args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no CUDA device")
    return load(args.model, device=args.device, dtype=DTYPES[args.dtype] if args.dtype else None,
                quantize=getattr(args, "quantize", None))


def cmd_chat(args) -> int:
    if args.image is not None and not Path(args.image).is_file():
        raise SystemExit(f"error: image not found: {args.image}")
    pipe = _load_pipeline(args)
    sampling = dict(max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                    top_p=args.top_p, top_k=args.top_k, seed=args.seed)
    if args.stream and not args.json:
        for delta in pipe.stream(args.image, args.question, **sampling):
            print(delta, end="", flush=True)
        print()
        return 0
    answer = pipe.chat(args.image, args.question, **sampling)
    if args.json:
        from .tasks import objects_json

        print(json.dumps({"answer": answer.text, "tokens": answer.tokens,
                          "prompt_tokens": answer.prompt_tokens,
                          "finish_reason": answer.finish_reason,
                          "objects": objects_json(answer.objects)}))
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
    stats = mixture_stats(args.config, tokenizer, args.preset, seed=args.seed)
    print(format_stats(stats))
    return 0


def cmd_eval(args) -> int:
    from .eval.runner import run_benchmark

    pipe = _load_pipeline(args)
    sampling = dict(temperature=args.temperature, top_p=args.top_p, seed=args.seed)
    if args.max_new_tokens is not None:
        sampling["max_new_tokens"] = args.max_new_tokens
    result = run_benchmark(args.benchmark, pipe, args.data, args.out, split=args.split,
                           batch_size=args.batch_size, limit=args.limit, sampling=sampling,
                           images=args.images, model_name=args.model)
    print(json.dumps(result["metrics"], indent=2))
    return 0


def cmd_score(args) -> int:
    from .eval.runner import json_safe, score_answers

    if not Path(args.answers).is_file():
        raise SystemExit(f"error: answers file not found: {args.answers}")
    metrics = score_answers(args.benchmark, args.answers, args.data, split=args.split,
                            images=args.images)
    if args.json:
        print(json.dumps(json_safe(metrics)))
    else:
        for key, value in metrics.items():
            print(f"{key:<32} {value:.2f}" if isinstance(value, float) else f"{key:<32} {value}")
    return 0


def cmd_report(args) -> int:
    from .eval.report import write_report

    pages = write_report(args.runs, args.out, examples=args.examples)
    print("wrote " + " and ".join(str(p) for p in pages))
    return 0


def cmd_convert(args) -> int:
    from .checkpoint import official

    src = Path(args.src)
    if not (src.is_dir() and official.is_released_dir(src)):
        raise SystemExit(f"error: {src} is not a released SPHINX checkpoint directory "
                         "(meta.json + consolidated.XX-of-YY.model.pth)")
    out = official.convert(src, args.dst, preset=args.preset,
                           max_shard_bytes=int(args.max_shard_gb * 10**9))
    print(f"wrote {out}")
    return 0


def cmd_assemble(args) -> int:
    from .checkpoint import components

    encoders = {k: getattr(args, k) for k in ("clip", "convnext", "dinov2", "qformer")
                if getattr(args, k)}
    out = components.assemble(args.preset, llm=args.llm, tokenizer=args.tokenizer,
                              out=args.out, encoders=encoders, dtype=DTYPES[args.dtype],
                              seed=args.seed)
    print(f"wrote {out}")
    return 0


def cmd_train(args) -> int:
    from .train.config import load_config
    from .train.trainer import train

    cfg = load_config(args.config, args.overrides)
    final = train(cfg)
    if os.environ.get("RANK", "0") == "0":  # once per torchrun job, not once per process
        print(f"wrote {final}")
    return 0


def cmd_mix(args) -> int:
    from .train.mix import average, mix

    if args.beta is not None:
        if len(args.parents) != 2:
            raise SystemExit(f"error: --beta mixes two parents; {len(args.parents)} given "
                             "(use --weights for an average of several)")
        betas = _numbers(args.beta, "--beta")
        written = mix(*args.parents, args.out, betas, include_projector=args.include_projector,
                      preset=args.preset)
    else:
        weights = None if args.weights is None else _numbers(args.weights, "--weights")
        written = [average(args.parents, args.out, weights,
                           include_projector=args.include_projector, preset=args.preset)]
    for path in written:
        print(f"wrote {path}")
    return 0


def _numbers(text: str, flag: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise SystemExit(f"error: {flag} takes comma-separated numbers; got {text!r}")


def cmd_export(args) -> int:
    from .train.trainer import export_checkpoint

    print(f"wrote {export_checkpoint(args.run, args.step, args.out)}")
    return 0


def cmd_plot(args) -> int:
    from .train.plot import plot_runs

    print(f"wrote {plot_runs(args.runs, args.out)}")
    return 0


def add_train_commands(sub) -> None:
    train = sub.add_parser("train", help="train or fine-tune from a YAML config (docs/training.md)",
                           description="Train from CONFIG.yaml; KEY=VALUE arguments override any "
                           "key, dotted for sections (optim.lr=1e-4). Launch with torchrun for "
                           "several processes.")
    train.add_argument("config", help="training YAML (configs/train/*.yaml)")
    train.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="e.g. steps=100 optim.lr=1e-4")
    train.set_defaults(func=cmd_train)

    mix = sub.add_parser("mix", help="C = beta*A + (1-beta)*B over the LLM weights (weight "
                         "mixing), or a weighted average of several siblings",
                         description="Two parents: C = beta*A + (1-beta)*B (--beta). Two or "
                         "more: their weighted mean (--weights; equal weights by default). Only "
                         "the LLM is mixed unless --include-projector; every other tensor is the "
                         "first parent's.")
    mix.add_argument("parents", nargs="+", metavar="PARENT",
                     help="parent checkpoints: A B (e.g. tuned on real-world and on synthetic "
                     "data), or several siblings to average")
    how = mix.add_mutually_exclusive_group()
    how.add_argument("--beta", help="weight of A in [0, 1] (two parents); a comma list writes "
                     "OUT/beta-<b>/ for each value")
    how.add_argument("--weights", help="comma-separated non-negative weights, one per parent, "
                     "scaled to sum to 1 (default without --beta: equal)")
    mix.add_argument("--out", required=True, help="output checkpoint directory")
    mix.add_argument("--include-projector", action="store_true",
                     help="also mix the projections and start/end vectors (default: copied from "
                     "the first parent)")
    mix.add_argument("--preset", help="variant of released-format parents (default: meta.json)")
    mix.set_defaults(func=cmd_mix)

    export = sub.add_parser("export", help="a training checkpoint (any saved step) as a model "
                            "folder to chat with or evaluate")
    export.add_argument("run", help="the training run's out directory (config.yaml, checkpoints/)")
    export.add_argument("--step", type=int, help="the step to export (default: the newest saved)")
    export.add_argument("--out", help="output directory (default: RUN/exported/step-NNNNNNN)")
    export.set_defaults(func=cmd_export)

    plot = sub.add_parser("plot", help="loss and learning-rate curves of training runs as a PNG")
    plot.add_argument("runs", nargs="+", help="run directories (with metrics.jsonl)")
    plot.add_argument("--out", required=True, help="PNG path")
    plot.set_defaults(func=cmd_plot)


def cmd_serve(args) -> int:
    """``serve`` and ``demo``: load the model, then run the app until interrupted."""
    import os

    from .inference.pipeline import load
    from .media import ImageLimits
    from .serve import ServeConfig, serve

    try:
        import fastapi  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise SystemExit("error: serving needs the serve extra: pip install 'sphinx-mllm[serve]'")

    if args.device and args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no CUDA device")
    local = getattr(args, "allow_local_media", None)
    if local is not None and not Path(local).is_dir():
        raise SystemExit(f"error: --allow-local-media is not a directory: {local}")
    pipe = load(args.model, device=args.device,
                dtype=DTYPES[args.dtype] if args.dtype else None, max_batch=args.max_batch)
    demo = args.command == "demo"
    config = ServeConfig(
        model_name=args.served_model_name or Path(str(args.model)).name,
        api_key=None if demo else (args.api_key or os.environ.get("SPHINX_MLLM_API_KEY")),
        max_body_bytes=int(args.max_body_mb * 2**20),
        limits=ImageLimits(max_pixels=args.max_pixels, max_bytes=int(args.max_image_mb * 2**20)),
        local_media=Path(local) if local else None,
        remote_hosts=frozenset(h.lower() for h in getattr(args, "allow_remote_media", None) or ()),
        remote_timeout_s=getattr(args, "remote_timeout", 10.0),
        max_batch=args.max_batch, max_queue=args.max_queue, max_n=args.max_n,
        max_tokens_cap=args.max_tokens, demo=demo or args.demo)
    where = f"http://{args.host}:{args.port}"
    print(f"serving {config.model_name!r} on {where}" + (f" (demo page: {where}/)" if config.demo
                                                          else "")
          + f"; KV cache {pipe.engine.cache_bytes() / 2**30:.2f} GiB for {args.max_batch} "
          f"sequences of {pipe.max_seq_len} tokens", flush=True)
    serve(pipe, config, host=args.host, port=args.port, log_level=args.log_level)
    return 0


def add_serve_commands(sub) -> None:
    """``serve`` (OpenAI-compatible API) and ``demo`` (the same app with its web page)."""
    from .serve.config import DEFAULT_MODEL

    def common(p) -> None:
        p.add_argument("--model", default=DEFAULT_MODEL,
                       help=f"checkpoint directory or preset name (default: {DEFAULT_MODEL})")
        p.add_argument("--host", default="127.0.0.1")
        p.add_argument("--port", type=int, default=8000)
        p.add_argument("--served-model-name", help="the id clients send as 'model' "
                       "(default: the preset name or the checkpoint folder's name)")
        p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
        p.add_argument("--dtype", choices=sorted(DTYPES), default=None)
        p.add_argument("--max-batch", type=int, default=8,
                       help="sequences decoded together (engine cache slots; the KV cache is "
                       "max-batch x the context, printed at start)")
        p.add_argument("--max-queue", type=int, default=64,
                       help="choices waiting for a slot before requests get 503")
        p.add_argument("--max-n", type=int, default=8, help="largest n (choices per request)")
        p.add_argument("--max-tokens", type=int, default=1024,
                       help="largest max_tokens; also the default within the context")
        p.add_argument("--max-body-mb", type=float, default=48.0, help="request body limit")
        p.add_argument("--max-image-mb", type=float, default=32.0, help="encoded image limit")
        p.add_argument("--max-pixels", type=int, default=40_000_000,
                       help="decoded pixel limit, checked from the image header")
        p.add_argument("--log-level", default="info",
                       choices=["critical", "error", "warning", "info", "debug"])
        p.set_defaults(func=cmd_serve)

    srv = sub.add_parser("serve", help="OpenAI-compatible chat-completions API (docs/serving.md)")
    common(srv)
    srv.add_argument("--api-key", help="require 'Authorization: Bearer KEY' "
                     "(or set SPHINX_MLLM_API_KEY)")
    srv.add_argument("--allow-local-media", metavar="DIR",
                     help="accept file:// image URLs under DIR")
    srv.add_argument("--allow-remote-media", metavar="HOST", nargs="+",
                     help="fetch http(s) image URLs from these hosts (host or host:port)")
    srv.add_argument("--remote-timeout", type=float, default=10.0, help="seconds per fetch")
    srv.add_argument("--demo", action="store_true", help="also serve the demo page at /")
    demo = sub.add_parser("demo", help="web demo: upload an image, chat, see boxes and skeletons")
    common(demo)


def add_checkpoint_commands(sub) -> None:
    conv = sub.add_parser("convert", help="released SPHINX checkpoint -> our safetensors format")
    conv.add_argument("src", help="directory with consolidated.XX-of-YY.model.pth, config.json, "
                      "meta.json and tokenizer.model")
    conv.add_argument("dst", help="output directory")
    conv.add_argument("--preset", help="override the variant meta.json names")
    conv.add_argument("--max-shard-gb", type=float, default=5.0, help="shard size limit (GB)")
    conv.set_defaults(func=cmd_convert)

    asm = sub.add_parser("assemble", help="start a checkpoint from component weights "
                         "(projections and start/end vectors freshly initialised)")
    asm.add_argument("--preset", required=True, help="architecture, e.g. sphinx-1k or sphinx-tiny")
    asm.add_argument("--llm", required=True, help="HF LLaMA directory or Meta consolidated.*.pth dir")
    asm.add_argument("--clip", help="HF CLIP directory or open_clip state dict")
    asm.add_argument("--convnext", help="open_clip ConvNeXt-XXL open_clip_pytorch_model.bin")
    asm.add_argument("--dinov2", help="HF DINOv2 directory or hub .pth")
    asm.add_argument("--qformer", help="HF BLIP-2 directory")
    asm.add_argument("--tokenizer", required=True, help="SentencePiece tokenizer.model")
    asm.add_argument("--out", required=True, help="output directory")
    asm.add_argument("--dtype", choices=sorted(DTYPES), default="bfloat16")
    asm.add_argument("--seed", type=int, default=0, help="seed of the fresh projections")
    asm.set_defaults(func=cmd_assemble)


def add_eval_commands(sub) -> None:
    """The ``eval``, ``score`` and ``report`` sub-commands."""
    from .eval.benchmarks import BENCHMARK_NAMES

    ev = sub.add_parser("eval", help="answer a benchmark (resumable answers.jsonl), then score it")
    ev.add_argument("benchmark", choices=BENCHMARK_NAMES)
    ev.add_argument("--model", required=True, help="checkpoint directory or preset name")
    ev.add_argument("--data", required=True, help="the benchmark's downloaded folder")
    ev.add_argument("--out", required=True, help="run folder: answers.jsonl and metrics.json")
    ev.add_argument("--split", help="benchmark split (default: the benchmark's evaluation split)")
    ev.add_argument("--images", help="image folder when the images are not where the release puts them")
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--limit", type=int, default=None, help="only the first N items")
    ev.add_argument("--temperature", type=float, default=0.0,
                    help="0 = greedy (default); SPHINX's own scripts used 0.1 with top-p 0.75")
    ev.add_argument("--top-p", type=float, default=1.0)
    ev.add_argument("--seed", type=int, default=None)
    ev.add_argument("--max-new-tokens", type=int, default=None,
                    help="default: the benchmark's budget (spec 11.1)")
    ev.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ev.add_argument("--dtype", choices=sorted(DTYPES), default=None)
    ev.add_argument("--quantize", choices=["int8", "int4"], default=None,
                    help="weight-only quantization of the LLM's linear layers")
    ev.set_defaults(func=cmd_eval)

    score = sub.add_parser("score", help="score an answers JSONL file of any model")
    score.add_argument("benchmark", choices=BENCHMARK_NAMES)
    score.add_argument("--answers", required=True, help="JSONL: the benchmark's id fields + answer")
    score.add_argument("--data", required=True, help="the benchmark's downloaded folder")
    score.add_argument("--split")
    score.add_argument("--images", help="image folder (only read for image sizes when absent "
                       "from the annotations)")
    score.add_argument("--json", action="store_true", help="print one JSON object")
    score.set_defaults(func=cmd_score)

    report = sub.add_parser("report", help="Markdown + HTML page over runs, against published numbers")
    report.add_argument("runs", nargs="+", help="run folders written by `eval`")
    report.add_argument("--out", required=True, help="page path; .md and .html are both written")
    report.add_argument("--examples", type=int, default=4, help="drawn examples per run")
    report.set_defaults(func=cmd_report)


def cmd_toy_generate(args) -> int:
    from .toy.dataset import generate_world

    manifest = generate_world(args.seed, args.n, args.out, max_things=args.max_objects,
                              min_things=args.min_objects, colours=args.colours)
    print(json.dumps(manifest))
    return 0


def cmd_toy_eval(args) -> int:
    from .eval.runner import json_safe
    from .toy.evaluate import check_tasks, evaluate_seed, format_scores

    tasks = None
    if args.tasks is not None:
        try:
            tasks = check_tasks(t.strip() for t in args.tasks.split(",") if t.strip())
        except ValueError as e:
            raise SystemExit(f"--{e}") from None
    pipe = _load_pipeline(args)
    result = evaluate_seed(pipe, args.seed, args.n, args.out, batch_size=args.batch_size,
                           max_new_tokens=args.max_new_tokens, progress=not args.json,
                           tasks=tasks, max_things=args.max_objects, min_things=args.min_objects,
                           colours=args.colours)
    print(json.dumps(json_safe(result["summary"])) if args.json else format_scores(result))
    return 0


def cmd_toy_tokenizer(args) -> int:
    from .toy.tokenizer import train_tokenizer

    tokenizer = train_tokenizer(args.world, args.out, vocab_size=args.vocab_size,
                                coordinate_pieces=args.coordinate_pieces)
    print(f"wrote {args.out} ({tokenizer.vocab_size} pieces)")
    return 0


def cmd_toy_encoders(args) -> int:
    from .toy.encoders import run_encoder_stage

    metrics = run_encoder_stage(args.out, args.tokenizer, seed=args.seed, steps=args.steps,
                                batch_size=args.batch_size, lr=args.lr, bf16=args.bf16,
                                log_every=args.log_every, vit_stem=args.vit_stem)
    print(json.dumps(metrics, indent=2))
    return 0


def cmd_toy_graft(args) -> int:
    from .train.mix import graft

    print(f"wrote {graft(args.model, args.encoders, args.out)}")
    return 0


def cmd_toy_train(args) -> int:
    import dataclasses

    from .toy.recipe import QUICK, Budget, plot_recipe, run_recipe

    budget = QUICK if args.quick else Budget()
    if args.minutes is not None:
        budget = budget.scaled(args.minutes)
    budget = budget.with_overrides(args.set)
    final = run_recipe(args.out, budget, only=lambda name: print(f"stage {name}", flush=True))
    print(f"wrote {final}")
    print(f"wrote {plot_recipe(args.out, Path(args.out) / 'curves.png')}")
    print(json.dumps(dataclasses.asdict(budget)))
    return 0


def _add_shapes_per_scene(parser) -> None:
    """``--max-objects`` / ``--min-objects`` / ``--colours`` of ``toy generate`` and
    ``toy eval``."""
    from .toy.world import MAX_THINGS

    parser.add_argument("--max-objects", type=int, default=MAX_THINGS,
                        help="at most this many shapes per scene (1 for a curriculum world)")
    parser.add_argument("--min-objects", type=int, default=1,
                        help="at least this many shapes per scene (2 with --max-objects 2: "
                             "scenes of exactly two shapes)")
    parser.add_argument("--colours", type=int, default=None,
                        help="draw each scene's shapes from this many colours (1: one colour a "
                             "scene, so only shape, size, pattern or place tells them apart; "
                             "default: every colour)")


def add_toy_commands(sub) -> None:
    """``toy generate|tokenizer|encoders|graft|train|eval``: the procedural world
    (docs/toy-world.md)."""
    from .toy.seeds import HELD_OUT_START

    toy = sub.add_parser("toy", help="the procedural toy world: generate, tokenizer, encoders, "
                         "graft, train, eval")
    toy_sub = toy.add_subparsers(dest="toy_command", required=True)
    gen = toy_sub.add_parser("generate", help="write a world in the public dataset formats")
    gen.add_argument("--seed", type=int, required=True,
                     help=f"world seed; seeds >= {HELD_OUT_START} are held out for evaluation")
    gen.add_argument("--n", type=int, required=True, help="number of pictures")
    gen.add_argument("--out", required=True, help="output folder")
    _add_shapes_per_scene(gen)
    gen.set_defaults(func=cmd_toy_generate)

    tok = toy_sub.add_parser("tokenizer", help="train a SentencePiece tokenizer on a world's text")
    tok.add_argument("--world", required=True, help="a generated training world")
    tok.add_argument("--out", required=True, help="the .model file to write")
    tok.add_argument("--vocab-size", type=int, default=1024, help="upper bound on pieces")
    tok.add_argument("--coordinate-pieces", action="store_true",
                     help="one piece per coordinate (0.37) instead of digit by digit (0 . 3 7)")
    tok.set_defaults(func=cmd_toy_tokenizer)

    enc = toy_sub.add_parser("encoders", help="pre-train the toy-world encoders (dense supervision)")
    enc.add_argument("--tokenizer", required=True, help="the world tokenizer (.model)")
    enc.add_argument("--out", required=True, help="stage folder: metrics.jsonl, probe.json, final/")
    enc.add_argument("--seed", type=int, default=0, help="training world seed and init seed")
    enc.add_argument("--steps", type=int, default=2000)
    enc.add_argument("--batch-size", type=int, default=16, help="pictures per step")
    enc.add_argument("--lr", type=float, default=1e-3)
    enc.add_argument("--bf16", action="store_true", help="bf16 autocast (CPU AMX or GPU)")
    enc.add_argument("--log-every", type=int, default=50)
    enc.add_argument("--vit-stem", choices=STEMS, default="patch",
                     help="how CLIP and DINOv2 cut patches "
                     "(conv: docs/toy-world.md, Early convolutions)")
    enc.set_defaults(func=cmd_toy_encoders)

    graft = toy_sub.add_parser("graft", help="a trained model with its encoders replaced by those "
                               "of another checkpoint (e.g. a longer `toy encoders` run); "
                               "fine-tune it after")
    graft.add_argument("--model", required=True, help="the trained model (LLM, projections)")
    graft.add_argument("--encoders", required=True,
                       help="the checkpoint whose vision encoders to take (e.g. ENC/final)")
    graft.add_argument("--out", required=True, help="output checkpoint directory")
    graft.set_defaults(func=cmd_toy_graft)

    tr = toy_sub.add_parser("train", help="run the whole recipe (world, tokenizer, encoders, "
                            "[a question stage with --set question_steps=N], pretrain, "
                            "synthetic, mix, curriculum, [one-view REC with --set "
                            "rec_view_steps=N], finetune, [tail stages with --set tail=FILE]); "
                            "resumable")
    tr.add_argument("--out", required=True, help="run folder (stages already complete are skipped)")
    tr.add_argument("--minutes", type=float, default=None,
                    help="scale every stage's steps by MINUTES / the default recipe's minutes on "
                         "2 CPU cores (the optional stages add to that)")
    tr.add_argument("--quick", action="store_true",
                    help="a tiny world and a few steps per stage (CI smoke run)")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override one budget field, e.g. finetune_steps=600 (repeatable)")
    tr.set_defaults(func=cmd_toy_train)

    ev = toy_sub.add_parser("eval", help="score a model on a freshly generated held-out world")
    ev.add_argument("--model", default=None, help="checkpoint directory or preset name "
                    "(default: the bundled toy-world model)")
    ev.add_argument("--seed", type=int, required=True, help=f"a held-out seed (>= {HELD_OUT_START})")
    ev.add_argument("--n", type=int, default=300, help="number of pictures")
    ev.add_argument("--out", default=None, help="keep the world and the answers here")
    ev.add_argument("--json", action="store_true", help="print one JSON object of fractions")
    ev.add_argument("--tasks", default=None, metavar="A,B",
                    help="score only these toy tasks, comma-separated (e.g. vqa,rec; an unknown "
                         "name lists them; default: all but where, a diagnostic of which shape a "
                         "question finds); the others are not scored")
    _add_shapes_per_scene(ev)
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--max-new-tokens", type=int, default=None,
                    help="cap every task's answer budget (smoke tests)")
    ev.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    ev.add_argument("--dtype", choices=sorted(DTYPES), default=None)
    ev.set_defaults(func=cmd_toy_eval)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sphinx-mllm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    info = sub.add_parser("info", help="visual tokens and parameter counts of a preset or checkpoint")
    info.add_argument("model", help="preset name, checkpoint directory or config JSON")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)

    chat = sub.add_parser("chat", help="answer one question about an image")
    chat.add_argument("question")
    chat.add_argument("--model", default=None, help="checkpoint directory or preset name "
                      "(presets have random weights); default: the bundled toy-world model")
    chat.add_argument("--image", help="image file; omit for a text-only chat")
    chat.add_argument("--json", action="store_true", help="print answer, tokens, finish reason and "
                      "objects (boxes/points/keypoints in original-image pixels) as JSON")
    chat.add_argument("--stream", action="store_true", help="print the answer as it is generated")
    chat.add_argument("--max-new-tokens", type=int, default=128)
    chat.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    chat.add_argument("--top-p", type=float, default=1.0)
    chat.add_argument("--top-k", type=int, default=0)
    chat.add_argument("--seed", type=int, default=None)
    chat.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    chat.add_argument("--dtype", choices=sorted(DTYPES), default=None,
                      help="default: bfloat16 on GPU, as stored on CPU")
    chat.add_argument("--quantize", choices=["int8", "int4"], default=None,
                      help="weight-only quantization of the LLM's linear layers (int8 on CPU: "
                      "use --dtype bfloat16; int4 needs torchao and CUDA)")
    chat.set_defaults(func=cmd_chat)

    data = sub.add_parser("data", help="dataset conversion and mixture statistics")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    conv = data_sub.add_parser("convert", help="convert a downloaded dataset to conversation JSONL")
    conv.add_argument("--format", required=True, help="dataset format, e.g. coco-instances, refcoco")
    conv.add_argument("--root", required=True, help="dataset directory (annotations)")
    conv.add_argument("--images", help="image folder when the images are not under --root")
    conv.add_argument("--split", help="split to read (RefCOCO, VQA, ...)")
    conv.add_argument("--out", required=True, help="output .jsonl")
    conv.add_argument("--seed", type=int, default=0, help="seed of the per-sample prompt choice")
    conv.set_defaults(func=cmd_data_convert)
    stats = data_sub.add_parser(
        "stats", help="per-source counts, shares of the draws and token-length percentiles")
    stats.add_argument("config", help="mixture YAML (LLaMA2-Accessory META list + format/weight)")
    stats.add_argument("--preset", default="sphinx-1k", help="counts this preset's visual tokens")
    stats.add_argument("--tokenizer", help="tokenizer.model (default: the bundled toy tokenizer)")
    stats.add_argument("--seed", type=int, default=0)
    stats.set_defaults(func=cmd_data_stats)

    add_checkpoint_commands(sub)
    add_eval_commands(sub)
    add_toy_commands(sub)
    add_serve_commands(sub)
    add_train_commands(sub)
    return parser


USER_ERRORS = (OSError, KeyError, ValueError)
"""What the library raises for a bad path, file, name or value (OSError covers a missing file and
an image PIL cannot read): ``main`` prints these as one ``error:`` line instead of a traceback."""


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        raise SystemExit(f"error: {err}")


if __name__ == "__main__":
    sys.exit(main())
