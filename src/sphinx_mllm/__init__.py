"""sphinx-mllm: a fast, faithful PyTorch implementation of the SPHINX multi-modal LLM family."""

from .config import PRESET_NAMES, SphinxConfig
from .inference.generate import SamplingParams
from .inference.pipeline import Answer, Pipeline, load
from .model import SphinxModel, build

__all__ = ["PRESET_NAMES", "Answer", "Pipeline", "SamplingParams", "SphinxConfig", "SphinxModel",
           "build", "load"]
__version__ = "0.1.0"
