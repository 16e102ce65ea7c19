"""Encoder pre-training for the toy world: dense supervision on the world's ground truth.

The real SPHINX freezes encoders pre-trained elsewhere (CLIP, ConvNeXt, DINOv2, Q-Former); tiny
encoders pre-trained on anything do not exist, so the toy recipe gives its encoders a short stage
of their own before freezing them. Every view the model cuts (global + sub-images) gets, for
every token of every fused encoder (CLIP, ConvNeXt, DINOv2), dense targets of the item the token
covers (a segmentation-style assignment rather than a centre-based detector's, so that every
token of an item carries the item and its box, and attending to any of them reads the box):

* which item the cell belongs to (the one covering most of it, or whose centre it holds):
  nothing, a shape, a layout block (five categories) or a person;
* for a shape its colour, shape, size and 1-pixel pattern;
* the item's box in **view coordinates** ([0, 1] over the view), twice: as 4 regressed numbers
  and as 4 classifications over the 101 two-decimal values ``0.00 .. 1.00`` the answers write,
  so that each coordinate's digits are linearly readable from the token;
* for each of the 17 COCO keypoints lying in the cell: its presence and its view coordinates.

The first token of each fused encoder (CLS / pooled) and the mean of the Q-Former's queries get
view-level targets: the picture kind and how many items of each colour, shape, page-block
category, people and in all the view holds (the count questions' nouns). All heads are
**linear** on purpose: SPHINX's projector is linear (plus LayerNorm), so what a linear head reads
here the LLM can read through the projector.

Why this method (docs/toy-world.md): a throwaway experiment on this world measured that an
encoder trained end to end from answer tokens learns no vision in 20 CPU minutes, while a CNN
pre-trained densely on the ground truth reached 99.9 % per-cell class accuracy and 0.46 px box
error in 14 minutes; the coordinate-bin heads add what that experiment found missing (the LLM
could not read positions out of the tokens).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from ..config import SphinxConfig
from ..processing import image_to_tensor
from ..tasks import COCO_KEYPOINTS, ImageFrame
from ..train.freeze import apply_trainable
from .dataset import JPEG_OPTIONS
from .render import render
from .seeds import HELD_OUT_START, check_training_seed
from .world import COLOURS, KINDS, LAYOUT_CATEGORIES, PATTERNS, SHAPES, SIZES, Picture, sample_picture

ITEM_KINDS = ("none", "shape", *LAYOUT_CATEGORIES, "person")
BINS = 101            # two-decimal coordinates 0.00 .. 1.00
MAX_COUNT = 8         # items of one kind in a view: 0 .. 7 (more is counted as 7)
COUNTED = (*COLOURS, *SHAPES, *LAYOUT_CATEGORIES, "person", "items")
"""What the view head counts (the count questions' nouns: colours, shapes, page blocks, people,
and all items of the view)."""
COVER = 0.25
"""A cell belongs to an item covering at least this fraction of it (or holding its centre)."""
PRETRAIN_INDEX_OFFSET = 20_000_000
"""Pre-training draws pictures of the training seed from this index on, a stream no world folder
holds: every step sees new pictures."""
IGNORE = -100
_K = len(COCO_KEYPOINTS)


@dataclass(frozen=True)
class CellLayout:
    """The named parts of a cell head's output, in order, with their widths."""

    sizes: tuple[tuple[str, int], ...] = (
        ("kind", len(ITEM_KINDS)), ("colour", len(COLOURS)), ("shape", len(SHAPES)),
        ("size", len(SIZES)), ("pattern", len(PATTERNS)), ("box", 4), ("bins", 4 * BINS),
        ("kp", _K), ("kp_xy", 2 * _K))

    @property
    def width(self) -> int:
        return sum(n for _, n in self.sizes)

    def split(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return dict(zip((n for n, _ in self.sizes), x.split([n for _, n in self.sizes], dim=-1)))


CELL = CellLayout()
VIEW_OUT = len(KINDS) + len(COUNTED) * MAX_COUNT
KIND_WEIGHTS = torch.tensor([0.25] + [1.0] * (len(ITEM_KINDS) - 1))
"""Cross-entropy weights of the cell kind: most cells are empty, so "none" weighs less."""


class DenseHeads(nn.Module):
    """Linear heads per encoder: a cell head on the grid tokens and a view head on the first
    token (fused encoders) or the mean query (Q-Former)."""

    def __init__(self, cfg: SphinxConfig):
        super().__init__()
        self.cell = nn.ModuleDict({k: nn.Linear(cfg.encoder(k).width, CELL.width)
                                   for k in cfg.fused_kinds})
        self.view = nn.ModuleDict({k: nn.Linear(cfg.encoder(k).width, VIEW_OUT)
                                   for k in cfg.encoder_kinds})

    def forward(self, feats: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor | None, torch.Tensor]]:
        """{kind: (cell logits (V*N, g*g, CELL.width) or None, view logits (V*N, VIEW_OUT))}."""
        out = {}
        for kind, tokens in feats.items():
            if kind in self.cell:
                out[kind] = (self.cell[kind](tokens[:, 1:]), self.view[kind](tokens[:, 0]))
            else:
                out[kind] = (None, self.view[kind](tokens.mean(dim=1)))
        return out


