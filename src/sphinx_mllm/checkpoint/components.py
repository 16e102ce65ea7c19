"""Start a SPHINX checkpoint from component weights (``sphinx-mllm assemble``).

Each reader turns one upstream layout into canonical names (see :mod:`keymap`) as *lazy*
tensors, so that assembling streams weights from memory-mapped files into the output shards:

* LLM: an HF LLaMA / TinyLlama safetensors directory (q/k rows un-permuted) or Meta
  ``consolidated.*.pth`` + ``params.json`` (model-parallel shards merged);
* CLIP ViT-L/14: an HF CLIP directory or an open_clip state dict (``visual.*``);
* ConvNeXt-XXL: open_clip's ``open_clip_pytorch_model.bin`` (``visual.trunk.*``, timm names);
* DINOv2: an HF directory or the hub's ``.pth``;
* BLIP-2: an HF BLIP-2 directory (vision tower, query tokens, Q-Former; the LM is ignored).

Projections and the start/end vectors are freshly initialised.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from safetensors import safe_open

from ..config import LLMConfig, SphinxConfig
from ..model import build
from . import keymap, ours
from .hf_llama import llm_config_from_hf, meta_name, unpermute_rope
from .official import merged_shape, meta_llm_config, split_dim
from .safetensors_io import FROM_NAME, TensorSpec
from .torch_files import load_state_dict


@dataclass(frozen=True)
class Lazy:
    """A tensor known by shape and dtype, loaded (and transformed) only when written."""

    shape: tuple[int, ...]
    dtype: torch.dtype
    load: Callable[[], torch.Tensor]

    @classmethod
    def of(cls, tensor: torch.Tensor) -> Lazy:
        return cls(tuple(tensor.shape), tensor.dtype, lambda: tensor)

    def map(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> Lazy:
        return Lazy(self.shape, self.dtype, lambda: fn(self.load()))


def fuse(parts: list[Lazy]) -> Lazy:
    shape = (sum(p.shape[0] for p in parts),) + parts[0].shape[1:]
    return Lazy(shape, parts[0].dtype, lambda: torch.cat([p.load() for p in parts]))


def read_tensors(path: str | Path) -> dict[str, Lazy]:
    """All tensors of a file or directory (safetensors preferred, else weights-only pickles)."""
    path = Path(path)
    files = [path] if path.is_file() else sorted(path.glob("*.safetensors"))
    if path.is_dir() and not files:
        files = sorted(p for p in path.iterdir() if p.suffix in (".bin", ".pth", ".pt"))
    if not files:
        raise FileNotFoundError(f"no weight files (*.safetensors, *.bin, *.pth) in {path}")
    out: dict[str, Lazy] = {}
    for f in files:
        if f.suffix == ".safetensors":
            handle = safe_open(str(f), framework="pt")
            for name in handle.keys():
                sl = handle.get_slice(name)
                out[name] = Lazy(tuple(sl.get_shape()), FROM_NAME[sl.get_dtype()],
                                 lambda h=handle, n=name: h.get_tensor(n))
        else:
            out.update({k: Lazy.of(v) for k, v in load_state_dict(f).items()})
    return out


def _with_prefix(tensors: dict[str, Lazy], strip: str, add: str,
                 ignore: re.Pattern | None = None) -> dict[str, Lazy]:
    out = {}
    for name, t in tensors.items():
        if ignore is not None and ignore.match(name):
            continue
        if not name.startswith(strip):
            raise KeyError(f"unexpected weight {name!r} (expected names under {strip!r})")
        out[add + name[len(strip):]] = t
    return out


# --- per-component readers -> canonical names ---------------------------------------------------


def read_llm(path: str | Path) -> tuple[dict[str, Lazy], LLMConfig]:
    """HF LLaMA directory (config.json + safetensors) or Meta consolidated shards + params.json."""
    path = Path(path)
    if (path / "config.json").is_file():
        cfg = llm_config_from_hf(json.loads((path / "config.json").read_text()))
        out = {}
        for name, t in read_tensors(path).items():
            mapped = meta_name(name, cfg)
            if mapped is not None:
                meta, heads = mapped
                out[meta] = t if heads is None else t.map(lambda w, h=heads: unpermute_rope(w, h))
        return out, cfg
    params = json.loads((path / "params.json").read_text())
    shards = [load_state_dict(f) for f in sorted(path.glob("consolidated.*.pth"))]
    if not shards:
        raise FileNotFoundError(f"{path}: neither an HF config.json nor Meta consolidated.*.pth")
    out = {}
    for name in shards[0]:
        if name.endswith("rope.freqs"):
            continue
        dim = split_dim(name)
        if dim is None or len(shards) == 1:
            out[name] = Lazy.of(shards[0][name])
        else:
            parts = [s[name] for s in shards]
            out[name] = Lazy(merged_shape(name, shards), parts[0].dtype,
                             lambda ps=parts, d=dim: torch.cat(ps, dim=d))
    return out, meta_llm_config(params, out["tok_embeddings.weight"].shape[0])


def read_clip(path: str | Path) -> dict[str, Lazy]:
    tensors = read_tensors(path)
    if any(n.startswith("vision_model.") for n in tensors):  # HF CLIPModel (any version)
        ours_ = _with_prefix(tensors, "vision_model.", keymap.CLIP,
                             ignore=re.compile(r"(?!vision_model\.)|.*position_ids$"))
    elif any(n.startswith("embeddings.") for n in tensors):  # HF CLIPVisionModel (transformers 5)
        ours_ = _with_prefix(tensors, "", keymap.CLIP, ignore=re.compile(r".*position_ids$"))
    else:  # open_clip state dict
        return _with_prefix(tensors, "visual.", "clip.visual.",
                            ignore=re.compile(r"(?!visual\.)|visual\.proj$"))
    return keymap.to_canonical(ours_, fuse)


def read_convnext(path: str | Path) -> dict[str, Lazy]:
    return _with_prefix(read_tensors(path), "visual.trunk.", "openclip_convnext_xxl.",
                        ignore=re.compile(r"(?!visual\.trunk\.)|visual\.trunk\.head\.(?!norm)"))


def read_dinov2(path: str | Path) -> dict[str, Lazy]:
    tensors = read_tensors(path)
    if any(n.startswith("embeddings.") for n in tensors):  # HF Dinov2Model
        ours_ = _with_prefix(tensors, "", keymap.DINO, ignore=re.compile(r"pooler\."))
        return keymap.to_canonical(ours_, fuse)
    return _with_prefix(tensors, "", "dinov2_vitg14.")


def read_blip2(path: str | Path) -> dict[str, Lazy]:
    keep = re.compile(r"(vision_model\.|qformer\.|query_tokens$)")
    tensors = {n: t for n, t in read_tensors(path).items() if keep.match(n)}
    for name in [n for n in tensors if n.endswith("self_attn.q_bias")]:
        # Older transformers kept q/v biases apart (k has none); ours is one qkv bias.
        stem = name.removesuffix("q_bias")
        q, v = tensors.pop(name), tensors.pop(stem + "v_bias")
        tensors[stem + "qkv.bias"] = Lazy((3 * q.shape[0],), q.dtype, lambda q=q, v=v: torch.cat(
            [q.load(), torch.zeros_like(q.load()), v.load()]))
    return {"qformer." + n: t for n, t in tensors.items()}


READERS = {"clip": read_clip, "convnext": read_convnext, "dinov2": read_dinov2, "qformer": read_blip2}


def assemble(preset: str, llm: str | Path, tokenizer: str | Path, out: str | Path,
             encoders: dict[str, str | Path], dtype: torch.dtype | None = torch.bfloat16,
             seed: int = 0) -> Path:
    """Write our checkpoint for ``preset`` from component weights; adapters freshly initialised.

    ``encoders`` maps each encoder kind of the preset (clip, convnext, dinov2, qformer) to its
    weights. Every model tensor must come from a component or the fresh adapters (strict).
    """
    base = SphinxConfig.from_name(preset)
    missing = set(base.encoder_kinds) - set(encoders)
    extra = set(encoders) - set(base.encoder_kinds)
    if missing or extra:
        raise ValueError(f"{preset} needs weights for {sorted(base.encoder_kinds)}; "
                         f"missing {sorted(missing)}, not used by it {sorted(extra)}")
    canonical, llm_cfg = read_llm(llm)
    cfg = dataclasses.replace(base, llm=dataclasses.replace(llm_cfg, max_seq_len=base.llm.max_seq_len))
    for kind, path in encoders.items():
        canonical.update(READERS[kind](path))
    model = build(cfg, device="meta")
    torch.manual_seed(seed)
    adapters = {k: Lazy.of(v) for k, v in model.fresh_adapters().items()}
    canonical.update(keymap.to_canonical(adapters, fuse))
    expected = model.state_dict()
    plan = keymap.resolve(canonical, expected)
    keymap.check_shapes(plan, {n: t.shape for n, t in canonical.items()}, expected)
    specs = [TensorSpec(n, canonical[n].shape, dtype or canonical[n].dtype) for n in plan.plan]
    return ours.write(out, cfg, tokenizer, specs,
                      lambda n: canonical[n].load().to(dtype or canonical[n].dtype))
