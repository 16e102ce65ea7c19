"""Ids and values shared by processing, the model, training and evaluation (one source of truth)."""

import torch

IGNORE_INDEX = -100
"""Label value that the loss skips (prompt, system text, placeholders, padding)."""

IMAGE_PLACEHOLDER_ID = -200
"""Token id the processor writes where visual tokens go; never produced by a tokenizer."""

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAD_COLOR = tuple(int(m * 255) for m in CLIP_MEAN)  # (122, 116, 104)

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
"""dtype names accepted on the command line and in scripts."""
