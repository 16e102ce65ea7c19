"""Chat pipeline: tokenizer + processor in front of an :class:`Engine`: ``chat`` / ``stream`` /
``batch_chat``.

Thread-safe: any number of threads may call ``chat`` / ``stream`` / ``batch_chat`` on one pipeline
at once; their sequences are decoded together by the engine (continuous batching, up to
``max_batch`` at a time, the rest wait for a slot). Closing a ``stream`` generator early frees its
cache slot.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Iterator, Sequence

import torch
from PIL import Image

from ..config import PRESET_NAMES
from ..conversation import SEP, cut_answer, history_to_messages, visible_answer
from ..model import SphinxModel, build
from ..processing import Processor
from ..tokenizer import Tokenizer
from .engine import Engine, Sequence as EngineSequence
from .generate import SamplingParams

ImageLike = str | Path | Image.Image | None


def bundled_tokenizer_path() -> Path:
    """The small SentencePiece model shipped for the toy presets."""
    return Path(str(resources.files("sphinx_mllm") / "assets" / "toy-tokenizer.model"))


def example_image_path() -> Path:
    return Path(str(resources.files("sphinx_mllm") / "assets" / "example.png"))


@dataclass
class Answer:
    text: str
    tokens: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (EOS or separator) or "length"


class StopOnSeparator:
    """Stops a row at EOS or once the decoded tail contains the conversation separator."""

    def __init__(self, tokenizer: Tokenizer, window: int = 8):
        self.tokenizer = tokenizer
        self.window = window

    def __call__(self, tokens: list[int]) -> bool:
        if tokens[-1] == self.tokenizer.eos_id:
            return True
        return SEP in self.tokenizer.decode(tokens[-self.window:])


class Pipeline:
    """Chat on one model. ``engine_options`` go to :class:`Engine` (``max_batch``, ``max_seq_len``,
    ``compile``, ``prefix_cache``)."""

    def __init__(self, model: SphinxModel, tokenizer: Tokenizer, **engine_options):
        if tokenizer.vocab_size > model.cfg.llm.vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} pieces but the model only "
                             f"{model.cfg.llm.vocab_size} embeddings")
        self.model = model
        self.tokenizer = tokenizer
        self.processor = Processor(tokenizer, model.cfg)
        self.stop = StopOnSeparator(tokenizer)
        self.engine = Engine(model, **engine_options)

    @property
    def device(self) -> torch.device:
        return self.model.device

    def _inputs(self, image: ImageLike, question: str, history,
                answer_prefix: str = "") -> tuple[list[int], torch.Tensor | None]:
        messages = history_to_messages(history or [], question)
        pixels = None
        if image is not None:
            if isinstance(image, Image.Image):
                tensor = self.processor.image(image)
            else:
                with Image.open(image) as img:
                    tensor = self.processor.image(img)
            pixels = tensor[None].to(self.device, self.model.dtype)
        return self.processor.encode_prompt(messages, pixels is not None, answer_prefix), pixels

    def _submit(self, image: ImageLike, question: str, history, answer_prefix: str,
                params: SamplingParams) -> EngineSequence:
        prompt, pixels = self._inputs(image, question, history, answer_prefix)
        return self.engine.submit(prompt, pixels, params, self.stop)

    def _answer(self, seq: EngineSequence) -> Answer:
        tokens = seq.result()
        return Answer(cut_answer(self.tokenizer.decode(tokens)), tokens, len(seq.prompt),
                      seq.finish_reason)

    def chat(self, image: ImageLike, question: str, history: Sequence[tuple[str, str]] | None = None,
             answer_prefix: str = "", **sampling) -> Answer:
        """Answer ``question`` about ``image`` (path, PIL image or None for text-only).

        ``history`` is ``[(question, answer), ...]`` of earlier turns; ``answer_prefix`` pre-fills
        the answer (the returned text is what follows it); ``sampling`` are
        :class:`SamplingParams` fields (max_new_tokens, temperature, top_p, top_k, seed).
        """
        return self.batch_chat([image], [question], [history], [answer_prefix], **sampling)[0]

    def batch_chat(self, images: Sequence[ImageLike], questions: Sequence[str],
                   histories: Sequence | None = None, answer_prefixes: Sequence[str] | None = None,
                   **sampling) -> list[Answer]:
        """Several independent chats decoded together; each with its own image or None."""
        params = SamplingParams(**sampling)
        if not questions:
            raise ValueError("batch_chat needs at least one question")
        histories = histories or [None] * len(questions)
        prefixes = answer_prefixes or [""] * len(questions)
        if not len(images) == len(histories) == len(prefixes) == len(questions):
            raise ValueError("batch_chat needs one image (or None), history and prefix per question")
        seqs: list[EngineSequence] = []
        try:
            for im, q, h, p in zip(images, questions, histories, prefixes):
                seqs.append(self._submit(im, q, h, p, params))
            return [self._answer(seq) for seq in seqs]
        finally:
            for seq in seqs:  # on an error, free the slots of the others
                seq.cancel(wait=False)

    def stream(self, image: ImageLike, question: str, history=None, answer_prefix: str = "",
               **sampling) -> Iterator[str]:
        """Yield text deltas of the answer as it is generated (cut at the separator).

        Closing the generator early (``close()``, or dropping it) cancels the sequence and frees
        its cache slot.
        """
        seq = self._submit(image, question, history, answer_prefix, SamplingParams(**sampling))
        tokens: list[int] = []
        shown = ""
        try:
            for token in seq:
                tokens.append(token)
                text = self.tokenizer.decode(tokens)
                finished = self.stop(tokens) or len(tokens) >= seq.params.max_new_tokens
                visible = visible_answer(text, finished)
                if len(visible) > len(shown) and visible.startswith(shown):
                    yield visible[len(shown):]
                    shown = visible
        finally:
            seq.cancel(wait=False)


def load(path_or_preset: str | Path, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None, preset: str | None = None,
         **engine_options) -> Pipeline:
    """A chat pipeline from a checkpoint directory (ours or a released SPHINX one), or a preset
    name with random weights. Defaults: CUDA in bf16 when available, else CPU in the stored dtype.
    ``engine_options`` go to :class:`Engine` (``max_batch``, ``compile``, ...).

    Presets use the bundled toy tokenizer; for the real-size presets that only makes sense for
    benchmarks (random weights, ids beyond the toy vocabulary decode to nothing). ``preset``
    overrides the variant a released checkpoint's ``meta.json`` names.
    """
    from ..checkpoint import official, ours

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if dtype is None and device.type == "cuda":
        dtype = torch.bfloat16
    if str(path_or_preset) in PRESET_NAMES:
        name = str(path_or_preset)
        if not name.startswith("toy"):
            warnings.warn(f"{name}: random weights with the toy tokenizer (benchmarking only)")
        model = build(name, device=device, dtype=dtype)
        return Pipeline(model, Tokenizer.from_file(bundled_tokenizer_path()), **engine_options)
    path = Path(path_or_preset)
    if ours.is_checkpoint_dir(path):
        model = ours.load(path, device=device, dtype=dtype)
        return Pipeline(model, Tokenizer.from_file(path / ours.TOKENIZER), **engine_options)
    if path.is_dir() and official.is_released_dir(path):
        model = official.load(path, device=device, dtype=dtype, preset=preset)
        return Pipeline(model, Tokenizer.from_file(path / "tokenizer.model"), **engine_options)
    raise FileNotFoundError(
        f"{path_or_preset!r} is neither a preset ({', '.join(PRESET_NAMES)}) nor a checkpoint "
        f"directory (ours: {ours.CONFIG} + {ours.INDEX}; released: meta.json + "
        f"consolidated.XX-of-YY.model.pth)")


__all__ = ["Answer", "Pipeline", "SamplingParams", "load"]
