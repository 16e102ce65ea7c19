"""Weight mixing (SPHINX's "domain mix", spec 7): ``C = beta * A + (1 - beta) * B`` over the LLM.

Streams one tensor at a time from the parents (ours or released), so memory stays near one
tensor, and writes our checkpoint format. Only the LLM (and, on request, the projections and
start/end vectors) is mixed; every other tensor is copied from ``A``. The parents' frozen
encoders must be identical (otherwise they are not siblings of one pre-training).

:func:`graft` streams the same way the other way round: a model with another checkpoint's
encoders (``sphinx-mllm toy graft``).
"""

from __future__ import annotations

import hashlib
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
    src_a, src_b, plan = _same_model(a, b, out, preset)
    mixed_parts = {"llm"} | ({"projector", "start_end"} if include_projector else set())
    mixed = {n for n, targets in plan.items() if part_of(targets[0]) in mixed_parts}
    encoders = [n for n, targets in plan.items() if part_of(targets[0]) == "encoders"]
    for name in encoders:  # refuse before writing anything
        tensor_a = src_a.take(name)
        if not torch.equal(tensor_a, src_b.take(name).to(tensor_a.dtype)):
            raise MixError(f"parents differ in the frozen encoder tensor {name}: they do not "
                           "share their vision towers, so they are not siblings to mix")
    hashes = [content_hash(src_a.path), content_hash(src_b.path)]
    written = []
    for beta in betas:
        target = Path(out) if len(betas) == 1 else Path(out) / f"beta-{beta:g}"
        meta = {"mix_beta": f"{beta:g}", "mix_parents": [str(src_a.path), str(src_b.path)],
                "mix_parent_sha256": hashes, "mix_include_projector": include_projector}
        written.append(_write(src_a, src_b, plan, mixed, beta, target, meta))
    return written


def graft(model: str | Path, encoders: str | Path, out: str | Path) -> Path:
    """``model`` with its vision encoders replaced by those of ``encoders`` (same config).

    For encoders pre-trained further under an LLM already trained on older ones (the toy world,
    docs/toy-world-runs.md, nineteenth run): every other tensor is ``model``'s, so the projections
    then need fine-tuning to the new encoders' features.
    """
    src_a, src_b, plan = _same_model(model, encoders, out, None)
    taken = {n for n, targets in plan.items() if part_of(targets[0]) == "encoders"}
    meta = {"graft_model": str(src_a.path), "graft_encoders": str(src_b.path),
            "graft_sha256": [content_hash(src_a.path), content_hash(src_b.path)]}
    return _write(src_a, src_b, plan, taken, 0.0, Path(out), meta)


def _same_model(a, b, out, preset):
    """Open two checkpoints of one config and tensor set; returns both and the load plan."""
    out = Path(out)
    for parent in (a, b):
        if out.resolve() == Path(parent).resolve() or Path(parent).resolve() in out.resolve().parents:
            raise ValueError(f"--out {out} would overwrite the parent {parent}")
    src_a, src_b = checkpoint.open(a, preset=preset), checkpoint.open(b, preset=preset)
    cfg = src_a.config()
    cfg_a, cfg_b = cfg.to_dict(), src_b.config().to_dict()
    if cfg_a != cfg_b:
        field = next(k for k in cfg_a if cfg_a[k] != cfg_b.get(k))
        raise MixError(f"parents have different model configs (first differing field: {field}: "
                       f"{cfg_a[field]!r} vs {cfg_b.get(field)!r})")
    shapes_a, shapes_b = src_a.shapes(), src_b.shapes()
    if shapes_a != shapes_b:
        first = sorted(set(shapes_a) ^ set(shapes_b)) or sorted(
            n for n in shapes_a if shapes_a[n] != shapes_b[n])
        raise MixError(f"parents hold different tensors (first: {first[0]})")
    _, plan = loader.plan_model(src_a, cfg)
    return src_a, src_b, plan.plan


def mix_tensors(a: torch.Tensor, b: torch.Tensor, beta: float) -> torch.Tensor:
    """``beta * a + (1 - beta) * b`` in float32, in ``a``'s dtype; beta 1 / 0 return a / b
    exactly (b cast to a's dtype)."""
    if beta == 1.0:
        return a
    if beta == 0.0:
        return b.to(a.dtype)
    return (beta * a.float() + (1.0 - beta) * b.float()).to(a.dtype)


def _write(src_a, src_b, names, mixed: set[str], beta: float, target: Path, meta: dict) -> Path:
    shapes = src_a.shapes()
    specs = [TensorSpec(n, shapes[n], src_a.dtype(n)) for n in names]

    def produce(name: str) -> torch.Tensor:
        a = src_a.take(name)  # a copy; a released parent's mapped pages are dropped
        return mix_tensors(a, src_b.take(name), beta) if name in mixed else a

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    ours.write(tmp, src_a.config(), src_a.tokenizer_path, specs, produce, metadata=meta)
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
