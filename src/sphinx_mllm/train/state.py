"""Resumable training checkpoints that survive faults.

```
OUT/checkpoints/step-0000100/
  .metadata, __0_0.distcp ...   model (trainable part) + optimiser, PyTorch Distributed Checkpoint
  rng-00000.pt ...              RNG states, one file per rank
  trainer.json                  step, sampler position, world size, global batch (written last)
```

A checkpoint is written under ``step-NNNNNNN.tmp``, every file fsync-ed, and renamed to its final
name by rank 0 as the last act: a directory with a final name is complete, anything else is
ignored (and replaced) by later runs. The schedule is a pure function of the step, so the step
is its whole state.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import warnings
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch import nn
from torch.distributed.checkpoint.state_dict import (StateDictOptions, get_state_dict,
                                                     set_state_dict)

from .distributed import Dist

STEP_RE = re.compile(r"step-(\d{7})")
TRAINER = "trainer.json"
_OPTIONS = StateDictOptions(ignore_frozen_params=True)
# The checkpoint holds the trainable part only, so loading cannot be strict about the frozen
# rest; DCP itself fails on any requested (trainable) tensor that the checkpoint lacks.
_LOAD_OPTIONS = StateDictOptions(ignore_frozen_params=True, strict=False)


def step_dir(out: Path, step: int) -> Path:
    return out / "checkpoints" / f"step-{step:07d}"


def step_of(path: Path) -> int:
    """The step a checkpoint directory (:func:`step_dir`) holds."""
    return int(STEP_RE.fullmatch(path.name).group(1))


def complete(out: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (incomplete ``.tmp`` ones never appear)."""
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if STEP_RE.fullmatch(p.name) and (p / TRAINER).is_file()]
    return sorted(found, key=step_of)


def find_resume(out: Path, resume: str) -> Path | None:
    """``auto``: the newest complete checkpoint in ``out`` (None if none); ``none``: None; else
    the given directory, which must be complete."""
    if resume == "none":
        return None
    if resume == "auto":
        found = complete(out)
        return found[-1] if found else None
    path = Path(resume)
    if not (path / TRAINER).is_file():
        raise FileNotFoundError(f"resume: {path} is not a complete training checkpoint "
                                f"(no {TRAINER})")
    return path


def save(out: Path, step: int, model: nn.Module, optimizer: torch.optim.Optimizer,
         progress: dict, d: Dist, keep_last: int) -> Path:
    """Write the checkpoint of ``step`` (all ranks call it); ``progress`` becomes trainer.json."""
    final = step_dir(out, step)
    tmp = final.with_name(final.name + ".tmp")
    if d.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    d.barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer, options=_OPTIONS)
    with _quiet():
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp, no_dist=not d.sharded)
    torch.save(_rng_state(), tmp / f"rng-{d.rank:05d}.pt")
    _fsync_tree(tmp)
    d.barrier()
    if d.is_main:
        _write_synced(tmp / TRAINER, json.dumps(progress, indent=1) + "\n")
        publish(tmp, final)  # a re-run of the same step replaces it
        for old in complete(out)[:-keep_last]:
            shutil.rmtree(old)
    d.barrier()
    return final


def read_progress(path: Path) -> dict:
    """``trainer.json``: step, sampler position, world size, global batch, seed."""
    return json.loads((path / TRAINER).read_text())


def load(path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, d: Dist) -> None:
    """Restore model, optimiser and this rank's RNG from ``path``."""
    model_sd, optim_sd = get_state_dict(model, optimizer, options=_OPTIONS)
    state = {"model": model_sd, "optim": optim_sd}
    with _quiet():
        dcp.load(state, checkpoint_id=path, no_dist=not d.sharded)
    set_state_dict(model, optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optim"], options=_LOAD_OPTIONS)
    rng = path / f"rng-{d.rank:05d}.pt"
    if rng.is_file():
        _set_rng_state(torch.load(rng, weights_only=True))


def publish(tmp: Path, final: Path) -> None:
    """Make the finished directory ``tmp`` appear as ``final`` durably and atomically: fsync its
    files and itself, replace ``final``, fsync the parent. Readers see all of it or nothing."""
    _fsync_tree(tmp)
    _fsync(tmp)
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    _fsync(final.parent)


@contextlib.contextmanager
def _quiet():
    """DCP warns that it assumes a single process, which is what ``no_dist`` asked for."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_synced(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for path in root.iterdir():
        if path.is_file():
            _fsync(path)
