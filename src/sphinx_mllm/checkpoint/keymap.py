"""The one declarative map between *canonical* weight names and our module names.

Canonical names are the released SPHINX checkpoints' names without the ``llma.`` prefix: Meta
LLaMA names, open_clip ViT names (``clip.visual.*``), timm ConvNeXt names
(``openclip_convnext_xxl.*``), DINOv2 hub names (``dinov2_vitg14.*``) and transformers BLIP-2
names (``qformer.*``). Our own checkpoint format stores canonical names too, so it does not
depend on how the installed transformers version names its modules.

A rule maps one canonical template to one or more *alternatives*; an alternative is a tuple of
our-name templates. A 1-tuple copies the tensor; an n-tuple splits it into n equal chunks along
dim 0 (fused qkv -> q, k, v). Alternatives exist where transformers renamed modules between
versions (DINOv2 in 5.17 vs 5.24); the first alternative whose names all exist in the model wins.
Templates use ``{i}``/``{j}`` (integers), ``{p}`` (weight|bias) and ``{rest}`` (anything).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

import torch


@dataclass(frozen=True)
class Rule:
    canonical: str
    alternatives: tuple[tuple[str, ...], ...]

    @cached_property
    def pattern(self) -> re.Pattern:
        return _compile(self.canonical)


def _compile(template: str) -> re.Pattern:
    regex = re.escape(template)
    for name, sub in (("i", r"\d+"), ("j", r"\d+"), ("p", r"weight|bias"), ("rest", r".+")):
        regex = regex.replace(re.escape("{" + name + "}"), f"(?P<{name}>{sub})")
    return re.compile(regex)


def _one(canonical: str, ours: str) -> Rule:
    return Rule(canonical, ((ours,),))


CLIP = "encoders.clip.model."
CONVNEXT = "encoders.convnext.model."
DINO = "encoders.dinov2.model."
DINO_LAYER = DINO + "encoder.layer.{i}."
CLIP_LAYER = CLIP + "encoder.layers.{i}."
CONV_LAYER = CONVNEXT + "encoder.stages.{i}.layers.{j}."

RULES: tuple[Rule, ...] = (
    # LLaMA decoder, projections, boundary vectors
    _one("tok_embeddings.weight", "llm.tok_embeddings.weight"),
    _one("norm.weight", "llm.norm.weight"),
    _one("output.weight", "llm.output.weight"),
    _one("layers.{rest}", "llm.layers.{rest}"),
    _one("start_img", "start_img"),
    _one("end_img", "end_img"),
    _one("visual_proj.{rest}", "visual_proj.{rest}"),
    _one("qformer_proj.{rest}", "qformer_proj.{rest}"),
    # BLIP-2 vision tower, query tokens and Q-Former: transformers names on both sides
    _one("qformer.{rest}", "encoders.qformer.{rest}"),
    # OpenAI CLIP ViT (open_clip names)
    _one("clip.visual.class_embedding", CLIP + "embeddings.class_embedding"),
    _one("clip.visual.positional_embedding", CLIP + "embeddings.position_embedding.weight"),
    _one("clip.visual.conv1.weight", CLIP + "embeddings.patch_embedding.weight"),
    # ``stem: conv`` (model.vision.stem; toy-world only, no released weights: the names are ours)
    _one("clip.visual.conv_stem.{i}.{p}", CLIP + "embeddings.patch_embedding.layers.{i}.{p}"),
    _one("clip.visual.ln_pre.{p}", CLIP + "pre_layrnorm.{p}"),
    _one("clip.visual.ln_post.{p}", CLIP + "post_layernorm.{p}"),
    _one("clip.visual.transformer.resblocks.{i}.ln_1.{p}", CLIP_LAYER + "layer_norm1.{p}"),
    _one("clip.visual.transformer.resblocks.{i}.ln_2.{p}", CLIP_LAYER + "layer_norm2.{p}"),
    Rule("clip.visual.transformer.resblocks.{i}.attn.in_proj_weight",
         ((CLIP_LAYER + "self_attn.q_proj.weight", CLIP_LAYER + "self_attn.k_proj.weight",
           CLIP_LAYER + "self_attn.v_proj.weight"),)),
    Rule("clip.visual.transformer.resblocks.{i}.attn.in_proj_bias",
         ((CLIP_LAYER + "self_attn.q_proj.bias", CLIP_LAYER + "self_attn.k_proj.bias",
           CLIP_LAYER + "self_attn.v_proj.bias"),)),
    _one("clip.visual.transformer.resblocks.{i}.attn.out_proj.{p}", CLIP_LAYER + "self_attn.out_proj.{p}"),
    _one("clip.visual.transformer.resblocks.{i}.mlp.c_fc.{p}", CLIP_LAYER + "mlp.fc1.{p}"),
    _one("clip.visual.transformer.resblocks.{i}.mlp.c_proj.{p}", CLIP_LAYER + "mlp.fc2.{p}"),
    # OpenCLIP ConvNeXt-XXL trunk (timm names)
    _one("openclip_convnext_xxl.stem.0.{p}", CONVNEXT + "embeddings.patch_embeddings.{p}"),
    _one("openclip_convnext_xxl.stem.1.{p}", CONVNEXT + "embeddings.layernorm.{p}"),
    _one("openclip_convnext_xxl.stages.{i}.downsample.{j}.{p}",
         CONVNEXT + "encoder.stages.{i}.downsampling_layer.{j}.{p}"),
    _one("openclip_convnext_xxl.stages.{i}.blocks.{j}.conv_dw.{p}", CONV_LAYER + "dwconv.{p}"),
    _one("openclip_convnext_xxl.stages.{i}.blocks.{j}.norm.{p}", CONV_LAYER + "layernorm.{p}"),
    _one("openclip_convnext_xxl.stages.{i}.blocks.{j}.mlp.fc1.{p}", CONV_LAYER + "pwconv1.{p}"),
    _one("openclip_convnext_xxl.stages.{i}.blocks.{j}.mlp.fc2.{p}", CONV_LAYER + "pwconv2.{p}"),
    _one("openclip_convnext_xxl.stages.{i}.blocks.{j}.gamma", CONV_LAYER + "layer_scale_parameter"),
    _one("openclip_convnext_xxl.head.norm.{p}", CONVNEXT + "layernorm.{p}"),
    # DINOv2 ViT-g/14 (hub names); two transformers layouts
    _one("dinov2_vitg14.cls_token", DINO + "embeddings.cls_token"),
    _one("dinov2_vitg14.mask_token", DINO + "embeddings.mask_token"),
    _one("dinov2_vitg14.pos_embed", DINO + "embeddings.position_embeddings"),
    _one("dinov2_vitg14.patch_embed.proj.{p}", DINO + "embeddings.patch_embeddings.projection.{p}"),
    _one("dinov2_vitg14.patch_embed.conv_stem.{i}.{p}",  # stem: conv, as CLIP's above
         DINO + "embeddings.patch_embeddings.projection.layers.{i}.{p}"),
    _one("dinov2_vitg14.blocks.{i}.norm1.{p}", DINO_LAYER + "norm1.{p}"),
    _one("dinov2_vitg14.blocks.{i}.norm2.{p}", DINO_LAYER + "norm2.{p}"),
    _one("dinov2_vitg14.blocks.{i}.ls1.gamma", DINO_LAYER + "layer_scale1.lambda1"),
    _one("dinov2_vitg14.blocks.{i}.ls2.gamma", DINO_LAYER + "layer_scale2.lambda1"),
    Rule("dinov2_vitg14.blocks.{i}.attn.qkv.{p}",
         ((DINO_LAYER + "attention.q_proj.{p}", DINO_LAYER + "attention.k_proj.{p}",
           DINO_LAYER + "attention.v_proj.{p}"),
          (DINO_LAYER + "attention.attention.query.{p}", DINO_LAYER + "attention.attention.key.{p}",
           DINO_LAYER + "attention.attention.value.{p}"))),
    Rule("dinov2_vitg14.blocks.{i}.attn.proj.{p}",
         ((DINO_LAYER + "attention.o_proj.{p}",), (DINO_LAYER + "attention.output.dense.{p}",))),
    Rule("dinov2_vitg14.blocks.{i}.mlp.w12.{p}",
         ((DINO_LAYER + "mlp.gate_proj.{p}", DINO_LAYER + "mlp.up_proj.{p}"),
          (DINO_LAYER + "mlp.weights_in.{p}",))),
    Rule("dinov2_vitg14.blocks.{i}.mlp.w3.{p}",
         ((DINO_LAYER + "mlp.down_proj.{p}",), (DINO_LAYER + "mlp.weights_out.{p}",))),
    _one("dinov2_vitg14.norm.{p}", DINO + "layernorm.{p}"),
)

# Present in the released checkpoints but unused by SPHINX: open_clip's text-side leftovers and
# the CLIP visual projection (SPHINX takes tokens before ``proj``).
DROPPED = tuple(_compile(t) for t in (
    "clip.token_embedding.weight", "clip.positional_embedding", "clip.ln_final.{p}",
    "clip.text_projection", "clip.logit_scale", "clip.visual.proj"))


def is_dropped(canonical: str) -> bool:
    return any(p.fullmatch(canonical) for p in DROPPED)


def _targets(name: str, our_keys: Iterable[str] | None) -> tuple[str, ...] | None:
    """Our names for canonical ``name`` (first matching rule, first alternative that exists)."""
    for rule in RULES:
        match = rule.pattern.fullmatch(name)
        if not match:
            continue
        filled = [tuple(t.format(**match.groupdict()) for t in alt) for alt in rule.alternatives]
        if our_keys is None:
            return filled[0]
        for alt in filled:
            if all(t in our_keys for t in alt):
                return alt
        return filled[0]  # reported as unexpected by the caller
    return None


@dataclass
class Plan:
    """A resolved canonical -> ours plan for one model."""

    plan: dict[str, tuple[str, ...]]  # canonical -> our names (1 = copy, n = split dim 0)
    dropped: list[str]


def resolve(canonical_names: Iterable[str], our_keys: Iterable[str]) -> Plan:
    """Plan the mapping of ``canonical_names`` onto a model with ``our_keys``; strict.

    Raises KeyError naming every canonical name no rule maps (or maps to a missing module) and
    every model key left without a source.
    """
    our_keys = set(our_keys)
    plan, dropped, unexpected = {}, [], []
    for name in canonical_names:
        if is_dropped(name):
            dropped.append(name)
            continue
        targets = _targets(name, our_keys)
        if targets is None or not all(t in our_keys for t in targets):
            unexpected.append(name)
        else:
            plan[name] = targets
    missing = our_keys - {t for ts in plan.values() for t in ts}
    if unexpected or missing:
        raise KeyError(f"checkpoint does not fit the model: unexpected {sorted(unexpected)[:10]} "
                       f"({len(unexpected)} in all), missing {sorted(missing)[:10]} "
                       f"({len(missing)} in all)")
    return Plan(plan, dropped)


def split(tensor: torch.Tensor, n: int) -> tuple[torch.Tensor, ...]:
    if tensor.shape[0] % n:
        raise ValueError(f"cannot split a {tuple(tensor.shape)} tensor into {n} along dim 0")
    return tensor.chunk(n, dim=0)


def to_canonical(state: Mapping, fuse=torch.cat) -> dict:
    """Our state dict -> canonical names (fusing split tensors back); inverse of the plan.

    Values may be tensors or lazy handles; ``fuse`` joins the parts of a split tensor (dim 0).
    """
    ours = set(state)
    out = {}
    for rule in RULES:
        for alt in rule.alternatives:
            first = _compile(alt[0])
            for key in sorted(ours):
                match = first.fullmatch(key)
                if not match:
                    continue
                groups = match.groupdict()
                names = [t.format(**groups) for t in alt]
                if not all(n in ours for n in names):
                    continue
                canonical = rule.canonical.format(**groups)
                out[canonical] = fuse([state[n] for n in names]) if len(names) > 1 else state[names[0]]
                ours -= set(names)
    if ours:
        raise KeyError(f"no canonical name for {sorted(ours)[:10]}")
    return out


def check_shapes(plan: Plan, shapes: Mapping[str, tuple[int, ...]],
                 expected: Mapping[str, torch.Tensor]) -> None:
    """Raise ValueError (naming every offender) if a canonical shape does not fit the model."""
    bad = []
    for name, targets in plan.plan.items():
        want = list(expected[targets[0]].shape)
        if len(targets) > 1:
            want[0] *= len(targets)
        if list(shapes[name]) != want:
            bad.append(f"{name}: checkpoint {list(shapes[name])}, model {want}")
    if bad:
        raise ValueError(f"{len(bad)} tensor(s) do not fit the config: " + "; ".join(bad[:10]))