# --- targets -----------------------------------------------------------------------------------


@dataclass
class Targets:
    """Targets of V*N views (view-major, as ``SphinxModel.encode_views`` orders them), g*g cells."""

    kind: torch.Tensor      # (V*N, g*g) long, IGNORE where an item is mostly outside the view
    attrs: torch.Tensor     # (V*N, g*g, 4) long: colour, shape, size, pattern (IGNORE if no shape)
    box: torch.Tensor       # (V*N, g*g, 4) float view coordinates (valid where kind > 0)
    kp: torch.Tensor        # (V*N, g*g, 17) float 0/1
    kp_xy: torch.Tensor     # (V*N, g*g, 17, 2) float view coordinates (valid where kp == 1)
    view_kind: torch.Tensor  # (V*N,) long picture kind
    counts: torch.Tensor    # (V*N, len(COUNTED)) long: items of each counted kind in the view (capped)

    def to(self, device: torch.device) -> "Targets":
        return Targets(*(getattr(self, f.name).to(device) for f in dataclasses.fields(self)))


def _counted(kind: int, attrs) -> tuple[str, ...]:
    """The :data:`COUNTED` names an item adds one to."""
    if attrs is not None:
        return list(COLOURS)[attrs[0]], SHAPES[attrs[1]], "items"
    return ITEM_KINDS[kind], "items"


def _items(picture: Picture):
    """(item kind index, pixel box, attributes or None, keypoints or None) of every item."""
    for t in picture.things:
        attrs = (list(COLOURS).index(t.colour), SHAPES.index(t.shape), list(SIZES).index(t.size),
                 PATTERNS.index(t.pattern))
        yield 1, t.box, attrs, None
    for b in picture.blocks:
        yield 2 + LAYOUT_CATEGORIES.index(b.category), b.box, None, None
    for p in picture.people:
        yield len(ITEM_KINDS) - 1, p.box, None, p.keypoints


def view_windows(grid: int) -> list[tuple[float, float, float]]:
    """(x0, y0, side) of every view in the normalised padded square: global, then the crops in
    raster order (the order of ``SphinxModel.encode_views``)."""
    windows = [(0.0, 0.0, 1.0)]
    if grid > 1:
        windows += [(c / grid, r / grid, 1 / grid) for r in range(grid) for c in range(grid)]
    return windows


