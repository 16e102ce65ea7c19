"""VLMEvalKit model class: answers VLMEvalKit's interleaved messages with our pipeline.

VLMEvalKit is installed from its git repository (it is not on PyPI). Add to its
``vlmeval/config.py``::

    from functools import partial
    from sphinx_mllm.eval.harness.vlmeval_model import SphinxVLM
    supported_VLM["sphinx-1k"] = partial(SphinxVLM, model_path="/path/to/ckpt")

``SphinxVLM`` subclasses VLMEvalKit's ``BaseModel`` and is built on first access; the message
handling lives in :class:`SphinxVLMCore`, which needs no VLMEvalKit.
"""

from __future__ import annotations

import warnings
from typing import Any, Sequence


class SphinxVLMCore:
    """``generate_inner(message, dataset)``: ``message`` is VLMEvalKit's list of
    ``{"type": "image" | "text", "value": path or text}``. Text parts are joined with newlines
    into one question; SPHINX takes one image (the first). Greedy by default; the dataset's own
    prompt building is kept (``use_custom_prompt`` is False)."""

    INSTALL_REQ = False
    INTERLEAVE = False

    def __init__(self, model_path: str | None = None, pipeline: Any = None, max_new_tokens: int = 128,
                 temperature: float = 0.0, top_p: float = 1.0, device: str | None = None, **unused: Any):
        if unused:
            warnings.warn(f"SphinxVLM ignores arguments {sorted(unused)}")
        if pipeline is None:
            from ...inference.pipeline import load

            if model_path is None:
                raise ValueError("pass model_path=<checkpoint directory> (or a preset name)")
            pipeline = load(model_path, device=device)
        self.pipeline = pipeline
        self.sampling = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p}

    def use_custom_prompt(self, dataset: str | None) -> bool:
        return False

    def generate_inner(self, message: Sequence[dict], dataset: str | None = None) -> str:
        images = [m["value"] for m in message if m["type"] == "image"]
        question = "\n".join(m["value"] for m in message if m["type"] == "text")
        if len(images) > 1:
            warnings.warn(f"SPHINX answers about one image; using the first of {len(images)}")
        return self.pipeline.chat(images[0] if images else None, question, **self.sampling).text.strip()


def vlmeval_class() -> type:
    """``SphinxVLM``: :class:`SphinxVLMCore` as a subclass of VLMEvalKit's ``BaseModel``."""
    try:
        from vlmeval.vlm.base import BaseModel
    except ImportError as err:
        raise ImportError("the VLMEvalKit adapter needs VLMEvalKit (git clone "
                          "https://github.com/open-compass/VLMEvalKit && pip install -e .)") from err

    class SphinxVLM(SphinxVLMCore, BaseModel):
        def __init__(self, **kwargs: Any):
            BaseModel.__init__(self)
            SphinxVLMCore.__init__(self, **kwargs)

    SphinxVLM.__module__ = __name__
    return SphinxVLM


def __getattr__(name: str) -> Any:
    # Built on first access (PEP 562), so importing this module never imports VLMEvalKit.
    if name == "SphinxVLM":
        cls = vlmeval_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
