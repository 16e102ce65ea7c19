"""Compare sphinx-mllm with the original SPHINX code's outputs (parity-harness artifacts).

The artifacts come from ``shared/reference/parity-harness/make_reference.py`` (the original
LLaMA2-Accessory code run on CPU, real-size encoders, a small LLM): released-format checkpoints,
inputs, logits, greedy tokens and per-encoder intermediates. This script loads those checkpoints
with our loader and prints one JSON report of every difference.

    python scripts/parity_check.py /path/to/refdata [--variant llama_ens|llama_ens5] [--out report.json]

About 14 GB of RAM and a few minutes per variant on 2 cores.

The reference was run with open_clip 3.3, whose transformer is batch-first; SPHINX's code hands
it tokens sequence-first (correct for the open_clip of its release), so that run's CLIP tower
attended across the batch axis. Our CLIP is compared as it is (``encoders_fp32.clip_tokens``) and
emulating that quirk (``clip_tokens_attention_over_batch_axis``); logits and generation are then
compared with the quirk emulated, so that the rest of the model is checked against the reference.
"""

from __future__ import annotations

import argparse
import gc
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sphinx_mllm.checkpoint import official
from sphinx_mllm.constants import IMAGE_PLACEHOLDER_ID
from sphinx_mllm.conversation import render
from sphinx_mllm.inference.generate import decode_one_token, prefill
from sphinx_mllm.processing import image_to_tensor
from sphinx_mllm.tokenizer import Tokenizer

CHECKPOINTS = {"llama_ens": "ckpt_fp32_mp1", "llama_ens5": "ckpt_bf16_mp2"}


def diff(a, b) -> float:
    return float((torch.as_tensor(a).float() - torch.as_tensor(b).float()).abs().max())


def npy(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(path))


def logits_for(model, token_ids: list[int], image: torch.Tensor) -> torch.Tensor:
    """(len(token_ids), V) rows aligned as the reference's compute_logits: from end_img on."""
    n = model.cfg.image_tokens
    ids = torch.tensor([[token_ids[0]] + [IMAGE_PLACEHOLDER_ID] * n + token_ids[1:]])
    with torch.inference_mode():
        return model(ids, image)[0, n:]


@torch.inference_mode()
def greedy(model, token_ids: list[int], image: torch.Tensor, steps: int, eos: int):
    """Greedy tokens and each step's logits, through our prefill / decode functions."""
    n = model.cfg.image_tokens
    prompt = [token_ids[0]] + [IMAGE_PLACEHOLDER_ID] * n + token_ids[1:]
    model.llm.setup_caches(1, len(prompt) + steps)
    try:
        logits = prefill(model, torch.tensor([prompt]), image, torch.tensor([len(prompt)]))
        tokens, step_logits = [], []
        pos = torch.tensor([len(prompt)])
        for _ in range(steps):
            step_logits.append(logits[0])
            token = logits.argmax(-1)
            tokens.append(int(token))
            if tokens[-1] == eos:
                break
            logits = decode_one_token(model, token, pos)
            pos = pos + 1
    finally:
        model.llm.clear_caches()
    return tokens, torch.stack(step_logits)


def clip_over_batch_axis(clip, views: torch.Tensor) -> torch.Tensor:
    """Our CLIP tower with attention run across the batch axis instead of the tokens.

    That is what the reference computes when it is run with open_clip >= 2.25 (batch-first
    transformer, July 2024): SPHINX's code permutes tokens to (L, N, D) for the sequence-first
    transformer of its time, so a batch-first transformer mixes views instead of tokens.
    """
    m = clip.model
    h = m.pre_layrnorm(m.embeddings(views))
    h = m.encoder(inputs_embeds=h.transpose(0, 1)).last_hidden_state.transpose(0, 1)
    return m.post_layernorm(h)


class ReferenceClipQuirk:
    """Context manager: make ``model``'s CLIP tower compute as the (open_clip 3) reference did."""

    def __init__(self, model):
        self.clip = model.encoders["clip"]

    def __enter__(self):
        self.handle = self.clip.register_forward_hook(
            lambda module, args, out: clip_over_batch_axis(module, args[0]))

    def __exit__(self, *exc):
        self.handle.remove()


