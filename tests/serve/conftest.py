"""Fixtures of the serving tests."""

import pytest
import torch

import sphinx_mllm

from .helpers import MODEL


@pytest.fixture(scope="session")
def pipe():
    torch.manual_seed(0)
    return sphinx_mllm.load(MODEL, max_batch=16)


@pytest.fixture(scope="session")
def slow_pipe():
    """The toy preset with a 16-layer decoder (about 7 ms a token here, 50x the toy's) whose
    answers never stop before ``max_tokens``: long enough to be caught in flight by the queue and
    disconnect tests, whatever the random weights say."""
    from dataclasses import replace

    from sphinx_mllm.config import SphinxConfig
    from sphinx_mllm.inference.pipeline import Pipeline, bundled_tokenizer_path
    from sphinx_mllm.model import build
    from sphinx_mllm.tokenizer import Tokenizer

    cfg = SphinxConfig.from_name(MODEL)
    torch.manual_seed(0)
    model = build(replace(cfg, llm=replace(cfg.llm, n_layers=16)))
    pipeline = Pipeline(model, Tokenizer.from_file(bundled_tokenizer_path()), max_batch=4)
    pipeline.stop = lambda tokens: False
    return pipeline
