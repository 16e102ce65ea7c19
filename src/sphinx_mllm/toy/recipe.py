"""The toy recipe end to end: ``sphinx-mllm toy train --out DIR`` (docs/toy-world.md).

One driver over the project's real tools, stage after stage, in one run folder:

==================  =========================================================================
stage               what (tool)
==================  =========================================================================
``world``           training world, seed 0 (:func:`~.dataset.generate_world`)
``world-1obj``      curriculum world, one shape per scene, seed 1
``val-world``       validation world, held-out seed 1000 (beta choice, validation points)
``tokenizer``       SentencePiece on the training world (:func:`~.tokenizer.train_tokenizer`)
``encoders``        dense encoder pre-training, then frozen (:func:`~.encoders.run_encoder_stage`;
                    ``encoders_from``: another checkpoint's encoders instead)
``world-crowded``   three to five shapes per scene, seed 4 (only with ``question_steps``)
``questions-data``  its and the training world's colour questions about scenes of 2+ shapes
                    (:func:`write_question_subset`; only with ``question_steps``)
``questions``       those questions alone, from the encoder stage's checkpoint (``questions.yaml``;
                    only with ``question_steps``; the pretrain then starts from it)
``pretrain``        LLM unfrozen on web captions + text (``train``, ``configs/toy/pretrain.yaml``)
``synthetic``       a copy tuned on synthetic captions (``configs/toy/synthetic.yaml``)
``mix``             ``mix`` at several betas; beta chosen on the validation world by caption CIDEr
``curriculum``      multi-task tuning on the one-shape world, REC-heavy (``curriculum.yaml``)
``world-2shapes``   two shapes per scene, seed 3 (only with ``rec_view_steps``)
``rec-two-shapes``  REC and REG on the two-shape world, global view alone (``rec-two-shapes.yaml``,
                    only with ``rec_view_steps``; the finetune then keeps its source, 5 views)
``finetune``        multi-task tuning on every task of the training world (``finetune.yaml``)
``tail-*``          more multi-task stages, each from the one before, with their own steps,
                    learning rates and source weights (only with ``tail``: a file such as
                    ``configs/toy/tail-pose.yaml``; :func:`read_tail`)
==================  =========================================================================

After ``curriculum``, ``rec-two-shapes``, ``finetune`` and each ``tail-*`` stage the model is
scored on the validation world (``toy eval``'s code; the validation points of the learning
curve). The last stage's ``final/`` is the recipe's model.

Every stage is skipped when its output is complete (a world's ``world.json``, a checkpoint's
``final/``, a JSON result), and the training stages resume from their last checkpoint
(``resume: auto``), so the command can be rerun after an interruption. Each stage writes
``logs/<stage>.log``; training stages write ``<stage>/metrics.jsonl``; ``recipe.jsonl`` holds one
line per finished stage (seconds, and validation scores where the stage measured them), from
which :func:`plot_recipe` draws the learning curves.

The mixtures in ``configs/toy/`` name the world as ``runs/toy/...`` relative to the repository;
the driver writes copies into ``DIR/data/`` with those paths moved under ``DIR``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from ..config import STEMS, SphinxConfig
from ..data import layouts
from ..data.files import read_json, write_json
from .seeds import HELD_OUT_START, TRAIN_SPLIT

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "toy"
"""``configs/toy`` of the source checkout (the recipe's stage configs and mixtures)."""
DEFAULT_RUNS = CONFIGS.parent.parent / "runs" / "toy"
"""Where the mixtures in ``configs/toy`` expect the world (``runs/toy`` of the checkout)."""
VAL_SEED = HELD_OUT_START


@dataclass(frozen=True)
class Budget:
    """Sizes and step counts of one recipe run."""

    world_n: int = 20_000
    world_1obj_n: int = 4_000
    val_n: int = 100
    encoder_steps: int = 1200
    encoder_batch: int = 16
    encoder_lr: float = 3e-3
    vit_stem: str = "patch"  # "conv": the sixth and seventh runs' CLIP / DINOv2
    # (docs/toy-world-runs.md)
    coordinate_pieces: bool = False  # one tokenizer piece per coordinate (eleventh run;
    # toy.tokenizer)
    pretrain_steps: int = 120
    synthetic_steps: int = 50
    betas: tuple[float, ...] = (0.0, 0.5, 1.0)
    beta_val_n: int = 40
    curriculum_steps: int = 300
    shape_scale: float = 1.0  # > 1: the visual projection starts with the shape's directions
    # scaled by it (``encoders.emphasise_attribute``; twenty-sixth run: 3); 1 leaves it fresh
    encoders_from: str = ""  # a checkpoint whose encoders the encoder stage takes instead of
    # pre-training them (``encoders.take_encoders``; twenty-seventh run: the bundled model's)
    question_steps: int = 0  # > 0: a first LLM stage on "What color is the circle?" about scenes
    # of two or more shapes, the one question that names a shape by its shape alone
    # (twenty-seventh run: 600); 0 leaves it and its world out
    world_crowded_n: int = 40_000  # pictures of that stage's second world (seed 4, 3-5 shapes each)
    rec_view_steps: int = 0  # REC on two-shape scenes on the global view alone before the
    # finetune, which keeps that source on five views (fifteenth run); 0 leaves both out
    world_2shapes_n: int = 50_000  # pictures of that stage's world (seed 3, two shapes each)
    finetune_steps: int = 3500  # packed conversations: a step costs ~1.18x an unpacked one
    batch_size: int = 32
    finetune_batch_size: int = 16  # more, smaller steps for the longest stage
    tail: str = ""  # a file in configs/toy listing stages after the finetune ("": none)
    tail_scale: float = 1.0  # multiplies the tail stages' steps (``scaled`` and QUICK set it)
    eval_max_new_tokens: int | None = None  # cap on every answer (quick runs only)
    train_seed: int = 0  # every training stage's seed (init, draws, the encoder stage's pictures)
    num_workers: int | None = None  # data-loading processes per training stage; None: GPU_WORKERS
    # when CUDA is available (the stages would wait on the data), 0 on a CPU (2 cores: no spare)

    def __post_init__(self):
        if self.vit_stem not in STEMS:  # fail at the start, not after the world is generated
            raise ValueError(f"vit_stem {self.vit_stem!r}: choose among {list(STEMS)}")
        if isinstance(self.shape_scale, bool) or not isinstance(self.shape_scale, (int, float)) \
                or self.shape_scale <= 0:  # else it fails only after the encoders have trained
            raise ValueError(f"shape_scale {self.shape_scale!r}: expected a number above 0")
        for f in dataclasses.fields(self):  # counts, steps, sizes, seeds (annotations are text)
            value = getattr(self, f.name)
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)
                                    or value < 0):
                raise ValueError(f"{f.name} {value!r}: expected a whole number >= 0")
        if not isinstance(self.encoders_from, str):
            raise ValueError(f"encoders_from {self.encoders_from!r}: expected a checkpoint folder")

    def workers(self) -> int:
        """``num_workers``, or its default for this machine."""
        if self.num_workers is not None:
            return self.num_workers
        import torch
        return GPU_WORKERS if torch.cuda.is_available() else 0

    def scaled(self, minutes: float) -> "Budget":
        """The step counts scaled so that the training stages fit ``minutes`` at the rates this
        budget was calibrated for (:data:`FULL_MINUTES`)."""
        f = minutes / FULL_MINUTES
        return dataclasses.replace(
            self, encoder_steps=max(1, round(self.encoder_steps * f)),
            pretrain_steps=max(1, round(self.pretrain_steps * f)),
            synthetic_steps=max(1, round(self.synthetic_steps * f)),
            curriculum_steps=max(1, round(self.curriculum_steps * f)),
            question_steps=self.question_steps and max(1, round(self.question_steps * f)),
            rec_view_steps=self.rec_view_steps and max(1, round(self.rec_view_steps * f)),
            tail_scale=self.tail_scale * f,
            finetune_steps=max(1, round(self.finetune_steps * f)))

    def with_overrides(self, items: list[str]) -> "Budget":
        """``["finetune_steps=600", "betas=[0, 0.5, 1]"]`` -> a copy with those fields (YAML values)."""
        fields = {f.name for f in dataclasses.fields(self)}
        changes = {}
        for item in items:
            key, sep, raw = item.partition("=")
            if not sep or key not in fields:
                raise ValueError(f"budget override {item!r}: expected KEY=VALUE with KEY among "
                                 f"{', '.join(sorted(fields))}")
            value = yaml.safe_load(raw)
            changes[key] = tuple(value) if isinstance(value, list) else value
        return dataclasses.replace(self, **changes)


