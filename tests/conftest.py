import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sphinx_mllm.inference.pipeline import bundled_tokenizer_path  # noqa: E402
from sphinx_mllm.tokenizer import Tokenizer  # noqa: E402


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(bundled_tokenizer_path())


@pytest.fixture(scope="session")
def toy_model():
    from sphinx_mllm import build

    torch.manual_seed(0)
    return build("toy-1k")
