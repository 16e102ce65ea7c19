"""Which parts of a SPHINX model train: the freezing policy is a training choice, not a model one."""

from __future__ import annotations

from torch import nn

PARTS = ("llm", "projector", "start_end", "encoders")
DEFAULT_TRAINABLE = ("llm", "projector", "start_end")  # SPHINX fine-tuning (spec 9.2)


def part_of(name: str) -> str:
    """The part a parameter name belongs to (``visual_proj.0.weight`` -> ``projector``)."""
    head = name.split(".", 1)[0]
    if head in ("visual_proj", "qformer_proj"):
        return "projector"
    if head in ("start_img", "end_img"):
        return "start_end"
    if head in ("llm", "encoders"):
        return head
    raise ValueError(f"parameter {name!r} belongs to no known part of a SPHINX model")


def check_parts(parts) -> tuple[str, ...]:
    parts = tuple(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise ValueError(f"unknown trainable part(s) {unknown}; choose among {list(PARTS)}")
    if not parts:
        raise ValueError("trainable is empty: nothing would train")
    return parts


def is_lora(name: str) -> bool:
    return name.endswith((".lora_a", ".lora_b"))


def apply_trainable(model: nn.Module, parts=DEFAULT_TRAINABLE) -> dict[str, int]:
    """Set ``requires_grad`` by part; return the trainable parameter count per part.

    When the LLM carries LoRA adapters, ``llm`` trains the adapters only and its base weights
    stay frozen.
    """
    parts = check_parts(parts)
    has_lora = any(is_lora(name) for name, _ in model.named_parameters())
    counts = dict.fromkeys(parts, 0)
    for name, param in model.named_parameters():
        part = part_of(name)
        trains = part in parts and (not has_lora or part != "llm" or is_lora(name))
        param.requires_grad_(trains)
        if trains:
            counts[part] += param.numel()
    return counts
