"""Caption metrics through pycocoevalcap: BLEU-1..4, METEOR, ROUGE-L, CIDEr (CIDEr-D).

SPICE is left out on purpose: it downloads Stanford CoreNLP at run time. METEOR and the PTB
tokenizer are Java programs shipped inside pycocoevalcap and need ``java`` on PATH; BLEU,
ROUGE-L and CIDEr are pure Python, so with ``tokenizer="simple"`` and without "meteor" no Java
is needed (the numbers then differ slightly from published ones, which use the PTB tokenizer).
"""

from __future__ import annotations

import re
import shutil
from typing import Literal, Sequence

from .registry import check_paired, register

CAPTION_METRICS = ("bleu", "meteor", "rouge_l", "cider")

# Tokens the COCO caption toolkit drops after PTB tokenisation.
_PTB_PUNCTUATION = frozenset(
    {"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
     ".", "?", "!", ",", ":", "-", "--", "...", ";"}
)
_SIMPLE_TOKEN = re.compile(r"\w+(?:'\w+)?|[^\w\s]+")


def _require_java(what: str) -> None:
    if shutil.which("java") is None:
        raise RuntimeError(
            f"{what} runs a Java program and no `java` is on PATH: install a JRE (e.g. "
            "`apt-get install -y default-jre-headless`), or call with tokenizer='simple' and "
            "metrics without 'meteor' for the pure-Python BLEU / ROUGE-L / CIDEr."
        )


def _import_coco_caption():
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.meteor.meteor import Meteor
        from pycocoevalcap.rouge.rouge import Rouge
        from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    except ImportError as err:
        raise ImportError("caption metrics need pycocoevalcap: pip install pycocoevalcap") from err
    return Bleu, Cider, Meteor, Rouge, PTBTokenizer


def simple_tokenize(text: str) -> str:
    """Java-free stand-in for the PTB step: lower-case, split words from punctuation, drop the
    punctuation tokens the COCO toolkit drops. Clitics stay attached ("dog's"), unlike PTB."""
    tokens = _SIMPLE_TOKEN.findall(text.lower().replace("\n", " "))
    return " ".join(t for t in tokens if t not in _PTB_PUNCTUATION)


@register("caption")
def caption_metrics(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    metrics: Sequence[str] = CAPTION_METRICS,
    tokenizer: Literal["ptb", "simple"] = "ptb",
) -> dict[str, float]:
    """COCO caption scores, x100: ``bleu_1``..``bleu_4``, ``meteor``, ``rouge_l``, ``cider``.

    ``predictions[i]`` is the caption generated for image ``i``, ``references[i]`` its human
    captions. Only the families named in ``metrics`` are computed. Scores are corpus-level:
    BLEU pools n-gram counts over all images and CIDEr's document frequencies come from all the
    references, so score a whole split in one call, never shard by shard. CIDEr x100 can exceed
    100 (the published "CIDEr 117.5" convention).
    """
    n = check_paired(predictions, references)
    unknown = set(metrics) - set(CAPTION_METRICS)
    if unknown:
        raise ValueError(f"unknown caption metrics {sorted(unknown)}; known: {CAPTION_METRICS}")
    if any(len(refs) == 0 for refs in references):
        raise ValueError("every image needs at least one reference caption")
    Bleu, Cider, Meteor, Rouge, PTBTokenizer = _import_coco_caption()

    if tokenizer == "ptb":
        _require_java("the PTB tokenizer")
        ptb = PTBTokenizer()
        res = ptb.tokenize({i: [{"caption": p}] for i, p in enumerate(predictions)})
        gts = ptb.tokenize({i: [{"caption": r} for r in refs] for i, refs in enumerate(references)})
    elif tokenizer == "simple":
        res = {i: [simple_tokenize(p)] for i, p in enumerate(predictions)}
        gts = {i: [simple_tokenize(r) for r in refs] for i, refs in enumerate(references)}
    else:
        raise ValueError(f"tokenizer must be 'ptb' or 'simple', got {tokenizer!r}")

    out: dict[str, float] = {}
    if "bleu" in metrics:
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        out.update({f"bleu_{k}": 100.0 * float(s) for k, s in enumerate(bleu, 1)})
    if "meteor" in metrics:
        _require_java("METEOR")
        meteor = Meteor()
        try:
            out["meteor"] = 100.0 * float(meteor.compute_score(gts, res)[0])
        finally:
            del meteor  # its __del__ stops the Java process
    if "rouge_l" in metrics:
        out["rouge_l"] = 100.0 * float(Rouge().compute_score(gts, res)[0])
    if "cider" in metrics:
        out["cider"] = 100.0 * float(Cider().compute_score(gts, res)[0])
    out["n"] = n
    return out
