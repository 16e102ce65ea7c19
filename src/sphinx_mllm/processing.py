"""Images -> padded square -> tensor; chat messages -> token ids with placeholders + labels.

Frames: the model sees the image padded to a square (original centred) and resized to
``image_size``; box coordinates the model reads and writes are normalised to that padded square.
The model cuts its encoders' views from that square itself (``model.views``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from .config import SphinxConfig
from .constants import CLIP_MEAN, CLIP_STD, IGNORE_INDEX, IMAGE_PLACEHOLDER_ID, PAD_COLOR
from .conversation import Message, render
from .tokenizer import Tokenizer

# --- images ------------------------------------------------------------------------------------


def pad_to_square(image: Image.Image, fill: tuple[int, int, int] = PAD_COLOR) -> Image.Image:
    """Centre ``image`` on a square canvas of side max(W, H); offset (long - short) // 2."""
    image = image.convert("RGB")
    w, h = image.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), fill)
    canvas.paste(image, ((side - w) // 2, (side - h) // 2))
    return canvas


def image_to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """Padded-square, PIL-bicubic resized, CLIP-normalised float32 tensor (3, size, size)."""
    square = pad_to_square(image).resize((size, size), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(square, dtype=np.float32) / 255.0).permute(2, 0, 1)
    mean = torch.tensor(CLIP_MEAN).view(3, 1, 1)
    std = torch.tensor(CLIP_STD).view(3, 1, 1)
    return (x - mean) / std


# --- text --------------------------------------------------------------------------------------


@dataclass
class Encoded:
    """One sequence: ids with ``image_tokens`` placeholders after BOS when it has an image."""

    input_ids: list[int]
    labels: list[int]


class Processor:
    """Turns (messages, image) into model inputs for one SPHINX config and tokenizer."""

    def __init__(self, tokenizer: Tokenizer, config: SphinxConfig):
        self.tokenizer = tokenizer
        self.image_size = config.image_size
        self.image_tokens = config.image_tokens

    def image(self, image: Image.Image) -> torch.Tensor:
        return image_to_tensor(image, self.image_size)

    def _prefix(self, has_image: bool) -> list[int]:
        return [self.tokenizer.bos_id] + [IMAGE_PLACEHOLDER_ID] * (self.image_tokens * has_image)

    def encode_prompt(self, messages: Sequence[Message | dict], has_image: bool,
                      answer_prefix: str = "", system: str | None = None) -> list[int]:
        """Ids of a conversation whose last message is the user's question (open assistant turn).

        ``answer_prefix`` pre-fills the start of the answer (e.g. ``" The answer is"``);
        ``system`` replaces the template's system text.
        """
        text = render(messages, add_generation_prompt=True, system=system).text + answer_prefix
        return self._prefix(has_image) + self.tokenizer.encode(text)

    def encode_training(self, messages: Sequence[Message | dict], has_image: bool) -> Encoded:
        """Ids + labels: only ``" " + answer + "\\n###"`` of each assistant turn is supervised (see
        :func:`render`), so the unsupervised tokens before an answer are exactly the inference
        prompt :meth:`encode_prompt` builds for it; EOS ends."""
        rendered = render(messages)
        ids, spans = self.tokenizer.encode_with_offsets(rendered.text)
        labels = [IGNORE_INDEX] * len(ids)
        for i, (a, b) in enumerate(spans):
            b = max(b, a + 1)  # a byte-fallback piece may have an empty character span
            if any(max(a, s) < min(b, e) for s, e in rendered.supervised):
                labels[i] = ids[i]
        prefix = self._prefix(has_image)
        return Encoded(prefix + ids + [self.tokenizer.eos_id],
                       [IGNORE_INDEX] * len(prefix) + labels + [IGNORE_INDEX])

    def encode_lm(self, text: str, has_image: bool) -> Encoded:
        """Plain language modelling (pre-training), no template: ``BOS [image] text EOS``.

        Every token of ``text`` and the EOS is supervised; BOS and the placeholders are not.
        """
        ids = self.tokenizer.encode(text) + [self.tokenizer.eos_id]
        prefix = self._prefix(has_image)
        return Encoded(prefix + ids, [IGNORE_INDEX] * len(prefix) + ids)
