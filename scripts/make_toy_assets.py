"""Build the bundled toy assets: a small SentencePiece tokenizer and an example image.

Run from the repository root: ``python scripts/make_toy_assets.py``. The outputs are committed
under ``src/sphinx_mllm/assets/``; rerunning reproduces them.
"""

import io
import itertools
import random
from pathlib import Path

import sentencepiece as spm
from PIL import Image, ImageDraw

from sphinx_mllm.config import TOY_VOCAB
from sphinx_mllm.conversation import SYSTEM

ASSETS = Path(__file__).resolve().parents[1] / "src" / "sphinx_mllm" / "assets"

COLORS = ["red", "green", "blue", "yellow", "orange", "purple", "white", "black", "gray", "brown"]
THINGS = ["circle", "square", "triangle", "dog", "cat", "person", "car", "bus", "tree", "house",
          "table", "chair", "book", "bottle", "cup", "phone", "bicycle", "boat", "bird", "horse"]
PLACES = ["on the left", "on the right", "at the top", "at the bottom", "in the middle",
          "next to the", "behind the", "in front of the"]
PROMPTS = [
    "What's in the image?", "Generate a detailed description about the image.",
    "Provide a one-sentence caption for the provided image.",
    "Please provide the bounding box coordinate of the region this sentence describes:",
    "Describe the image concisely. Include the bounding box for each mentioned object.",
    "Detect all objects shown in the image.", "Detect the key points of the person in the region",
    "Please detect all texts and provide their bounding box coordinate.",
    "Answer the question using a single word or phrase.",
    "left eye", "right eye", "left shoulder", "right shoulder", "left knee", "right knee",
]


def corpus(n: int = 4000, seed: int = 0) -> str:
    rng = random.Random(seed)
    lines = [SYSTEM] + PROMPTS
    for _ in range(n):
        c1, c2 = rng.sample(COLORS, 2)
        t1, t2 = rng.sample(THINGS, 2)
        box = ",".join(f"{rng.random():.2f}" for _ in range(4))
        lines.append(f"### Human: Is there a {c1} {t1} {rng.choice(PLACES)} {t2}?\n### Assistant: "
                     f"There is a {c1} {t1} and a {c2} {t2}. <p>{t1}</p> [{box}]\n###")
    lines += [" ".join(p) for p in itertools.product(COLORS, THINGS)]
    return "\n".join(lines)


def make_tokenizer() -> None:
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus().splitlines()), model_writer=model, vocab_size=TOY_VOCAB,
        model_type="bpe", byte_fallback=True, character_coverage=1.0, split_digits=True,
        bos_id=1, eos_id=2, unk_id=0, pad_id=-1, add_dummy_prefix=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity",
        allow_whitespace_only_pieces=True, num_threads=1, minloglevel=2)
    (ASSETS / "toy-tokenizer.model").write_bytes(model.getvalue())


def make_image() -> None:
    img = Image.new("RGB", (320, 240), (200, 225, 240))
    d = ImageDraw.Draw(img)
    d.rectangle([0, 170, 320, 240], fill=(110, 170, 90))
    d.ellipse([230, 20, 290, 80], fill=(250, 210, 60))
    d.rectangle([40, 100, 140, 190], fill=(190, 60, 50))
    d.polygon([(30, 100), (90, 55), (150, 100)], fill=(120, 70, 40))
    d.rectangle([170, 140, 200, 200], fill=(100, 70, 40))
    d.ellipse([150, 90, 220, 150], fill=(40, 130, 60))
    img.save(ASSETS / "example.png", optimize=True)


if __name__ == "__main__":
    ASSETS.mkdir(parents=True, exist_ok=True)
    make_tokenizer()
    make_image()
    print("wrote", *sorted(p.name for p in ASSETS.iterdir()))
