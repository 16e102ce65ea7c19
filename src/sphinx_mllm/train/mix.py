"""Weight mixing (SPHINX's "domain mix", spec 7): ``C = beta * A + (1 - beta) * B`` over the LLM,
and its many-parent form, a weighted average of sibling checkpoints (:func:`average`).

Streams one tensor at a time from the parents (ours or released), so memory stays near one
tensor per parent, and writes our checkpoint format. Only the LLM (and, on request, the
projections and start/end vectors) is mixed; every other tensor is copied from the first parent.
The parents' frozen encoders must be identical (otherwise they are not siblings of one
pre-training).

:func:`graft` streams the same way the other way round: a model with another checkpoint's
encoders (``sphinx-mllm toy graft``).
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path
from typing import Sequence

import torch

from .. import checkpoint
from ..checkpoint import loader, ours
from ..checkpoint.safetensors_io import TensorSpec
from .freeze import part_of
from .state import publish


class MixError(ValueError):
    """The parents cannot be mixed; the message names the first difference."""


def mix(a: str | Path, b: str | Path, out: str | Path, betas: Sequence[float],
        include_projector: bool = False, preset: str | None = None) -> list[Path]:
    """Write one mixed checkpoint per beta: ``out`` for one beta, ``out/beta-<b>/`` for several.

    ``preset`` names the variant of released-format parents whose ``meta.json`` is not enough.
    The output has A's dtypes.
    """
    betas = [float(x) for x in betas]
    if not betas or any(not 0.0 <= x <= 1.0 for x in betas):
        raise ValueError(f"beta must be in [0, 1], got {betas}")
    sources, plan, mixed, hashes = _siblings((a, b), out, preset, include_projector)
    written = []
    for beta in betas:
        target = Path(out) if len(betas) == 1 else Path(out) / f"beta-{beta:g}"
        meta = {"mix_beta": f"{beta:g}", "mix_parents": [str(s.path) for s in sources],
                "mix_parent_sha256": hashes, "mix_include_projector": include_projector}
        written.append(_write(sources, plan, mixed, (beta, 1.0 - beta), target, meta))
    return written


def average(parents: Sequence[str | Path], out: str | Path,
            weights: Sequence[float] | None = None, include_projector: bool = False,
            preset: str | None = None) -> Path:
    """The weighted mean of two or more siblings' weights (equal weights by default), written to
    ``out``: a "model soup". Weights must be non-negative and are scaled to sum to 1.

    Two parents with weights ``(beta, 1 - beta)`` give :func:`mix`'s tensors (its metadata
    records ``mix_beta`` instead). The output has the first parent's dtypes.
    """
    if len(parents) < 2:
        raise ValueError(f"an average needs two or more parents, got {len(parents)}")
    weights = [1.0] * len(parents) if weights is None else [float(w) for w in weights]
    if len(weights) != len(parents):
        raise ValueError(f"{len(weights)} weights for {len(parents)} parents")
    total = sum(weights)
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not 0 < total < math.inf:
        raise ValueError(f"weights must be finite and non-negative with a positive, finite sum, "
                         f"got {weights}")
    weights = [w / total for w in weights]
    sources, plan, mixed, hashes = _siblings(parents, out, preset, include_projector)
    meta = {"mix_weights": [f"{w:.6g}" for w in weights],
            "mix_parents": [str(s.path) for s in sources], "mix_parent_sha256": hashes,
            "mix_include_projector": include_projector}
    return _write(sources, plan, mixed, weights, Path(out), meta)


def graft(model: str | Path, encoders: str | Path, out: str | Path) -> Path:
    """``model`` with its vision encoders replaced by those of ``encoders`` (same config).

    For encoders pre-trained further under an LLM already trained on older ones (the toy world,
    docs/toy-world-runs.md, nineteenth run): every other tensor is ``model``'s, so the projections
    then need fine-tuning to the new encoders' features.
    """
    sources, plan = _same_model((model, encoders), out, None)
    taken = {n for n, targets in plan.items() if part_of(targets[0]) == "encoders"}
    meta = {"graft_model": str(sources[0].path), "graft_encoders": str(sources[1].path),
            "graft_sha256": [content_hash(s.path) for s in sources]}
    return _write(sources, plan, taken, (0.0, 1.0), Path(out), meta)


def _siblings(parents, out, preset, include_projector: bool):
    """Open parents that may be mixed: one config, one tensor set, identical frozen encoders.
    Returns the sources, the load plan, the names to mix and the parents' content hashes."""
    sources, plan = _same_model(parents, out, preset)
    mixed_parts = {"llm"} | ({"projector", "start_end"} if include_projector else set())
    mixed = {n for n, targets in plan.items() if part_of(targets[0]) in mixed_parts}
    encoders = [n for n, targets in plan.items() if part_of(targets[0]) == "encoders"]
    for name in encoders:  # refuse before writing anything
        first = sources[0].take(name)
        for other in sources[1:]:
            if not torch.equal(first, other.take(name).to(first.dtype)):
                raise MixError(f"parents differ in the frozen encoder tensor {name} "
                               f"({other.path}): they do not share their vision towers, so they "
                               "are not siblings to mix")
    return sources, plan, mixed, [content_hash(s.path) for s in sources]


