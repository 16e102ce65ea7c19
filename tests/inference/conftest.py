"""Fixtures shared by the generation and engine tests."""

import pytest
import torch

from sphinx_mllm import build


@pytest.fixture(scope="module")
def sharp_model():
    """A toy model whose logits are far from ties, so argmax comparisons are meaningful."""
    torch.manual_seed(0)
    model = build("toy-1k")
    with torch.no_grad():
        model.llm.output.weight.mul_(20)
    return model
