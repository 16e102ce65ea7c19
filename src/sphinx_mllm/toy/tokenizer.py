"""A SentencePiece tokenizer trained on a toy world's text.

The corpus is every training conversation of the world exactly as the model will read it: each
sample of every source (:func:`~sphinx_mllm.toy.dataset.world_sources`, read by the real
adapters) rendered with the conversation template, so prompts, answers, boxes and keypoint names
are all in it. LLaMA's conventions are kept (BPE, unk 0 / BOS 1 / EOS 2, byte fallback, identity
normalisation, dummy prefix), and **every digit is its own piece** (``split_digits``): a
coordinate ``0.37`` is the four pieces ``0 . 3 7``, whatever the neighbouring characters. With
``coordinate_pieces`` (the eleventh run, docs/toy-world-runs.md) every coordinate is one piece
instead: the 101 texts ``0.00`` ... ``1.00`` that the box and point formats write
(:func:`~sphinx_mllm.tasks.formats.coordinate_texts`) are user-defined symbols, so the model writes
a coordinate as one 101-way choice, the classification the encoder stage's coordinate heads
make. The grounding tags ``<p>`` and ``</p>`` are single pieces.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import sentencepiece as spm

from ..config import TOY_VOCAB
from ..conversation import SYSTEM, render
from ..data import read_samples
from ..data.files import written
from ..tasks.formats import coordinate_texts
from ..tokenizer import Tokenizer
from .dataset import world_sources
from .seeds import check_training_world

GROUNDING_TAGS = ["<p>", "</p>"]
"""Always one piece each: they open and close every phrase of a detection or pose answer."""
DEFAULT_VOCAB = TOY_VOCAB  # 256 of the pieces are byte-fallback bytes


def world_corpus(world: str | Path) -> Iterator[str]:
    """Lines of every rendered training conversation of ``world`` (the template's newlines split
    lines, as SentencePiece trains on lines; ``\\n`` itself is left to byte fallback)."""
    yield SYSTEM
    for source in world_sources(world):
        for sample in read_samples(source.format, source.path, split=source.split,
                                   images=source.root):
            yield from render(sample.messages).text.splitlines()


def train_tokenizer(world: str | Path, out: str | Path, vocab_size: int = DEFAULT_VOCAB,
                    coordinate_pieces: bool = False) -> Tokenizer:
    """Train on :func:`world_corpus` and write ``out`` (a ``.model`` file); return it loaded.

    ``vocab_size`` is an upper bound (a small world may support fewer pieces) and may not exceed
    the toy presets' embedding rows (``TOY_VOCAB``); the coordinate pieces count within it. A
    held-out world is refused.
    """
    check_training_world(world)
    if not 64 <= vocab_size <= TOY_VOCAB:
        raise ValueError(f"vocab_size must be in [64, {TOY_VOCAB}], got {vocab_size}")
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=world_corpus(world), model_writer=model, vocab_size=vocab_size,
        hard_vocab_limit=False, model_type="bpe", byte_fallback=True, character_coverage=1.0,
        split_digits=True, bos_id=1, eos_id=2, unk_id=0, pad_id=-1, add_dummy_prefix=True,
        user_defined_symbols=GROUNDING_TAGS + (coordinate_texts() if coordinate_pieces else []),
        remove_extra_whitespaces=False, normalization_rule_name="identity",
        allow_whitespace_only_pieces=True, num_threads=1, minloglevel=2)
    out = Path(out)
    with written(out) as tmp:
        tmp.write_bytes(model.getvalue())
    return Tokenizer.from_file(out)