def _cover(box, g: int) -> np.ndarray:
    """(g*g,) area of each cell of a g x g grid over [0, 1]^2 that ``box`` (view coordinates,
    clipped) covers, as a fraction of the cell."""
    edges = np.arange(g + 1) / g
    w = np.clip(np.minimum(edges[1:], box[2]) - np.maximum(edges[:-1], box[0]), 0, None)
    h = np.clip(np.minimum(edges[1:], box[3]) - np.maximum(edges[:-1], box[1]), 0, None)
    return (h[:, None] * w[None, :]).ravel() * g * g


def picture_targets(picture: Picture, grid: int, token_grid: int) -> list[dict]:
    """Per view (global first) the numpy targets of one picture (see :class:`Targets`).

    A cell belongs to the item that covers most of it, among the items covering at least
    :data:`COVER` of the cell, and always to the item whose centre it holds: so every token of an
    item carries the item (its kind, attributes and box), which is what lets the LLM read a box
    off any token it attends to. Items mostly (more than half) outside the view make the cells
    they would own neither positive nor "none" (IGNORE)."""
    frame = ImageFrame(picture.width, picture.height)
    g = token_grid
    views = []
    for x0, y0, side in view_windows(grid):
        t = {"kind": np.zeros(g * g, np.int64), "attrs": np.full((g * g, 4), IGNORE, np.int64),
             "box": np.zeros((g * g, 4), np.float32), "kp": np.zeros((g * g, _K), np.float32),
             "kp_xy": np.zeros((g * g, _K, 2), np.float32),
             "counts": np.zeros(len(COUNTED), np.int64), "view_kind": KINDS.index(picture.kind)}
        owner_cover = np.zeros(g * g)
        unsure = np.zeros(g * g, bool)
        for kind, pixel_box, attrs, keypoints in _items(picture):
            b = frame.box_to_square(pixel_box)
            v = [(b.x1 - x0) / side, (b.y1 - y0) / side, (b.x2 - x0) / side, (b.y2 - y0) / side]
            c = np.clip(v, 0.0, 1.0)
            full = (v[2] - v[0]) * (v[3] - v[1])
            seen = max(c[2] - c[0], 0) * max(c[3] - c[1], 0)
            if keypoints is not None:
                for k, p in enumerate(keypoints):
                    q = frame.point_to_square(p)
                    px, py = (q.x - x0) / side, (q.y - y0) / side
                    if 0 <= px < 1 and 0 <= py < 1:
                        cell = int(py * g) * g + int(px * g)
                        t["kp"][cell, k], t["kp_xy"][cell, k] = 1.0, (px, py)
            if seen <= 0:
                continue
            cover = _cover(c, g)
            centre = min(int((c[1] + c[3]) / 2 * g), g - 1) * g + min(int((c[0] + c[2]) / 2 * g), g - 1)
            owned = cover >= COVER
            owned[centre] = True
            if seen < 0.5 * full:  # mostly outside this view
                unsure |= owned
                continue
            for name in _counted(kind, attrs):
                t["counts"][COUNTED.index(name)] += 1
            claim = cover.copy()
            claim[centre] += 1.0  # the centre's cell outranks any cover
            for cell in np.flatnonzero(owned & (claim > owner_cover)):
                owner_cover[cell] = claim[cell]
                t["kind"][cell], t["box"][cell] = kind, c
                t["attrs"][cell] = attrs if attrs is not None else IGNORE
        t["kind"][unsure & (t["kind"] == 0)] = IGNORE
        t["counts"] = np.minimum(t["counts"], MAX_COUNT - 1)
        views.append(t)
    return views