GPU_WORKERS = 4
"""DataLoader processes per training stage when CUDA is available: on an H200 the stages' steps
took 0.04-0.10 s on average, against 0.016 s to draw a finetune batch of 16 and 0.046 s for the
encoder stage's 16 pictures in one process (docs/toy-world-runs.md, "Tenth run")."""

FULL_MINUTES = 82.0
"""Wall-clock minutes of the default :class:`Budget`'s stages after the world and tokenizer, on 2
CPU cores: the ninth run in docs/toy-world-runs.md, the first to run the packed recipe end to end in
one go, took 81.6 (4,894 s: encoders 689, pretrain 156, synthetic 89, mix 22, curriculum 666,
finetune 3,273, validations included), and 82.7 with the world and tokenizer."""

QUICK = Budget(world_n=48, world_1obj_n=24, val_n=8, encoder_steps=3, encoder_batch=2,
               pretrain_steps=3, synthetic_steps=2, betas=(0.0, 0.5, 1.0), beta_val_n=6,
               curriculum_steps=16, rec_view_steps=4, world_2shapes_n=12, finetune_steps=3,
               question_steps=2, world_crowded_n=12,
               tail="tail-pose.yaml", tail_scale=0.001, batch_size=4, finetune_batch_size=4,
               eval_max_new_tokens=8)
