"""Samples -> padded model inputs, through the processor's template and image transform."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..constants import IGNORE_INDEX
from ..media import load_image
from ..processing import Encoded, Processor
from ..tasks import LM_TASKS
from .sample import Sample


@dataclass
class Batch:
    """One micro-batch, right-padded.

    ``input_ids``/``labels``/``attention_mask``: (B, T); padding is ``pad_id`` in ``input_ids``,
    ``IGNORE_INDEX`` in ``labels`` and False in ``attention_mask``. ``images``: (N, 3, S, S) for the
    N rows with ``has_image`` True, in row order, or None when no row has an image.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    attention_mask: torch.Tensor
    images: torch.Tensor | None
    has_image: torch.Tensor
    tasks: list[str]
    sources: list[str]


class Collator:
    """``collate_fn`` for a DataLoader over :class:`Sample` items.

    ``max_length`` (tokens, visual placeholders included) truncates long sequences from the right;
    it must leave room beyond the visual tokens.
    """

    def __init__(self, processor: Processor, max_length: int | None = None):
        self.processor = processor
        self.max_length = max_length
        self.pad_id = processor.tokenizer.pad_id

    def _encode(self, sample: Sample) -> Encoded:
        has_image = sample.image is not None
        if sample.task in LM_TASKS:
            encoded = self.processor.encode_lm(sample.messages[-1].content, has_image)
        else:
            encoded = self.processor.encode_training(sample.messages, has_image)
        limit = self.max_length
        if limit is None or len(encoded.input_ids) <= limit:
            return encoded
        if limit <= 1 + self.processor.image_tokens * has_image:
            raise ValueError(f"max_length {limit} leaves no room after the visual tokens")
        return Encoded(encoded.input_ids[:limit], encoded.labels[:limit])

    def _image(self, sample: Sample) -> torch.Tensor:
        # Dataset annotations are drawn on the stored pixels (COCO, RefCOCO, ...; the original
        # reads them with a plain Image.open), so the EXIF orientation is not applied here.
        return self.processor.image(load_image(sample.image, exif_orientation=False))

    def __call__(self, samples: Sequence[Sample]) -> Batch:
        encoded = [self._encode(s) for s in samples]
        width = max(len(e.input_ids) for e in encoded)
        ids = torch.full((len(samples), width), self.pad_id, dtype=torch.long)
        labels = torch.full((len(samples), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(samples), width), dtype=torch.bool)
        for row, e in enumerate(encoded):
            n = len(e.input_ids)
            ids[row, :n] = torch.tensor(e.input_ids)
            labels[row, :n] = torch.tensor(e.labels)
            mask[row, :n] = True
        pictured = [s for s in samples if s.image is not None]
        images = torch.stack([self._image(s) for s in pictured]) if pictured else None
        has_image = torch.tensor([s.image is not None for s in samples])
        return Batch(ids, labels, mask, images, has_image,
                     [s.task for s in samples], [s.source for s in samples])