def make_batch(seed: int, indices: list[int], cfg: SphinxConfig) -> tuple[torch.Tensor, Targets]:
    """Images (N, 3, S, S) of pictures ``indices`` of world ``seed`` (JPEG round trip as the world
    files have it) and the :class:`Targets` of their views."""
    token_grid = cfg.encoder(cfg.fused_kinds[0]).token_grid
    images, per_picture = [], []
    for index in indices:
        picture = sample_picture(seed, index)
        buffer = io.BytesIO()
        render(picture).save(buffer, "JPEG", **JPEG_OPTIONS)
        with Image.open(buffer) as image:
            images.append(image_to_tensor(image, cfg.image_size))
        per_picture.append(picture_targets(picture, cfg.grid, token_grid))
    # view-major: all global views, then every picture's crop 0, ...
    views = [per_picture[n][v] for v in range(cfg.num_views) for n in range(len(indices))]

    def stack(key, dtype):
        return torch.from_numpy(np.stack([np.asarray(v[key]) for v in views])).to(dtype)

    targets = Targets(stack("kind", torch.long), stack("attrs", torch.long),
                      stack("box", torch.float32), stack("kp", torch.float32),
                      stack("kp_xy", torch.float32), stack("view_kind", torch.long),
                      stack("counts", torch.long))
    return torch.stack(images), targets


class _StepBatches(torch.utils.data.Dataset):
    """Step ``i`` -> :func:`make_batch` of its pictures: the encoder stage's batches as a dataset,
    so that DataLoader workers can draw them ahead of the device (the same batches as drawn
    inline)."""

    def __init__(self, seed: int, steps: int, batch_size: int, cfg: SphinxConfig):
        self.seed, self.steps, self.batch_size, self.cfg = seed, steps, batch_size, cfg

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> tuple[torch.Tensor, Targets]:
        first = PRETRAIN_INDEX_OFFSET + step * self.batch_size
        return make_batch(self.seed, list(range(first, first + self.batch_size)), self.cfg)


def step_batches(seed: int, steps: int, batch_size: int, cfg: SphinxConfig, workers: int = 0):
    """The ``steps`` batches of the encoder stage in order, drawn inline (``workers=0``) or by
    that many DataLoader worker processes (a GPU run, where drawing would otherwise stall the
    device)."""
    batches = _StepBatches(seed, steps, batch_size, cfg)
    if workers == 0:
        return (batches[step] for step in range(steps))
    return iter(torch.utils.data.DataLoader(batches, batch_size=None, num_workers=workers,
                                            prefetch_factor=4, collate_fn=_as_is))


def _as_is(batch):
    """The batch as drawn (the default collation would take the :class:`Targets` apart); at
    module level so that worker processes can pickle it."""
    return batch


# --- loss and metrics --------------------------------------------------------------------------


