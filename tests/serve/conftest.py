"""Fixtures of the serving tests."""

import pytest
import torch

import sphinx_mllm

from .helpers import MODEL


@pytest.fixture(scope="session")
def pipe():
    torch.manual_seed(0)
    return sphinx_mllm.load(MODEL, max_batch=16)
