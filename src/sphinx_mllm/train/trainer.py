"""The training loop: one entry point for pre-training, synthetic tuning, fine-tuning and LoRA.

``train(cfg)`` builds the model (on ``meta``, then LoRA, freezing, activation checkpointing and
FSDP2 when distributed, then the weights one tensor at a time), reads the data mixture, and runs
``cfg.steps`` optimiser steps of ``grad_accum`` micro-batches, writing ``metrics.jsonl``,
resumable checkpoints and finally ``out/final`` in our checkpoint format.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from .. import checkpoint
from ..checkpoint import keymap, loader, ours
from ..config import PRESET_NAMES, SphinxConfig
from ..constants import DTYPES, IGNORE_INDEX
from ..data.collate import Batch, Collator
from ..data.mixture import Mixture, TypeGroupedBatchSampler, load_mixture, read_mixture_config
from ..model import SphinxModel, build
from ..processing import Processor
from ..tokenizer import Tokenizer
from . import distributed, lora, state
from .config import TrainConfig
from .freeze import apply_trainable
from .optim import lr_at, make_optimizer, set_lr

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Precision:
    """The run's one dtype policy: fp32 master weights for everything that trains; with bf16,
    autocast compute, bf16 FSDP all-gathers (fp32 gradient reduction) and frozen weights kept in
    bf16, since they need no master copy."""

    bf16: bool

    @classmethod
    def resolve(cls, name: str | None, device: torch.device) -> Precision:
        return cls((name or ("bf16" if device.type == "cuda" else "fp32")) == "bf16")

    def storage(self, frozen: bool, encoder: bool, sharded: bool) -> torch.dtype:
        # FSDP2 wants one dtype per sharded block, so frozen LLM weights (LoRA) stay fp32 there.
        low = self.bf16 and frozen and (encoder or not sharded)
        return torch.bfloat16 if low else torch.float32

    def autocast(self, device: torch.device):
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.bf16)

    def saved(self, save_dtype: str | None) -> torch.dtype:
        return DTYPES[save_dtype or ("bfloat16" if self.bf16 else "float32")]


@dataclass
class Prepared:
    """The model to train and where it came from."""

    model: SphinxModel
    config: SphinxConfig
    tokenizer_path: Path
    trainable_counts: dict[str, int]  # parameters per trainable part


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) the training described by ``cfg``; return ``cfg.out / "final"``."""
    d = distributed.init(cfg.device)
    finished = False
    try:
        final = _train(cfg, d)
        finished = True
        return final
    finally:
        distributed.close(d, barrier=finished)  # after an error, peers may be in a collective