@torch.inference_mode()
def encoder_diffs(model, inter: Path) -> dict:
    """Each encoder (and projection) on the reference's own encoder input views."""
    views = npy(inter / "encoder_input_views.npy").to(model.visual_proj[0].weight.dtype)
    enc = model.encoders
    out = {"clip_tokens": diff(enc["clip"](views), npy(inter / "clip_tokens.npy")),
           "clip_tokens_attention_over_batch_axis": diff(clip_over_batch_axis(enc["clip"], views),
                                                         npy(inter / "clip_tokens.npy")),
           "dinov2_tokens": diff(enc["dinov2"](views), npy(inter / "dinov2_tokens.npy")),
           "qformer_last_hidden_state": diff(enc["qformer"](views),
                                             npy(inter / "qformer_last_hidden_state.npy"))}
    ref_map = npy(inter / "convnext_map.npy")  # (V, 3072, 8, 8) after the head norm
    up = ref_map.repeat_interleave(2, 2).repeat_interleave(2, 3).flatten(2).transpose(1, 2)
    ref_conv = torch.cat([up.mean(1, keepdim=True), up], dim=1)
    ours_conv = enc["convnext"](views)
    out["convnext_tokens"] = diff(ours_conv, ref_conv)
    fused = torch.cat([clip_over_batch_axis(enc["clip"], views), ours_conv, enc["dinov2"](views)],
                      dim=-1)
    out["visual_proj_out"] = diff(model.visual_proj(fused), npy(inter / "visual_proj_out.npy"))
    out["qformer_proj_out"] = diff(model.qformer_proj(enc["qformer"](views)),
                                   npy(inter / "qformer_proj_out.npy"))
    return out


def check(refdata: Path, variant: str, steps: int = 16, bf16: bool = True) -> dict:
    base = refdata / variant
    ckpt = base / CHECKPOINTS[variant]
    inputs, outputs = base / "inputs", base / "outputs"
    tokenizer = Tokenizer.from_file(ckpt / "tokenizer.model")
    prompt = render([{"role": "user", "content": "What's in the image?"}],
                    add_generation_prompt=True).text
    token_ids = [int(t) for t in np.load(inputs / "token_ids.npy")]
    report: dict = {"variant": variant,
                    "prompt_equal": prompt == (inputs / "prompt.txt").read_text(),
                    "token_ids_equal": [tokenizer.bos_id] + tokenizer.encode(prompt) == token_ids}
    model = official.load(ckpt, dtype=torch.float32)
    size = model.cfg.image_size
    report["preset"], report["image_tokens"] = model.cfg.name, model.cfg.image_tokens
    for name in ("image", "image_crop"):
        png = refdata / "images" / ("astronaut.png" if name == "image" else "astronaut_crop.png")
        report[f"preprocess_{name}_max_abs"] = diff(image_to_tensor(Image.open(png), size)[None],
                                                     npy(inputs / f"{name}.npy"))
    image = npy(inputs / "image.npy").float()
    report["encoders_fp32"] = encoder_diffs(model, outputs / "intermediates")
    # Everything below runs CLIP as the reference run did (see clip_over_batch_axis); the
    # faithful tower is compared on its own above.
    with ReferenceClipQuirk(model):
        for name, ref in (("image", "logits_fp32"), ("image_crop", "logits_crop_fp32")):
            if (outputs / f"{ref}.npy").exists():
                got = logits_for(model, token_ids, npy(inputs / f"{name}.npy").float())
                want = npy(outputs / f"{ref}.npy")
                report[f"{ref}_max_abs"] = diff(got, want)
                report[f"{ref}_argmax_agree"] = float((got.argmax(-1) == want.argmax(-1)).float().mean())
        tokens, step_logits = greedy(model, token_ids, image, steps, tokenizer.eos_id)
    report["gen_tokens_fp32"] = tokens
    report["gen_tokens_fp32_equal"] = tokens == np.load(outputs / "gen_token_ids_fp32.npy").tolist()
    report["gen_step_logits_fp32_max_abs"] = diff(step_logits, npy(outputs / "gen_step_logits_fp32.npy"))
    with torch.inference_mode():  # the faithful model on the same input, for the record
        report["logits_fp32_faithful_clip_max_abs"] = diff(
            logits_for(model, token_ids, image), npy(outputs / "logits_fp32.npy"))
    del model
    gc.collect()
    if bf16 and (outputs / "logits_bf16.npy").exists():
        model = official.load(ckpt, dtype=torch.bfloat16)
        image16 = npy(inputs / "image.npy").to(torch.bfloat16)
        with ReferenceClipQuirk(model):
            got = logits_for(model, token_ids, image16)
            want = npy(outputs / "logits_bf16.npy")
            report["logits_bf16_max_abs"] = diff(got, want)
            report["logits_bf16_argmax_agree"] = float((got.argmax(-1) == want.argmax(-1)).float().mean())
            tokens, _ = greedy(model, token_ids, image16, steps, tokenizer.eos_id)
        report["gen_tokens_bf16"] = tokens
        report["gen_tokens_bf16_equal"] = tokens == np.load(outputs / "gen_token_ids_bf16.npy").tolist()
        del model
        gc.collect()
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("refdata", type=Path)
    ap.add_argument("--variant", choices=sorted(CHECKPOINTS), action="append")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--skip-bf16", action="store_true",
                    help="skip the bf16 run (slow on CPUs without native bf16 matmuls)")
    args = ap.parse_args()
    reports = [check(args.refdata, v, bf16=not args.skip_bf16)
               for v in (args.variant or sorted(CHECKPOINTS))]
    text = json.dumps(reports, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