def _cell_loss(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    out = CELL.split(logits.float())
    loss = F.cross_entropy(out["kind"].flatten(0, 1), t.kind.flatten(), ignore_index=IGNORE,
                           weight=KIND_WEIGHTS.to(logits.device))
    for k, name in enumerate(("colour", "shape", "size", "pattern")):
        target = t.attrs[..., k].flatten()
        if (target != IGNORE).any():
            loss = loss + F.cross_entropy(out[name].flatten(0, 1), target, ignore_index=IGNORE)
    has = t.kind > 0
    if has.any():
        loss = loss + 10 * F.l1_loss(out["box"][has], t.box[has])
        bins = (t.box[has] * (BINS - 1)).round().long()  # (M, 4) two-decimal values
        loss = loss + F.cross_entropy(out["bins"][has].unflatten(-1, (4, BINS)).flatten(0, 1),
                                      bins.flatten())
    loss = loss + F.binary_cross_entropy_with_logits(out["kp"], t.kp)
    on = t.kp > 0
    if on.any():
        loss = loss + 10 * F.l1_loss(out["kp_xy"].unflatten(-1, (_K, 2))[on], t.kp_xy[on])
    return loss


def _view_loss(logits: torch.Tensor, t: Targets) -> torch.Tensor:
    kind, counts = logits.float().split([len(KINDS), len(COUNTED) * MAX_COUNT], -1)
    return (F.cross_entropy(kind, t.view_kind)
            + F.cross_entropy(counts.unflatten(-1, (len(COUNTED), MAX_COUNT)).flatten(0, 1),
                              t.counts.flatten()))


def dense_loss(outputs: dict, targets: Targets) -> torch.Tensor:
    """Sum over encoders of the cell and view losses (each a sum of per-target means)."""
    total = 0.0
    for cell, view in outputs.values():
        if cell is not None:
            total = total + _cell_loss(cell, targets)
        total = total + _view_loss(view, targets)
    return total


class _Tally:
    """Sums of correct / counted per metric name."""

    def __init__(self) -> None:
        self.sums: dict[str, list[float]] = {}

    def add(self, name: str, correct: torch.Tensor, mask: torch.Tensor) -> None:
        s = self.sums.setdefault(name, [0.0, 0.0])
        s[0] += float(correct[mask].sum())
        s[1] += float(mask.sum())

    def means(self) -> dict[str, float]:
        return {name: total / max(count, 1) for name, (total, count) in self.sums.items()}


@torch.no_grad()
def probe(model: nn.Module, heads: DenseHeads, seed: int = HELD_OUT_START, n: int = 64,
          batch_size: int = 16) -> dict[str, dict[str, float]]:
    """Per encoder, on ``n`` pictures of (held-out) world ``seed``: in the global view, the
    accuracy of the count of all items and of every count (:data:`COUNTED`, most of them zero);
    per fused encoder also the accuracy of the item kind on cells that hold an item and of "none"
    on empty cells, of the colour / shape on shape cells, of the pattern on shape cells of the
    global view and of the sub-image views separately, box IoU, the fraction of boxes with IoU
    >= 0.5 and the coordinate-bin accuracy (the exact two-decimal value) on item cells, and the
    keypoint error in view units."""
    cfg = model.cfg
    tallies = {k: _Tally() for k in cfg.encoder_kinds}
    items = COUNTED.index("items")
    for start in range(0, n, batch_size):
        indices = list(range(start, min(start + batch_size, n)))
        images, t = make_batch(seed, indices, cfg)
        images, t = images.to(model.device), t.to(model.device)
        outputs = heads(model.encode_views(images))
        is_global = torch.arange(t.kind.shape[0], device=model.device) < len(indices)
        for kind in cfg.encoder_kinds:
            tally = tallies[kind]
            cell, view = outputs[kind]
            counts = view.float()[:, len(KINDS):].unflatten(-1, (len(COUNTED), MAX_COUNT)).argmax(-1)
            tally.add("count_items", counts[:, items] == t.counts[:, items], is_global)
            tally.add("count_all", counts == t.counts, is_global[:, None].expand_as(counts))
            if cell is None:
                continue
            out = CELL.split(cell.float())
            has = t.kind > 0
            shape = t.attrs[..., 0] != IGNORE
            tally.add("kind", out["kind"].argmax(-1) == t.kind, has)
            tally.add("none", out["kind"].argmax(-1) == 0, t.kind == 0)
            for k, name in enumerate(("colour", "shape")):
                tally.add(name, out[name].argmax(-1) == t.attrs[..., k], shape)
            pattern_ok = out["pattern"].argmax(-1) == t.attrs[..., 3]
            tally.add("pattern_global", pattern_ok, shape & is_global[:, None])
            tally.add("pattern_crops", pattern_ok, shape & ~is_global[:, None])
            bins = out["bins"].unflatten(-1, (4, BINS)).argmax(-1)
            tally.add("coord_bins", bins == (t.box * (BINS - 1)).round().long(),
                      has[..., None].expand_as(bins))
            iou = _iou(out["box"], t.box)
            tally.add("box_iou", iou, has)
            tally.add("box_acc50", iou >= 0.5, has)
            error = (out["kp_xy"].unflatten(-1, (_K, 2)) - t.kp_xy).norm(dim=-1)
            tally.add("kp_error", error, t.kp > 0)
    return {kind: tally.means() for kind, tally in tallies.items()}


def _area(box: torch.Tensor) -> torch.Tensor:
    return (box[..., 2:] - box[..., :2]).clamp(min=0).prod(-1)


def _iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of (..., 4) boxes, elementwise."""
    lo, hi = torch.maximum(a[..., :2], b[..., :2]), torch.minimum(a[..., 2:], b[..., 2:])
    inter = (hi - lo).clamp(min=0).prod(-1)
    return inter / (_area(a) + _area(b) - inter).clamp(min=1e-9)


# --- the projection's start ----------------------------------------------------------------------

ATTRIBUTES = ("colour", "shape", "size", "pattern")
"""The shape attributes, in the order of :attr:`Targets.attrs`' last axis."""
EMPHASIS_INDEX_OFFSET = 30_000_000
""":func:`emphasise_attribute` measures on pictures of the training seed from this index on:
neither a world folder nor the encoder stage's stream holds them."""


def class_share(x: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of the variance of rows ``x`` (n, d) between the classes ``labels`` (n,) name: the
    between-class sum of squares over the total."""
    centred = x - x.mean(0)
    between = sum(int((labels == c).sum()) * centred[labels == c].mean(0).pow(2).sum()
                  for c in labels.unique())
    return float(between / centred.pow(2).sum())


@torch.no_grad()
def emphasise_attribute(model: nn.Module, scale: float, attribute: str = "shape", *,
                        seed: int = 0, pictures: int = 400, batch_size: int = 50) -> dict:
    """Scale the visual projection's Linear (before its LayerNorm) by ``scale`` along the
    directions in which the tokens of shapes differing in ``attribute`` differ on average (the
    span of the class means' deviations, rank ``classes - 1``), around those tokens' mean; every
    other direction is kept. Measured on the grid cells the shapes own in every view of
    ``pictures`` fresh pictures of training world ``seed``; in place, on the model's device.

    Why (docs/toy-world.md, twenty-sixth run): after a 2,400-step encoder stage the shape is 0.04
    of the projected tokens' variance on a shape's cells and the colour 0.21, and a fresh decoder
    trained on "What color is the circle?" among several shapes stayed at chance (0.36, a scene
    colour at random 0.39); with the shape scaled by 3 (0.20 of that variance) it learnt the
    question (0.99); the whole default recipe with it (1,200-step encoders, shape 0.12 against
    colour 0.35 after the edit) did not (0.45). Returns the cells used and the attribute's and
    the colour's variance share of the projected tokens there, before and after.
    """
    if attribute not in ATTRIBUTES:
        raise ValueError(f"attribute {attribute!r}: choose among {', '.join(ATTRIBUTES)}")
    check_training_seed(seed)
    column, cfg, linear = ATTRIBUTES.index(attribute), model.cfg, model.visual_proj[0]
    rows, labels, colours = [], [], []
    for first in range(0, pictures, batch_size):
        indices = range(EMPHASIS_INDEX_OFFSET + first,
                        EMPHASIS_INDEX_OFFSET + min(first + batch_size, pictures))
        images, targets = make_batch(seed, list(indices), cfg)
        feats = model.encode_views(images.to(model.device))
        fused = torch.cat([feats[k][:, 1:] for k in cfg.fused_kinds], dim=-1)
        owned = targets.attrs[..., column] != IGNORE  # (V*N, g*g): cells a shape owns
        rows.append(linear(fused.to(linear.weight.dtype))[owned.to(fused.device)].double())
        labels.append(targets.attrs[..., column][owned])
        colours.append(targets.attrs[..., 0][owned])
    y, labels, colours = torch.cat(rows), torch.cat(labels).to(model.device), torch.cat(colours)
    mean = y.mean(0)
    deviations = torch.stack([y[labels == c].mean(0) - mean for c in labels.unique()])
    basis = torch.linalg.svd(deviations.T, full_matrices=False)[0][:, :len(deviations) - 1]
    lift = torch.eye(len(mean), dtype=y.dtype, device=y.device) + (scale - 1) * basis @ basis.T

    def shares(tokens: torch.Tensor) -> dict:
        projected = model.visual_proj[1](tokens.to(linear.weight.dtype)).double()
        return {attribute: class_share(projected, labels),
                "colour": class_share(projected, colours.to(labels.device))}

    before = shares(y)
    weight, bias = linear.weight.double(), linear.bias.double()
    linear.weight.copy_(lift @ weight)
    linear.bias.copy_(lift @ (bias - mean) + mean)
    return {"attribute": attribute, "scale": scale, "cells": len(labels),
            "share_before": before, "share_after": shares((y - mean) @ lift.T + mean)}


# --- training ----------------------------------------------------------------------------------


@dataclass
class PretrainLog:
    step: int
    loss: float
    lr: float
    seconds: float


def pretrain_encoders(model: nn.Module, *, seed: int = 0, steps: int = 2000, batch_size: int = 16,
                      lr: float = 1e-3, warmup_steps: int = 100, weight_decay: float = 0.05,
                      bf16: bool = False, heads: DenseHeads | None = None, log_every: int = 50,
                      on_log=None, workers: int = 0) -> tuple[DenseHeads, list[PretrainLog]]:
    """Train ``model.encoders`` (in place) and fresh linear heads for ``steps`` AdamW steps on
    pictures of training world ``seed`` (fresh ones every step, from
    :data:`PRETRAIN_INDEX_OFFSET`); linear warm-up, then cosine to 0.

    Only the encoders train (``train.freeze`` parts); afterwards nothing of the model requires
    grad, ready to be frozen by the later stages. ``on_log(PretrainLog)`` is called every
    ``log_every`` steps and at the end. Training runs where the model is (``bf16``: autocast on
    that device; ``workers`` DataLoader processes draw the pictures ahead, see
    :func:`step_batches`). Returns the heads (for :func:`probe`, on the model's device) and the log.
    """
    check_training_seed(seed)
    cfg = model.cfg
    device = model.device
    heads = (heads or DenseHeads(cfg)).to(device)
    apply_trainable(model, ["encoders"])
    model.train()
    params = [p for p in model.encoders.parameters()] + list(heads.parameters())
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    optim = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                               {"params": no_decay, "weight_decay": 0.0}], lr=lr)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(steps - warmup_steps, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))

    sched = torch.optim.lr_scheduler.LambdaLR(optim, schedule)
    log: list[PretrainLog] = []
    start = time.perf_counter()
    for step, (images, targets) in enumerate(step_batches(seed, steps, batch_size, cfg, workers)):
        images, targets = images.to(device), targets.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = dense_loss(heads(model.encode_views(images)), targets)
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optim.step()
        sched.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            entry = PretrainLog(step + 1, loss.item(), sched.get_last_lr()[0],
                                time.perf_counter() - start)
            log.append(entry)
            if on_log is not None:
                on_log(entry)
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    return heads, log


def run_encoder_stage(out: str | Path, tokenizer: str | Path, *, preset: str = "toy-world",
                      vit_stem: str = "patch", seed: int = 0, steps: int = 2000,
                      batch_size: int = 16, lr: float = 1e-3, bf16: bool = False,
                      log_every: int = 50, probe_pictures: int = 256,
                      device: str | torch.device | None = None, workers: int = 0,
                      shape_scale: float = 1.0, encoders_from: str | Path | None = None) -> dict:
    """The recipe's first stage: a fresh ``preset`` model (seeded by ``seed``; CLIP and DINOv2 on
    ``vit_stem``, see :func:`~sphinx_mllm.config.with_vit_stem`) whose encoders are
    pre-trained by :func:`pretrain_encoders`; writes ``out/metrics.jsonl`` (one line per log
    step: step, loss, lr, seconds), ``out/probe.json`` (:func:`probe` on the validation world,
    seed ``HELD_OUT_START``), ``out/heads.safetensors`` (the linear heads, to probe again) and
    ``out/final/``, a checkpoint in our format with ``tokenizer``
    that the LLM stages start from. ``device`` defaults to CUDA when there is one (as the
    trainer's); ``workers`` as in :func:`pretrain_encoders`. ``shape_scale`` other than 1 starts
    the visual projection emphasised along the shape (:func:`emphasise_attribute`, measured on
    fresh pictures of ``seed``) and writes what it measured to ``out/emphasis.json``. Returns
    the probe metrics.

    ``encoders_from`` (a checkpoint in our format with this preset's encoders) skips the
    pre-training: its encoders are copied into the fresh model (:func:`take_encoders`), and
    ``out/source.json`` (no metrics, heads or probe) says where they came from. Returns that
    record. The twenty-seventh run started the recipe on the bundled model's encoders this way."""
    from ..checkpoint import ours
    from ..config import SphinxConfig, with_vit_stem
    from ..model import build

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = build(with_vit_stem(SphinxConfig.from_name(preset), vit_stem)).to(device)
    if encoders_from is not None:
        metrics = take_encoders(model, encoders_from)
        (out / "source.json").write_text(json.dumps(metrics, indent=2) + "\n")
    else:
        metrics = _pretrain_and_probe(model, out, seed=seed, steps=steps, batch_size=batch_size,
                                      lr=lr, bf16=bf16, log_every=log_every, workers=workers,
                                      probe_pictures=probe_pictures)
    if shape_scale != 1.0:
        emphasis = emphasise_attribute(model, shape_scale, "shape", seed=seed)
        (out / "emphasis.json").write_text(json.dumps(emphasis, indent=2) + "\n")
    ours.save(model.cpu(), tokenizer, out / "final")
    return metrics


def _pretrain_and_probe(model: nn.Module, out: Path, *, seed: int, steps: int, batch_size: int,
                        lr: float, bf16: bool, log_every: int, workers: int,
                        probe_pictures: int) -> dict:
    """:func:`pretrain_encoders` logged to ``out/metrics.jsonl``, the heads saved, the probe
    written to ``out/probe.json`` and returned."""
    with open(out / "metrics.jsonl", "w", encoding="utf-8") as log_file:
        def on_log(entry: PretrainLog) -> None:
            log_file.write(json.dumps(dataclasses.asdict(entry)) + "\n")
            log_file.flush()

        heads, _ = pretrain_encoders(model, seed=seed, steps=steps, batch_size=batch_size, lr=lr,
                                     bf16=bf16, log_every=log_every, on_log=on_log,
                                     workers=workers)
    save_file({k: v.cpu() for k, v in heads.state_dict().items()}, out / "heads.safetensors")
    metrics = probe(model, heads, n=probe_pictures)
    (out / "probe.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def take_encoders(model: nn.Module, source: str | Path) -> dict:
    """Copy the vision encoders of checkpoint ``source`` (our format) into ``model``, in place;
    every other tensor is kept. Refuses a source whose encoders are configured otherwise. Returns
    ``{"encoders_from": source, "sha256": its content hash, "tensors": how many were copied}``."""
    from ..checkpoint import ours
    from ..train.freeze import part_of
    from ..train.mix import content_hash

    theirs = ours.load(source, dtype=torch.float32)
    kinds = ("image_size", "clip", "convnext", "dinov2", "qformer")
    ours_cfg, their_cfg = model.cfg.to_dict(), theirs.cfg.to_dict()
    differ = [k for k in kinds if ours_cfg[k] != their_cfg[k]]
    if differ:
        raise ValueError(f"{source}: its encoders are configured otherwise ({', '.join(differ)}) "
                         f"than the {model.cfg.name} model they would go into")
    taken = {k: v for k, v in theirs.state_dict().items() if part_of(k) == "encoders"}
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name in taken:
                tensor.copy_(taken[name])
    return {"encoders_from": str(source), "sha256": content_hash(Path(source)),
            "tensors": len(taken)}
