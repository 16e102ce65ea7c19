"""Which seeds make training worlds and which are held out for evaluation.

Seeds ``0 .. HELD_OUT_START - 1`` make training worlds (split ``train``); every seed from
``HELD_OUT_START`` on makes a held-out world (split ``val``), used for validation and evaluation.
Training code calls :func:`check_training_seed` (or :func:`check_training_world` on a generated
folder) and refuses held-out seeds, so an evaluation world can never leak into training.
"""

from __future__ import annotations

import json
from pathlib import Path

HELD_OUT_START = 1000
"""First held-out seed: seeds >= this are reserved for validation and evaluation."""

TRAIN_SPLIT = "train"
HELD_OUT_SPLIT = "val"
MANIFEST = "world.json"
"""The manifest every generated world folder carries (seed, size, split, counts, files)."""


def is_held_out(seed: int) -> bool:
    if seed < 0:
        raise ValueError(f"world seeds are non-negative, got {seed}")
    return seed >= HELD_OUT_START


def split_for(seed: int) -> str:
    """``val`` for a held-out seed, else ``train``: the split name in every file of that world."""
    return HELD_OUT_SPLIT if is_held_out(seed) else TRAIN_SPLIT


def check_training_seed(seed: int) -> int:
    """``seed`` if it may be used for training; ``ValueError`` for a held-out seed."""
    if is_held_out(seed):
        raise ValueError(f"seed {seed} is reserved for evaluation (held-out seeds are >= "
                         f"{HELD_OUT_START}); train on a seed below {HELD_OUT_START}")
    return seed


def check_held_out_seed(seed: int) -> int:
    """``seed`` if it is held out; ``ValueError`` for a training seed (evaluating on it would
    measure memorisation, not generalisation)."""
    if not is_held_out(seed):
        raise ValueError(f"seed {seed} is a training seed; evaluate on a held-out seed "
                         f">= {HELD_OUT_START}")
    return seed


def read_manifest(world: str | Path) -> dict:
    path = Path(world) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"{world} is not a generated toy world (no {MANIFEST})")
    return json.loads(path.read_text())


def check_training_world(world: str | Path) -> dict:
    """The manifest of ``world`` if it was generated from a training seed, else ``ValueError``."""
    manifest = read_manifest(world)
    check_training_seed(int(manifest["seed"]))
    return manifest
