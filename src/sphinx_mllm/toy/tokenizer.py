"""A SentencePiece tokenizer trained on a toy world's text.

The corpus is every training conversation of the world exactly as the model will read it: each
sample of every source (:func:`~sphinx_mllm.toy.dataset.world_sources`, read by the real
adapters) rendered with the conversation template, so prompts, answers, boxes and keypoint names
are all in it. LLaMA's conventions are kept (BPE, unk 0 / BOS 1 / EOS 2, byte fallback, identity
normalisation, dummy prefix), and **every digit is its own piece** (``split_digits``): a
coordinate ``0.37`` is the four pieces ``0 . 3 7``, whatever the neighbouring characters. With
``coordinate_pieces`` (the eleventh run, docs/toy-world.md) every coordinate is one piece instead:
the 101 texts ``0.00`` ... ``1.00`` that the box and point formats write
(:func:`~sphinx_mllm.tasks.formats.coordinate_texts`) are user-defined symbols, so the model writes
a coordinate as one 101-way choice, the classification the encoder stage's coordinate heads make,
and :func:`init_coordinate_rows` gives those pieces ordered rows. The grounding tags ``<p>`` and
``</p>`` are single pieces.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Iterator

import sentencepiece as spm
import torch

from ..config import TOY_VOCAB
from ..conversation import SYSTEM, render
from ..data import read_samples
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
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(model.getvalue())
    tmp.replace(out)
    return Tokenizer.from_file(out)


ORDINAL_FREQUENCIES = 32
ORDINAL_WIDTH = 0.03
"""Width (a Gaussian's sigma, in coordinate units) of :func:`ordinal_rows`' similarity: the cosine
of two coordinates' rows is 0.59 at 0.03 apart and 0.1 at 0.06 apart."""


def ordinal_rows(values: torch.Tensor, dim: int, norm: float, seed: int = 0,
                 frequencies: int = ORDINAL_FREQUENCIES, width: float = ORDINAL_WIDTH) -> torch.Tensor:
    """(len(values), dim) rows whose dot products fall off smoothly with the distance of the
    values in [0, 1], like a Gaussian of sigma ``width``: ``[cos(pi k v), sin(pi k v)]`` for
    ``k = 1..frequencies`` (period 2, so 0 and 1 differ) weighted by the Gaussian's spectrum, in
    a random orthonormal ``2 * frequencies``-dimensional subspace (``seed``), each row of length
    ``norm``."""
    if 2 * frequencies > dim:
        raise ValueError(f"{frequencies} frequencies need {2 * frequencies} dims, the table has {dim}")
    k = torch.arange(1, frequencies + 1, dtype=torch.float64) * math.pi
    weight = torch.exp(-0.5 * (k * width) ** 2)
    angles = values.double()[:, None] * k
    features = torch.cat([angles.cos(), angles.sin()], dim=1) * weight.repeat(2).sqrt()
    features = features / features.norm(dim=1, keepdim=True)
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, 2 * frequencies, generator=g, dtype=torch.float64))
    return (features @ basis.T * norm).float()


def init_coordinate_rows(model, tokenizer: Tokenizer, seed: int = 0) -> int:
    """Give the coordinate pieces (``0.00`` ... ``1.00``) of ``tokenizer`` ordered rows in the
    LLM's input embedding and output tables (:func:`ordinal_rows`, at each table's mean row
    length), so that neighbouring coordinates start close and a predicted coordinate can be
    nearly right. Returns how many pieces were set (0 for a digit-by-digit tokenizer)."""
    texts = coordinate_texts()
    ids = [tokenizer.sp.piece_to_id(t) for t in texts]
    found = [(i, float(t)) for i, t in zip(ids, texts) if i != tokenizer.sp.unk_id()]
    if not found:
        return 0
    index = torch.tensor([i for i, _ in found])
    values = torch.tensor([v for _, v in found])
    llm = model.llm
    with torch.no_grad():
        for offset, table in enumerate((llm.tok_embeddings.weight, llm.output.weight)):
            norm = float(table.float().norm(dim=1).mean())
            rows = ordinal_rows(values, table.shape[1], norm, seed=seed + offset)
            table[index] = rows.to(table.dtype).to(table.device)
    return len(found)