"""A shortened recipe for CI: a tiny world, a few steps per stage (the curriculum stage long
enough for its loss to fall), the optional one-view REC stage and tail included (2 or 3 steps a
tail stage), and answers cut at 8 tokens. Too short to learn the answer formats:
100 curriculum steps of 4 still answered REC with ``[0.30.30.30...``."""


@dataclass
class Run:
    out: Path
    budget: Budget
    configs: Path = CONFIGS

    def path(self, *parts: str) -> Path:
        return self.out.joinpath(*parts)

    def record(self, stage: str, seconds: float, **extra) -> None:
        with open(self.path("recipe.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"stage": stage, "seconds": round(seconds, 1),
                                "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                                **extra}) + "\n")


@contextlib.contextmanager
def stage_log(path: Path):
    """Send stdout, stderr (progress bars) and the ``logging`` records of one stage to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        handler = logging.StreamHandler(f)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))
        root = logging.getLogger()
        old_level = root.level
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(f), contextlib.redirect_stderr(f):
                yield
        finally:
            root.removeHandler(handler)
            root.setLevel(old_level)


# --- mixtures and stage configs ----------------------------------------------------------------


Weights = dict[str, dict[str, float]]
"""New source weights: mixture file -> {source format: weight} (a tail stage's ``weights``)."""


def _source_of(entries: list[dict], fmt: str, where: str) -> dict:
    """The one entry of a mixture whose ``format`` is ``fmt``."""
    found = [e for e in entries if e.get("format") == fmt]
    if len(found) != 1:
        formats = sorted({e["format"] for e in entries if "format" in e})
        raise ValueError(f"{where}: {len(found)} sources have format {fmt!r}; a weight needs "
                         f"exactly one (formats: {', '.join(formats)})")
    return found[0]


def rebase_mixture(names: str | tuple[str, ...], run: Run, weights: Weights | None = None,
                   tag: str | None = None) -> Path:
    """The sources of ``configs/toy/<name>`` (of several names, in order: one mixture) with every
    path under ``runs/toy`` moved under the run folder and ``weights`` applied; written to
    ``DIR/data/<tag>.yaml``, or ``DIR/data/<name>`` (names joined by ``+``), and returned."""
    names = (names,) if isinstance(names, str) else names
    default = DEFAULT_RUNS.resolve()
    sources = []
    for name in names:
        src = run.configs / name
        entries = yaml.safe_load(src.read_text())["META"]
        for fmt, weight in (weights or {}).get(name, {}).items():
            _source_of(entries, fmt, str(src))["weight"] = float(weight)
        for entry in entries:
            for key in ("path", "root"):
                if key in entry:
                    resolved = (src.parent / entry[key]).resolve()
                    entry[key] = str(run.out.resolve() / resolved.relative_to(default))
            sources.append(entry)
    target = run.path("data", f"{tag}.yaml" if tag else "+".join(names))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump({"META": sources}, sort_keys=False))
    return target


def train_stage(run: Run, config: str, model: Path, data: str | tuple[str, ...], steps: int,
                out: str, batch_size: int, extra: tuple[str, ...] = (),
                weights: Weights | None = None) -> Path:
    """``sphinx-mllm train configs/toy/<config> model=... data=... out=... steps=...
    batch_size=...`` (then ``extra`` overrides), on ``data`` with ``weights`` applied (given,
    even empty, the mixture is written as ``DIR/data/<out>.yaml``)."""
    from ..train.config import load_config
    from ..train.trainer import train

    mixture = rebase_mixture(data, run, weights, tag=None if weights is None else out)
    overrides = [f"model={model}", f"data={mixture}", f"out={run.path(out)}",
                 f"steps={steps}", f"batch_size={batch_size}",
                 f"save_every={max(1, min(50, steps // 4))}", f"seed={run.budget.train_seed}",
                 f"num_workers={run.budget.workers()}", *extra]
    if steps < 10:  # warm-up cannot exceed a tiny stage
        overrides.append(f"optim.warmup_steps={max(1, steps // 2)}")
    return train(load_config(run.configs / config, overrides))


# --- validation --------------------------------------------------------------------------------


def validate(run: Run, model: Path, name: str, tasks: tuple[str, ...] | None = None,
             world: str = "val-world") -> dict:
    """Scores of ``model`` on the validation world (all tasks, or ``tasks``), cached in
    ``DIR/val/<name>.json`` (answers resumable under ``DIR/val/<name>/``)."""
    from ..eval.runner import json_safe
    from ..inference.pipeline import load
    from .evaluate import evaluate

    target = run.path("val", f"{name}.json")
    if target.exists():
        return json.loads(target.read_text())
    pipe = load(model)
    try:
        result = evaluate(pipe, run.path(world), run.path("val", name), tasks=tasks,
                          max_new_tokens=run.budget.eval_max_new_tokens)
    finally:
        pipe.close()  # a kept engine worker (CUDA) would outlive the stage
    summary = json_safe(result["summary"])
    target.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def caption_score(summary: dict) -> float:
    """The beta criterion: mean caption CIDEr-D of the two domains on the validation world."""
    values = [summary.get("caption_cider_web") or 0.0, summary.get("caption_cider_synthetic") or 0.0]
    return sum(values) / 2


# --- the stages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    name: str
    done: Callable[[Run], bool]
    run: Callable[[Run], dict | None]


def _world(seed: int, n_of: Callable[[Budget], int], folder: str, max_things: int = 5,
           min_things: int = 1) -> Stage:
    from .dataset import generate_world

    def go(run: Run) -> dict:
        manifest = generate_world(seed, n_of(run.budget), run.path(folder), max_things=max_things,
                                  min_things=min_things)
        return {"counts": manifest.get("counts")}
    return Stage(folder, lambda run: run.path(folder, "world.json").exists(), go)


def _tokenizer(run: Run) -> None:
    from .tokenizer import train_tokenizer
    train_tokenizer(run.path("world"), run.path("tokenizer.model"),
                    coordinate_pieces=run.budget.coordinate_pieces)


def _encoders(run: Run) -> dict:
    from .encoders import run_encoder_stage
    metrics = run_encoder_stage(run.path("encoders"), run.path("tokenizer.model"),
                                seed=run.budget.train_seed, steps=run.budget.encoder_steps,
                                batch_size=run.budget.encoder_batch, lr=run.budget.encoder_lr,
                                vit_stem=run.budget.vit_stem, workers=run.budget.workers(),
                                log_every=max(1, min(25, run.budget.encoder_steps)),
                                shape_scale=run.budget.shape_scale,
                                encoders_from=run.budget.encoders_from or None)
    emphasis = run.path("encoders", "emphasis.json")
    made = "source" if run.budget.encoders_from else "probe"  # copied, or pre-trained here
    return {made: metrics, **({"emphasis": json.loads(emphasis.read_text())}
                              if emphasis.exists() else {})}


QUESTION_WORLDS = ("world", "world-crowded")
"""The training worlds whose questions the question stage draws (``data-questions.yaml``)."""


def write_question_subset(world: str | Path, out: str | Path, family: str = "colour",
                          min_shapes: int = 2) -> int:
    """Write to ``out`` the VQAv2 question and annotation files of ``world`` with only its
    ``family`` questions about scenes of at least ``min_shapes`` shapes ("What color is the
    circle?" there names the shape by its shape alone); the images stay in ``world`` (a
    mixture's ``root``). Returns how many questions were kept."""
    from .evaluate import question_families, scene_shapes
    from .seeds import read_manifest

    world, out = Path(world), Path(out)
    split = read_manifest(world)["split"]
    files, written = layouts.vqav2(world, split), layouts.vqav2(out, split)
    families, scenes = question_families(world), scene_shapes(world)
    questions, annotations = read_json(files.questions), read_json(files.annotations)
    kept = {q["question_id"] for q in questions["questions"]
            if families[str(q["question_id"])] == family
            and len(scenes.get(files.image(q["image_id"]).name, ())) >= min_shapes}
    questions["questions"] = [q for q in questions["questions"] if q["question_id"] in kept]
    annotations["annotations"] = [a for a in annotations["annotations"]
                                  if a["question_id"] in kept]
    write_json(written.questions, questions)  # the annotations last and atomically: the
    write_json(written.annotations, annotations)  # stage counts as done once they exist
    return len(kept)


def _questions_data(run: Run) -> dict:
    return {"questions": {world: write_question_subset(run.path(world),
                                                       run.path("questions-data", world))
                          for world in QUESTION_WORLDS}}


def _mix(run: Run) -> dict:
    from ..train.mix import mix

    betas = run.budget.betas
    # A = synthetic copy, B = pre-trained (web): beta is the synthetic share. ``mix`` writes one
    # beta straight into its ``out``, several into ``out/beta-<b>``: ask for the latter always.
    out = run.path("mixed", f"beta-{betas[0]:g}") if len(betas) == 1 else run.path("mixed")
    mix(run.path("synthetic", "final"), run.path("pretrain", "final"), out, betas,
        include_projector=True)
    scores = {}
    for beta in betas:
        summary = validate(run, run.path("mixed", f"beta-{beta:g}"), f"beta-{beta:g}",
                           tasks=("caption_web", "caption_synthetic"), world="val-world-beta")
        scores[f"{beta:g}"] = {"caption_cider_web": summary["caption_cider_web"],
                               "caption_cider_synthetic": summary["caption_cider_synthetic"],
                               "score": caption_score(summary)}
    chosen = max(scores, key=lambda b: scores[b]["score"])
    choice = {"criterion": "mean caption CIDEr-D (web, synthetic) on validation seed "
                           f"{VAL_SEED}", "scores": scores, "beta": chosen}
    run.path("mixed", "choice.json").write_text(json.dumps(choice, indent=2) + "\n")
    return choice


def chosen_mix(run: Run) -> Path:
    beta = json.loads(run.path("mixed", "choice.json").read_text())["beta"]
    return run.path("mixed", f"beta-{beta}")


def _trained(name: str, config: str, data: str | tuple[str, ...],
             model_of: Callable[[Run], Path], steps_of: Callable[[Budget], int],
             batch_of: Callable[[Budget], int] = lambda b: b.batch_size,
             extra: tuple[str, ...] = (), weights: Weights | None = None,
             validated: bool = False) -> Stage:
    """A training stage; ``validated``: followed by a validation of every task (a point of the
    validation curve)."""
    def go(run: Run) -> dict:
        final = train_stage(run, config, model_of(run), data, steps_of(run.budget), name,
                            batch_of(run.budget), extra, weights)
        return {"val": validate(run, final, name)} if validated else {}
    return Stage(name, lambda run: run.path(name, "final").exists(), go)


@dataclass(frozen=True)
class TailStage:
    """One stage of a tail file (``configs/toy/tail-pose.yaml`` explains the format)."""

    name: str
    steps: int
    lr: float
    min_lr: float
    weights: Weights = dataclasses.field(default_factory=dict)
    warmup_steps: int = 30


TAIL_PREFIX = "tail-"
"""Every tail stage's name starts so (its folder, log and validation are named after it)."""


def _tail_file(name: str, configs: Path) -> Path:
    path = configs / name
    if Path(name).name != name or not path.is_file():
        known = sorted(p.name for p in configs.glob(f"{TAIL_PREFIX}*.yaml"))
        raise ValueError(f"tail {name!r}: name a file in {configs} ({', '.join(known)})")
    return path


def read_tail(name: str, mixtures: tuple[str, ...], configs: Path = CONFIGS) -> list[TailStage]:
    """The stages of ``configs/<name>``, checked against the finetune's mixture files
    ``mixtures`` (each weight must name one source of one of them) and for sane numbers."""
    path = _tail_file(name, configs)
    fields = {f.name: f for f in dataclasses.fields(TailStage)}
    required = {n for n, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    tail: list[TailStage] = []
    for i, entry in enumerate((yaml.safe_load(path.read_text()) or {}).get("stages") or []):
        where = f"{path}: stages[{i}]"
        if not isinstance(entry, dict):
            raise ValueError(f"{where}: expected a mapping of {', '.join(fields)}")
        unknown, missing = sorted(set(entry) - set(fields)), sorted(required - set(entry))
        if unknown or missing:
            raise ValueError(f"{where}: unknown keys {unknown}, missing keys {missing} (known: "
                             f"{', '.join(fields)})")
        try:
            weights = {m: {fmt: float(w) for fmt, w in by_format.items()}
                       for m, by_format in (entry.get("weights") or {}).items()}
            stage = TailStage(**{**entry, "name": str(entry["name"]), "steps": int(entry["steps"]),
                                 "lr": float(entry["lr"]), "min_lr": float(entry["min_lr"]),
                                 "weights": weights})
            stage = dataclasses.replace(stage, warmup_steps=int(stage.warmup_steps))
        except (TypeError, ValueError, AttributeError) as e:
            raise ValueError(f"{where}: {e}") from None
        if stage.steps < 1 or stage.warmup_steps < 0 or not 0 <= stage.min_lr <= stage.lr or \
                stage.lr <= 0 or any(w < 0 for f in weights.values() for w in f.values()):
            raise ValueError(f"{where}: needs steps >= 1, 0 <= min_lr <= lr, lr > 0, "
                             "warmup_steps >= 0 and weights >= 0")
        if not stage.name.startswith(TAIL_PREFIX) or stage.name in {t.name for t in tail}:
            raise ValueError(f"{where}: name {stage.name!r} must start with {TAIL_PREFIX!r} and "
                             "be unique")
        for mixture, by_format in weights.items():
            if mixture not in mixtures:
                raise ValueError(
                    f"{where}: weights for {mixture}, which the finetune does not use (its "
                    f"mixture: {', '.join(mixtures)}; data-two-shapes.yaml joins it with "
                    "--set rec_view_steps=N)")
            entries = yaml.safe_load((configs / mixture).read_text())["META"]
            for fmt in by_format:
                _source_of(entries, fmt, where)
        tail.append(stage)
    if not tail:
        raise ValueError(f"{path}: no stages")
    return tail


def _tail_stages(budget: Budget, mixtures: tuple[str, ...], configs: Path) -> list[Stage]:
    """One training stage per stage of ``budget.tail``, each from the one before it; seeds
    ``train_seed + 1``, ``+ 2``, ... so that no two replay the same draws."""
    out, previous = [], "finetune"
    for i, t in enumerate(read_tail(budget.tail, mixtures, configs) if budget.tail else []):
        out.append(_trained(
            t.name, "finetune.yaml", mixtures,
            model_of=lambda run, p=previous: run.path(p, "final"),
            steps_of=lambda b, n=t.steps: max(1, round(n * b.tail_scale)),
            batch_of=lambda b: b.finetune_batch_size,
            extra=(f"seed={budget.train_seed + i + 1}", f"optim.lr={t.lr}",
                   f"optim.min_lr={t.min_lr}", f"optim.warmup_steps={t.warmup_steps}"),
            weights=t.weights, validated=True))
        previous = t.name
    return out


def finetune_mixtures(budget: Budget) -> tuple[str, ...]:
    """The mixture files of the finetune and the tail stages (with the one-view REC stage, its
    two-shape source joins every task of the world)."""
    return ("data-all.yaml",) + (("data-two-shapes.yaml",) if budget.rec_view_steps > 0 else ())


def stages(budget: Budget, configs: Path = CONFIGS) -> list[Stage]:
    """The stages ``budget`` runs, in order (a tail file is read and checked here)."""
    with_rec_view = budget.rec_view_steps > 0
    with_questions = budget.question_steps > 0
    mixtures = finetune_mixtures(budget)
    questions = [
        _world(4, lambda b: b.world_crowded_n, "world-crowded", max_things=5, min_things=3),
        Stage("questions-data", lambda run: all(
            layouts.vqav2(run.path("questions-data", w), TRAIN_SPLIT).annotations.exists()
            for w in QUESTION_WORLDS), _questions_data),
        _trained("questions", "questions.yaml", "data-questions.yaml",
                 lambda run: run.path("encoders", "final"), lambda b: b.question_steps),
    ] if with_questions else []
    rec_view = [
        _world(3, lambda b: b.world_2shapes_n, "world-2shapes", max_things=2, min_things=2),
        _trained("rec-two-shapes", "rec-two-shapes.yaml", "data-two-shapes.yaml",
                 lambda run: run.path("curriculum", "final"), lambda b: b.rec_view_steps,
                 lambda b: b.finetune_batch_size,  # the fifteenth run's batch of 16
                 validated=True),
    ] if with_rec_view else []
    return [
        _world(0, lambda b: b.world_n, "world"),
        _world(1, lambda b: b.world_1obj_n, "world-1obj", max_things=1),
        _world(VAL_SEED, lambda b: b.val_n, "val-world"),
        _world(VAL_SEED, lambda b: b.beta_val_n, "val-world-beta"),
        Stage("tokenizer", lambda run: run.path("tokenizer.model").exists(), _tokenizer),
        Stage("encoders", lambda run: run.path("encoders", "final").exists(), _encoders),
        *questions,
        _trained("pretrain", "pretrain.yaml", "data-web.yaml",
                 lambda run: run.path("questions" if with_questions else "encoders", "final"),
                 lambda b: b.pretrain_steps),
        _trained("synthetic", "synthetic.yaml", "data-synthetic.yaml",
                 lambda run: run.path("pretrain", "final"), lambda b: b.synthetic_steps),
        Stage("mix", lambda run: run.path("mixed", "choice.json").exists(), _mix),
        _trained("curriculum", "curriculum.yaml", "data-curriculum.yaml", chosen_mix,
                 lambda b: b.curriculum_steps, validated=True),
        *rec_view,
        _trained("finetune", "finetune.yaml", mixtures,
                 lambda run: run.path("rec-two-shapes" if with_rec_view else "curriculum", "final"),
                 lambda b: b.finetune_steps, lambda b: b.finetune_batch_size,
                 # back to the preset's views after the one-view stage
                 (f"grid={SphinxConfig.from_name('toy-world').grid}",) if with_rec_view else (),
                 validated=True),
        *_tail_stages(budget, mixtures, configs),
    ]


ENCODER_MADE = ("vit_stem", "shape_scale", "encoders_from")
"""Budget fields that shape the encoder stage's checkpoint, which every later stage starts from."""


def _check_stage_list(run: Run) -> None:
    """Refuse to change what the encoder stage's checkpoint is made with (:data:`ENCODER_MADE`)
    once it is written, to switch the one-view REC stage on or off in a folder whose finetune
    has started (the finetune's source model and mixture depend on it), or to change the tail
    file once a tail stage has started."""
    saved = run.path("budget.json")
    if not saved.exists():
        return
    before = json.loads(saved.read_text())
    made = {key: before.get(key, getattr(Budget(), key)) for key in ENCODER_MADE}
    asked = {key: getattr(run.budget, key) for key in ENCODER_MADE}
    if run.path("encoders", "final").exists() and made != asked:
        raise ValueError(f"{run.out}: its encoder stage was written with {made} (budget.json), "
                         f"not {asked}; use a new folder")
    for steps, after, what in (("question_steps", "pretrain", "the question stage"),
                               ("rec_view_steps", "finetune", "the one-view REC stage")):
        was_on = before.get(steps, 0) > 0  # the stage after it starts from its checkpoint
        if run.path(after).exists() and was_on != (getattr(run.budget, steps) > 0):
            raise ValueError(f"{run.out}: its {after} started with {what} "
                             f"{'on' if was_on else 'off'} (budget.json); use a new folder")
    if not any(run.out.glob(f"{TAIL_PREFIX}*")):
        return
    saved_tail = run.path("tail.yaml")  # the file as the first tail stage read it
    now = (run.budget.tail or "", run.budget.tail_scale,
           _tail_file(run.budget.tail, run.configs).read_text() if run.budget.tail else "")
    then = (before.get("tail") or "", before.get("tail_scale", 1.0),
            saved_tail.read_text() if saved_tail.exists() else "")
    if now != then:
        raise ValueError(f"{run.out}: its tail stages started with tail={then[0]!r}, "
                         f"tail_scale={then[1]} (budget.json) and the file as in {saved_tail}; "
                         "a changed tail would change their seeds, sources or schedules: use a "
                         "new folder")


def run_recipe(out: str | Path, budget: Budget = Budget(), configs: str | Path = CONFIGS,
               only: Callable[[str], None] | None = None) -> Path:
    """Run every stage not yet complete; return the last stage's final checkpoint
    (``DIR/finetune/final``, or the last tail stage's). ``only`` is called with each stage's
    name as it starts (progress for the CLI)."""
    # absolute: the stages' training configs resolve relative paths from their own folder
    run = Run(Path(out).absolute(), budget, Path(configs))
    plan = stages(budget, run.configs)  # a bad tail file fails here, before any stage runs
    if budget.encoders_from and not Path(budget.encoders_from).is_dir():
        raise FileNotFoundError(f"encoders_from {budget.encoders_from!r}: no such checkpoint "
                                "directory")
    run.out.mkdir(parents=True, exist_ok=True)
    _check_stage_list(run)
    run.path("budget.json").write_text(json.dumps(dataclasses.asdict(budget), indent=2) + "\n")
    if budget.tail:
        run.path("tail.yaml").write_text(_tail_file(budget.tail, run.configs).read_text())
    for stage in plan:
        if stage.done(run):
            continue
        if only is not None:
            only(stage.name)
        start = time.perf_counter()
        with stage_log(run.path("logs", f"{stage.name}.log")):
            extra = stage.run(run) or {}
        run.record(stage.name, time.perf_counter() - start, **extra)
    return run.path(plan[-1].name, "final")


# --- learning curves ---------------------------------------------------------------------------


CURVE_KEYS = ("vqa_acc", "highres_acc", "rec_acc50", "det_map50", "layout_map50", "pose_pck10")


def _stage_curve(run: Path, stage: str) -> list[tuple[float, float]]:
    """(seconds since the stage started, loss) from ``metrics.jsonl`` (the trainer writes
    ``step_s``; the encoder stage writes cumulative ``seconds``); none for a stage that does
    not train."""
    points, clock = [], 0.0
    path = run / stage / "metrics.jsonl"
    if not path.exists():
        return points
    for line in path.read_text().splitlines():
        rec = json.loads(line)
        clock = rec["seconds"] if "seconds" in rec else clock + rec["step_s"]
        points.append((clock, rec["loss"]))
    return points


LOSS_WINDOW = 50
"""Most logged steps in the running mean of the plotted training loss (a twentieth of a stage's
points when that is fewer; the raw points are drawn faintly)."""


def _running_mean(values: list[float], window: int) -> list[float]:
    """Mean of each value and the up to ``window - 1`` values before it."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def plot_recipe(run: str | Path, out: str | Path) -> Path:
    """Loss of every training stage and the validation scores against the recipe's wall-clock
    minutes (from ``recipe.jsonl``), as one PNG with two panels."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    records = [json.loads(x) for x in (run / "recipe.jsonl").read_text().splitlines()]
    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(12, 4.5))
    clock = 0.0
    val_points: dict[str, list[tuple[float, float]]] = {k: [] for k in CURVE_KEYS}
    for rec in records:
        curve = _stage_curve(run, rec["stage"])
        if curve:
            minutes = [(clock + t) / 60 for t, _ in curve]
            raw = ax_loss.plot(minutes, [v for _, v in curve], linewidth=0.5, alpha=0.3)
            # the steps' tasks differ, so a running mean shows the trend through the noise
            window = min(LOSS_WINDOW, max(1, len(curve) // 20))  # short stages, short lag
            ax_loss.plot(minutes, _running_mean([v for _, v in curve], window),
                         color=raw[0].get_color(), label=rec["stage"], linewidth=1.5)
        clock += rec["seconds"]
        for key in CURVE_KEYS:
            value = (rec.get("val") or {}).get(key)
            if value is not None:
                val_points[key].append((clock / 60, value))
    ax_loss.set(yscale="log", xlabel="recipe wall-clock minutes", ylabel="training loss",
                title=f"loss per stage (running mean of up to {LOSS_WINDOW} logged steps)")
    ax_loss.legend()
    for key, pts in val_points.items():
        if pts:
            ax_val.plot([t for t, _ in pts], [v for _, v in pts], marker="o", label=key)
    ax_val.set(xlabel="recipe wall-clock minutes", ylabel="fraction",
               title=f"validation world (seed {VAL_SEED})", ylim=(0, 1))
    ax_val.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


# --- the bundled model -------------------------------------------------------------------------


def bundle(checkpoint: str | Path, out: str | Path, dtype: str = "bfloat16") -> Path:
    """Write ``checkpoint`` (with its tokenizer) to ``out`` in ``dtype``: the package's default
    model is made this way from a training stage's ``final/`` (docs/toy-world.md)."""
    from ..checkpoint import load, ours
    from ..constants import DTYPES

    model = load(checkpoint, device="cpu", dtype=DTYPES[dtype])
    return ours.save(model, Path(checkpoint) / "tokenizer.model", out)
