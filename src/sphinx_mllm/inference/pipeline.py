"""Chat pipeline: model + tokenizer + processor behind ``chat`` / ``stream`` / ``batch_chat``."""

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
from .generate import SamplingParams, generate, generate_stream

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
    def __init__(self, model: SphinxModel, tokenizer: Tokenizer):
        self.model = model
        self.tokenizer = tokenizer
        self.processor = Processor(tokenizer, model.cfg)
        self.stop = StopOnSeparator(tokenizer)
        if tokenizer.vocab_size > model.cfg.llm.vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} pieces but the model only "
                             f"{model.cfg.llm.vocab_size} embeddings")

    @property
    def device(self) -> torch.device:
        return self.model.llm.output.weight.device

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
            pixels = tensor[None].to(self.device, self.model.visual_proj[0].weight.dtype)
        return self.processor.encode_prompt(messages, pixels is not None, answer_prefix), pixels

    def _answer(self, tokens: list[int], prompt_len: int) -> Answer:
        stopped = bool(tokens) and self.stop(tokens)
        return Answer(cut_answer(self.tokenizer.decode(tokens)), tokens, prompt_len,
                      "stop" if stopped else "length")

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
        """Several independent chats decoded together (images all present or all None)."""
        params = SamplingParams(**sampling)
        if not questions:
            raise ValueError("batch_chat needs at least one question")
        histories = histories or [None] * len(questions)
        prefixes = answer_prefixes or [""] * len(questions)
        if not len(images) == len(histories) == len(prefixes) == len(questions):
            raise ValueError("batch_chat needs one image (or None), history and prefix per question")
        inputs = [self._inputs(im, q, h, p)
                  for im, q, h, p in zip(images, questions, histories, prefixes)]
        if len({px is None for _, px in inputs}) > 1:
            raise ValueError("batch_chat needs images for all questions or for none")
        pixels = None if inputs[0][1] is None else torch.cat([px for _, px in inputs])
        prompts = [ids for ids, _ in inputs]
        outs = generate(self.model, prompts, pixels, params, self.stop, self.tokenizer.pad_id)
        return [self._answer(o, len(p)) for o, p in zip(outs, prompts)]

    def stream(self, image: ImageLike, question: str, history=None, answer_prefix: str = "",
               **sampling) -> Iterator[str]:
        """Yield text deltas of the answer as it is generated (cut at the separator)."""
        params = SamplingParams(**sampling)
        prompt, pixels = self._inputs(image, question, history, answer_prefix)
        tokens: list[int] = []
        shown = ""
        for step in generate_stream(self.model, [prompt], pixels, params, self.stop,
                                    self.tokenizer.pad_id):
            tokens.append(step.tokens[0])
            text = self.tokenizer.decode(tokens)
            visible = visible_answer(text, step.finished[0])
            if len(visible) > len(shown) and visible.startswith(shown):
                yield visible[len(shown):]
                shown = visible


def load(path_or_preset: str | Path, device: str | torch.device | None = None,
         dtype: torch.dtype | None = None, preset: str | None = None) -> Pipeline:
    """A chat pipeline from a checkpoint directory (ours or a released SPHINX one), or a preset
    name with random weights. Defaults: CUDA in bf16 when available, else CPU in the stored dtype.

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
        return Pipeline(model, Tokenizer.from_file(bundled_tokenizer_path()))
    path = Path(path_or_preset)
    if ours.is_checkpoint_dir(path):
        model = ours.load(path, device=device, dtype=dtype)
        return Pipeline(model, Tokenizer.from_file(path / ours.TOKENIZER))
    if path.is_dir() and official.is_released_dir(path):
        model = official.load(path, device=device, dtype=dtype, preset=preset)
        return Pipeline(model, Tokenizer.from_file(path / "tokenizer.model"))
    raise FileNotFoundError(
        f"{path_or_preset!r} is neither a preset ({', '.join(PRESET_NAMES)}) nor a checkpoint "
        f"directory (ours: {ours.CONFIG} + {ours.INDEX}; released: meta.json + "
        f"consolidated.XX-of-YY.model.pth)")


__all__ = ["Answer", "Pipeline", "SamplingParams", "load"]