def _train(cfg: TrainConfig, d: distributed.Dist) -> Path:
    precision = Precision.resolve(cfg.precision, d.device)
    prepared = prepare_model(cfg, d, precision)
    model = prepared.model
    batches = make_batches(cfg, d, prepared)
    optimizer = make_optimizer(model, cfg.optim)
    start = resume(cfg, d, model, optimizer, batches)
    metrics = Metrics(cfg.out / "metrics.jsonl", d.is_main, keep_until=start)
    if d.is_main:
        (cfg.out / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        log.info("training %s from step %d; trainable parameters per part: %s",
                 prepared.config.name, start, prepared.trainable_counts)
    if d.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()  # training's peak, not the model build's
    bar = tqdm(total=cfg.steps, initial=start, disable=not d.is_main, unit="step",
               dynamic_ncols=True)
    stream = iter(batches)
    model.train()
    for step in range(start, cfg.steps):
        record = train_step(model, stream, optimizer, step, cfg, d, precision)
        metrics.write(record)
        bar.set_postfix(loss=f"{record['loss']:.4f}", tok_s=f"{record['tokens_per_s']:.0f}")
        bar.update(1)
        done = step + 1
        if (cfg.save_every and done % cfg.save_every == 0) or done == cfg.steps:
            progress = {"step": done, "sampler": batches.state(), "world_size": d.world_size,
                        "global_batch": batches.sampler.global_batch, "seed": cfg.seed}
            state.save(cfg.out, done, model, optimizer, progress, d, cfg.keep_last)
    bar.close()
    return export_final(model, cfg, prepared, d, precision)


def train_step(model: SphinxModel, stream: Iterator[Batch], optimizer: torch.optim.Optimizer,
               step: int, cfg: TrainConfig, d: distributed.Dist, precision: Precision) -> dict:
    """One optimiser step over ``grad_accum`` micro-batches; the ``metrics.jsonl`` record."""
    t0 = time.perf_counter()
    lr = lr_at(step, cfg.steps, cfg.optim)
    set_lr(optimizer, lr)
    loss_sum, tokens = torch.zeros((), device=d.device), 0
    for micro in range(cfg.grad_accum):
        if d.sharded:  # reduce-scatter gradients once per step, not once per micro-batch
            model.set_requires_gradient_sync(micro == cfg.grad_accum - 1)
        batch = next(stream)
        loss = micro_batch_loss(model, batch, d.device, cfg.loss, precision)
        (loss / cfg.grad_accum).backward()
        loss_sum += loss.detach()
        tokens += int(batch.attention_mask.sum())
    grad_norm = _clip(model, cfg.optim.clip_grad)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    elapsed = time.perf_counter() - t0
    record = {"step": step + 1, "loss": d.mean(loss_sum.item() / cfg.grad_accum), "lr": lr,
              "tokens_per_s": d.sum(tokens) / elapsed, "grad_norm": grad_norm, "step_s": elapsed}
    if d.device.type == "cuda":
        record["peak_mem_gb"] = torch.cuda.max_memory_allocated(d.device) / 2**30
    return record


def make_batches(cfg: TrainConfig, d: distributed.Dist, prepared: Prepared) -> Batches:
    mixture = load_mixture(read_mixture_config(cfg.data), seed=cfg.seed)
    sampler = TypeGroupedBatchSampler(
        mixture.types, mixture.lengths, cfg.batch_size, weights=mixture.weights,
        world_size=d.world_size, rank=d.rank, accum=cfg.grad_accum, seed=cfg.seed)
    if len(sampler) == 0:
        raise ValueError(f"{cfg.data}: {len(mixture)} samples make no global batch of "
                         f"{sampler.global_batch} within one type")
    tokenizer = Tokenizer.from_file(prepared.tokenizer_path)
    max_length = cfg.max_length or prepared.config.llm.max_seq_len
    collate = Collator(Processor(tokenizer, prepared.config), max_length)
    return Batches(mixture, sampler, collate, cfg.num_workers)


def resume(cfg: TrainConfig, d: distributed.Dist, model: SphinxModel,
           optimizer: torch.optim.Optimizer, batches: Batches) -> int:
    """Restore the newest complete checkpoint (rank 0 chooses for all); the step to start at."""
    found = state.find_resume(cfg.out, cfg.resume) if d.is_main else None
    path = d.broadcast(found)
    if path is None:
        torch.manual_seed(cfg.seed + 1000 * (d.rank + 1))  # dropout differs per rank, not per run
        return 0
    progress = state.read_progress(path)
    saved = (progress["world_size"], progress["global_batch"])
    if saved != (d.world_size, batches.sampler.global_batch):
        raise ValueError(f"{path} was written with world size {saved[0]} and global batch "
                         f"{saved[1]}; this run has {d.world_size} and "
                         f"{batches.sampler.global_batch}: the data position would not carry over")
    state.load(path, model, optimizer, d)
    batches.sampler.load_state_dict(progress["sampler"])
    return progress["step"]


# --- model ------------------------------------------------------------------------------------

def prepare_model(cfg: TrainConfig, d: distributed.Dist, precision: Precision) -> Prepared:
    """Build on ``meta``, add LoRA, freeze, checkpoint activations, shard; then load weights.

    A preset starts from random weights drawn with ``cfg.seed`` (on the CPU when distributed, so
    that every rank draws the same; on the training device otherwise); a checkpoint directory
    (ours or released) is read one tensor at a time.
    """
    torch.manual_seed(cfg.seed)
    if cfg.model in PRESET_NAMES:
        model_cfg = SphinxConfig.from_name(cfg.model)
        tokenizer_path = _bundled_tokenizer()
        init = build(model_cfg, device="cpu" if d.sharded else d.device)
        if cfg.lora is not None:
            lora.add_lora(init.llm, cfg.lora)
        tensors: Iterator = iter(init.state_dict().items())
    else:
        source = checkpoint.open(cfg.model, preset=cfg.preset)
        model_cfg, tokenizer_path = source.config(), source.tokenizer_path
        _, plan = loader.plan_model(source, model_cfg)
        tensors = loader.tensors(source, plan, "cpu")
    if cfg.grid is not None:  # the views share every weight: only the geometry changes
        model_cfg = dataclasses.replace(model_cfg, grid=cfg.grid)
    model = build(model_cfg, device="meta")
    if cfg.lora is not None:
        lora.add_lora(model.llm, cfg.lora)
        if cfg.model not in PRESET_NAMES:
            tensors = chain(tensors, _fresh_lora(model))
    counts = apply_trainable(model, cfg.trainable)
    if cfg.activation_checkpointing:
        from torch.distributed._composable import checkpoint as checkpoint_activations

        for block in model.llm.layers:
            checkpoint_activations(block)
    if d.sharded:
        distributed.shard(model, precision.bf16)
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}

    def dtype_for(name: str, tensor: torch.Tensor) -> torch.dtype:
        if not tensor.is_floating_point():
            return tensor.dtype
        return precision.storage(name in frozen, name.startswith("encoders."), d.sharded)

    distributed.assign(model, tensors, d.device, dtype_for)
    model.reset_buffers()
    return Prepared(model, model_cfg, Path(tokenizer_path), counts)


