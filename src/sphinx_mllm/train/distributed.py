"""Process group, FSDP2 sharding and loading full tensors into a (possibly sharded) model.

One code path for every world size: ``torchrun`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``;
without it the run is a single process and the model is not wrapped. With more than one
process, every ``TransformerBlock`` is ``fully_shard``-ed, then the root, with the frozen
encoders passed as ``ignored_params`` (replicated, no gradients, no optimiser state).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Dist:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def sharded(self) -> bool:
        return self.world_size > 1

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if not dist.is_initialized():
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if dist.is_initialized():
            dist.barrier()

    def mean(self, value: float) -> float:
        return self.sum(value) / self.world_size

    def sum(self, value: float) -> float:
        if not dist.is_initialized():
            return value
        tensor = torch.tensor([value], dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)  # SUM: gloo has no AVG
        return float(tensor.item())


def init(device: str | None = None) -> Dist:
    """Join the ``torchrun`` process group if there is one (gloo on CPU, NCCL on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError("device cuda was asked for, but torch sees no CUDA device")
        torch.cuda.set_device(local)
        dev = torch.device("cuda", local)
    else:
        dev = torch.device(kind)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, world, dev)


def close(d: Dist, barrier: bool = True) -> None:
    """Leave the process group; ``barrier=False`` after an error, when peers may be stuck in a
    collective that this rank will never join."""
    if dist.is_initialized():
        if barrier:
            dist.barrier()  # before destroy: avoids a crash at exit seen with gloo
        dist.destroy_process_group()


def shard(model: nn.Module, bf16: bool) -> None:
    """FSDP2 on ``model`` (a SphinxModel): each LLM block, then the root; frozen encoders ignored."""
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mp = (MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
          if bf16 else MixedPrecisionPolicy())
    for block in model.llm.layers:
        fully_shard(block, mp_policy=mp)
    frozen = {p for p in model.encoders.parameters() if not p.requires_grad}
    fully_shard(model, mp_policy=mp, ignored_params=frozen or None)


def assign(model: nn.Module, tensors: Iterable[tuple[str, torch.Tensor]], device: torch.device,
           dtype_for: Callable[[str, torch.Tensor], torch.dtype]) -> None:
    """Fill a ``meta`` model (sharded or not) from full tensors, one tensor at a time.

    Each process reads the full tensor and keeps only its shard (``distribute_tensor`` with
    ``src_data_rank=None``: no communication), so a large model is never whole on any rank.
    Every state-dict entry must be given (strict).
    """
    from torch.distributed.tensor import DTensor, distribute_tensor

    targets = model.state_dict()
    state = {}
    for name, full in tensors:
        if name not in targets:
            raise KeyError(f"{name}: not a tensor of the model being trained")
        full = full.to(device=device, dtype=dtype_for(name, full))
        target = targets[name]
        if isinstance(target, DTensor):
            full = distribute_tensor(full, target.device_mesh, target.placements, src_data_rank=None)
        state[name] = full
    model.load_state_dict(state, strict=True, assign=True)
