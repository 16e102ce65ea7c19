"""lmms-eval model plugin: answers lmms-eval ``generate_until`` requests with our pipeline.

    # in a launcher script, before lmms-eval parses its arguments:
    from sphinx_mllm.eval.harness.lmms_eval_model import register
    register("sphinx")          # then: --model sphinx --model_args pretrained=/path/to/ckpt

Or expose :func:`manifest` under the ``lmms_eval.models`` entry-point group. lmms-eval is
imported only when ``SphinxLMMs`` (the subclass of its ``lmms`` base) is first used; the request
handling lives in :class:`SphinxLmmsCore`, which needs no lmms-eval.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence

from ...conversation import SEP

IMAGE_TAG = "<image>"


def _first_image(visuals: Any) -> Any:
    """SPHINX takes one image per question: the first visual, or None for a text-only request."""
    if visuals is None:
        return None
    visuals = list(visuals) if isinstance(visuals, (list, tuple)) else [visuals]
    if len(visuals) > 1:
        warnings.warn(f"SPHINX answers about one image; using the first of {len(visuals)}")
    return visuals[0] if visuals else None


def sampling_from_gen_kwargs(gen_kwargs: dict, default_max_new_tokens: int) -> dict:
    """lmms-eval generation kwargs -> our sampling kwargs (greedy unless ``do_sample`` or a
    positive ``temperature`` asks for sampling)."""
    temperature = float(gen_kwargs.get("temperature") or 0.0)
    if gen_kwargs.get("do_sample") is False:
        temperature = 0.0
    return {"max_new_tokens": int(gen_kwargs.get("max_new_tokens") or default_max_new_tokens),
            "temperature": temperature, "top_p": float(gen_kwargs.get("top_p") or 1.0),
            "top_k": int(gen_kwargs.get("top_k") or 0)}


def cut_at(text: str, until: Sequence[str] | str | None) -> str:
    """``text`` up to the first of the stop strings (our pipeline already stops at ``###``)."""
    stops = [until] if isinstance(until, str) else list(until or [])
    for stop in stops:
        if stop:
            text = text.split(stop, 1)[0]
    return text


class SphinxLmmsCore:
    """lmms-eval's model interface over :class:`~sphinx_mllm.inference.pipeline.Pipeline`.

    ``pretrained``: checkpoint directory or preset; ``pipeline`` (instead) an already loaded one.
    Requests are lmms-eval ``Instance`` objects whose ``args`` are ``(context, gen_kwargs,
    doc_to_visual, doc_id, task, split)``; the image is ``doc_to_visual(task_dict[task][split]
    [doc_id])[0]`` and ``<image>`` tags are removed from the context (the processor places the
    image itself). Same-kwargs requests are decoded together, ``batch_size`` at a time.
    """

    def __init__(self, pretrained: str | None = None, device: str | None = None, dtype: str | None = None,
                 batch_size: int | str = 1, max_new_tokens: int = 128, pipeline: Any = None, **unused: Any):
        if unused:
            warnings.warn(f"sphinx lmms-eval model ignores arguments {sorted(unused)}")
        if pipeline is None:
            from ...constants import DTYPES
            from ...inference.pipeline import load

            if pretrained is None:
                raise ValueError("pass pretrained=<checkpoint directory> (or a preset name)")
            if dtype and dtype not in DTYPES:
                raise ValueError(f"dtype={dtype!r}: one of {', '.join(DTYPES)}")
            pipeline = load(pretrained, device=device, dtype=DTYPES[dtype] if dtype else None)
        self.pipeline = pipeline
        self.batch_size = int(batch_size)
        self.max_new_tokens = int(max_new_tokens)
        if not hasattr(self, "task_dict"):  # lmms' own __init__ sets it when we are its subclass
            self.task_dict: dict = {}

    def generate_until(self, requests: Sequence[Any]) -> list[str]:
        prepared = []
        for request in requests:
            context, gen_kwargs, doc_to_visual, doc_id, task, split = request.args
            visuals = doc_to_visual(self.task_dict[task][split][doc_id]) if doc_to_visual else None
            prompt = context.replace(IMAGE_TAG, "").strip()
            prepared.append((_first_image(visuals), prompt, dict(gen_kwargs or {})))
        results: list[str | None] = [None] * len(prepared)
        groups: dict[tuple, list[int]] = {}
        for index, (image, _, kwargs) in enumerate(prepared):
            sampling = sampling_from_gen_kwargs(kwargs, self.max_new_tokens)
            groups.setdefault((tuple(sorted(sampling.items())), image is None), []).append(index)
        for (sampling, _), indices in groups.items():
            for start in range(0, len(indices), self.batch_size):
                chunk = indices[start:start + self.batch_size]
                answers = self.pipeline.batch_chat([prepared[i][0] for i in chunk],
                                                   [prepared[i][1] for i in chunk], **dict(sampling))
                for i, answer in zip(chunk, answers):
                    text = cut_at(answer.text, prepared[i][2].get("until", [SEP])).strip()
                    results[i] = text
                    hook = getattr(self, "cache_hook", None)
                    if hook is not None:
                        hook.add_partial("generate_until", (requests[i].args[0], prepared[i][2]), text)
        return [r if r is not None else "" for r in results]

    def generate_until_multi_round(self, requests: Sequence[Any]) -> list[str]:
        raise NotImplementedError("multi-round lmms-eval tasks are not supported by the sphinx adapter")

    def loglikelihood(self, requests: Sequence[Any]) -> list[tuple[float, bool]]:
        raise NotImplementedError("the sphinx adapter only generates; loglikelihood tasks are not supported")


def lmms_eval_class() -> type:
    """``SphinxLMMs``: :class:`SphinxLmmsCore` as a subclass of lmms-eval's ``lmms`` base."""
    try:
        from lmms_eval.api.model import lmms
    except ImportError as err:
        raise ImportError("the lmms-eval adapter needs lmms-eval: pip install lmms-eval") from err

    class SphinxLMMs(SphinxLmmsCore, lmms):
        def __init__(self, **kwargs: Any):
            lmms.__init__(self)
            SphinxLmmsCore.__init__(self, **kwargs)

    SphinxLMMs.__module__ = __name__
    return SphinxLMMs


def register(name: str = "sphinx") -> type:
    """Register ``SphinxLMMs`` in lmms-eval's model registry under ``name``; return the class."""
    from lmms_eval.api.registry import register_model

    return register_model(name)(__getattr__("SphinxLMMs"))


def manifest(name: str = "sphinx"):
    """An lmms-eval ``ModelManifest`` for the ``lmms_eval.models`` entry-point group."""
    from lmms_eval.models.registry_v2 import ModelManifest

    return ModelManifest(model_id=name, simple_class_path=f"{__name__}.SphinxLMMs")


def __getattr__(name: str) -> Any:
    # Built on first access (PEP 562), so importing this module never imports lmms-eval.
    if name == "SphinxLMMs":
        cls = lmms_eval_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