def _fresh_lora(model: SphinxModel) -> Iterator[tuple[str, torch.Tensor]]:
    for name, module in model.named_modules():
        if isinstance(module, lora.LoRALinear):
            yield f"{name}.lora_a", lora.init_lora_a(torch.empty(module.lora_a.shape))
            yield f"{name}.lora_b", torch.zeros(module.lora_b.shape)


def _bundled_tokenizer() -> Path:
    from ..inference.pipeline import bundled_tokenizer_path

    return bundled_tokenizer_path()


# --- loss -------------------------------------------------------------------------------------

def micro_batch_loss(model: SphinxModel, batch: Batch, device: torch.device, mode: str,
                     precision: Precision) -> torch.Tensor:
    images = batch.images.to(device) if batch.images is not None else None
    with precision.autocast(device):
        logits = model(batch.input_ids.to(device), images)  # (B, T, V) float32
    return lm_loss(logits, batch.labels.to(device), mode)


def lm_loss(logits: torch.Tensor, labels: torch.Tensor, mode: str = "token") -> torch.Tensor:
    """Next-token cross-entropy over supervised positions (labels != IGNORE_INDEX).

    ``token``: mean over the micro-batch's supervised tokens (as the original); ``sample``: the
    mean of per-sample means, so short answers weigh as much as long ones. A micro-batch with
    no supervised token gives a zero loss that still reaches every parameter.
    """
    labels = labels[:, 1:]
    per_token = F.cross_entropy(logits[:, :-1].flatten(0, 1), labels.flatten(),
                                ignore_index=IGNORE_INDEX, reduction="none").view_as(labels)
    mask = labels != IGNORE_INDEX
    if mode == "token":
        return per_token.sum() / mask.sum().clamp(min=1)
    per_sample = per_token.sum(1) / mask.sum(1).clamp(min=1)
    rows = mask.any(1)
    return per_sample[rows].mean() if rows.any() else per_token.sum()


def _clip(model: SphinxModel, max_norm: float) -> float:
    params = [p for p in model.parameters() if p.grad is not None]
    if max_norm <= 0:
        norms = [p.grad.detach().float().norm() for p in params]
        norm = torch.stack([_full(n) for n in norms]).norm() if norms else torch.zeros(())
        return float(norm)
    return float(_full(torch.nn.utils.clip_grad_norm_(params, max_norm)))