def _same_model(parents, out, preset):
    """Open checkpoints of one config and tensor set; returns them and the load plan."""
    out = Path(out)
    for parent in parents:  # out replaces its folder whole: it must not hold or be in a parent
        resolved, target = Path(parent).resolve(), out.resolve()
        if target == resolved or resolved in target.parents or target in resolved.parents:
            raise ValueError(f"--out {out} would overwrite the parent {parent}")
    sources = [checkpoint.open(p, preset=preset) for p in parents]
    cfg = sources[0].config()
    cfg_first, shapes_first = cfg.to_dict(), sources[0].shapes()
    for other in sources[1:]:
        cfg_other, shapes_other = other.config().to_dict(), other.shapes()
        if cfg_first != cfg_other:
            field = next(k for k in cfg_first if cfg_first[k] != cfg_other.get(k))
            raise MixError(f"parents have different model configs (first differing field: "
                           f"{field}: {cfg_first[field]!r} vs {cfg_other.get(field)!r})")
        if shapes_first != shapes_other:
            first = sorted(set(shapes_first) ^ set(shapes_other)) or sorted(
                n for n in shapes_first if shapes_first[n] != shapes_other[n])
            raise MixError(f"parents hold different tensors (first: {first[0]})")
    _, plan = loader.plan_model(sources[0], cfg)
    return sources, plan.plan


def mix_tensors(tensors: Sequence[torch.Tensor | None], weights: Sequence[float],
                dtype: torch.dtype) -> torch.Tensor:
    """``sum(w * t)`` over the non-zero weights (a zero weight's tensor may be None), summed in
    float32 and returned in ``dtype``; one weight of exactly 1 (the others 0) returns its tensor
    exactly (cast to ``dtype``)."""
    pairs = [(t, w) for t, w in zip(tensors, weights) if w]
    if len(pairs) == 1 and pairs[0][1] == 1.0:
        return pairs[0][0].to(dtype)
    total = torch.zeros(pairs[0][0].shape, dtype=torch.float32)
    for tensor, weight in pairs:
        total += weight * tensor.float()
    return total.to(dtype)


def _write(sources, names, mixed: set[str], weights: Sequence[float], target: Path,
           meta: dict) -> Path:
    """Write ``target``: each tensor in ``mixed`` is the sources' weighted sum, the rest the
    first source's."""
    first = sources[0]
    shapes = first.shapes()
    specs = [TensorSpec(n, shapes[n], first.dtype(n)) for n in names]

    def produce(name: str) -> torch.Tensor:
        if name not in mixed:
            return first.take(name)  # a copy; a released parent's mapped pages are dropped
        tensors = [s.take(name) if w else None for s, w in zip(sources, weights)]
        return mix_tensors(tensors, weights, first.dtype(name))

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    ours.write(tmp, first.config(), first.tokenizer_path, specs, produce, metadata=meta)
    publish(tmp, target)
    return target


def content_hash(path: Path) -> str:
    """sha256 over a checkpoint directory's files (names and bytes, sorted), streamed."""
    digest = hashlib.sha256()
    for file in sorted(p for p in Path(path).iterdir() if p.is_file()):
        digest.update(file.name.encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 24), b""):
                digest.update(chunk)
    return digest.hexdigest()