def _full(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


# --- data -------------------------------------------------------------------------------------

class Batches:
    """Endless micro-batches over epochs, with the sampler position counted as consumed."""

    def __init__(self, mixture: Mixture, sampler: TypeGroupedBatchSampler, collate: Collator,
                 num_workers: int):
        self.mixture, self.sampler, self.collate = mixture, sampler, collate
        self.num_workers = num_workers
        self.consumed = 0

    def __iter__(self) -> Iterator[Batch]:
        while True:
            # Its own generator: a DataLoader draws a base seed when it starts, which must not
            # come from the global RNG (a resumed run would then diverge from an uninterrupted one).
            seeded = torch.Generator().manual_seed(self.sampler.seed + self.sampler.epoch)
            batches = DataLoader(self.mixture, batch_sampler=self.sampler, collate_fn=self.collate,
                                 num_workers=self.num_workers, generator=seeded)
            for batch in batches:
                self.consumed += 1
                yield batch
            self.sampler.set_epoch(self.sampler.epoch + 1)
            self.consumed = 0

    def state(self) -> dict:
        return self.sampler.state_dict(self.consumed)


# --- outputs ----------------------------------------------------------------------------------

class Metrics:
    """``metrics.jsonl``: one JSON object per optimiser step (rank 0 writes).

    On resume, records after the resumed step (written before the interruption) are dropped so
    that the file tells one consistent history.
    """

    def __init__(self, path: Path, active: bool, keep_until: int):
        self.path, self.active = path, active
        if not active:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if path.is_file():
            kept = [line for line in path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= keep_until]
        path.write_text("".join(line + "\n" for line in kept))

    def write(self, record: dict) -> None:
        if self.active:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def export_final(model: SphinxModel, cfg: TrainConfig, prepared: Prepared, d: distributed.Dist,
                 precision: Precision, final: Path | None = None) -> Path:
    """``out/final`` (or ``final``): the whole model (LoRA merged) in our checkpoint format,
    written atomically.

    Rank 0 gathers the full state dict on the CPU and casts one tensor at a time while writing.
    """
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    full = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                cpu_offload=True))
    final = final or cfg.out / "final"
    if d.is_main:
        if cfg.lora is not None:
            full = lora.merge_state(full, cfg.lora.scale)
        dtype = precision.saved(cfg.save_dtype)
        canonical = keymap.to_canonical(full)

        def produce(name: str) -> torch.Tensor:
            tensor = canonical[name]
            return tensor.to(dtype) if tensor.is_floating_point() else tensor

        specs = [ours.TensorSpec(n, tuple(t.shape), dtype if t.is_floating_point() else t.dtype)
                 for n, t in canonical.items()]
        tmp = final.with_name(final.name + ".tmp")  # one per target: exports of two steps at once
        shutil.rmtree(tmp, ignore_errors=True)
        ours.write(tmp, prepared.config, prepared.tokenizer_path, specs, produce)
        state.publish(tmp, final)
    d.barrier()
    return final


def export_checkpoint(run: str | Path, step: int | None = None,
                      out: str | Path | None = None) -> Path:
    """A run's training checkpoint as a model folder in ``final``'s format, to chat with or
    evaluate any saved step. ``run`` is a training ``out`` directory: its ``config.yaml`` (the
    trainer's copy) names the model it started from, which supplies the frozen weights that
    checkpoints leave out. ``step`` defaults to the newest complete checkpoint; ``out`` to
    ``run/exported/step-NNNNNNN``. One process.
    """
    from .config import load_config

    run = Path(run)
    if not (run / "config.yaml").is_file():
        raise FileNotFoundError(f"{run}: no config.yaml; expected a training run's out directory")
    saved = {state.step_of(p): p for p in state.complete(run)}
    if not saved:
        raise FileNotFoundError(f"{run}: no complete checkpoint under checkpoints/")
    step = max(saved) if step is None else step
    if step not in saved:
        raise ValueError(f"{run}: no complete checkpoint of step {step}; saved steps: "
                         f"{sorted(saved)}")
    cfg = load_config(run / "config.yaml")
    d = distributed.init(cfg.device)  # the run's device, hence its precision and saved dtype
    try:
        precision = Precision.resolve(cfg.precision, d.device)
        prepared = prepare_model(cfg, d, precision)
        state.load(saved[step], prepared.model, make_optimizer(prepared.model, cfg.optim), d)
        out = Path(out) if out is not None else run / "exported" / saved[step].name
        return export_final(prepared.model, cfg, prepared, d, precision, final=out)
    finally:
        distributed.close(d)


__all__ = ["Prepared", "export_checkpoint", "lm_loss", "prepare_model", "train"]
