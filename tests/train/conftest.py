from pathlib import Path

import pytest
from trainhelp import TINY


@pytest.fixture
def tiny_config():
    """``tiny-cpu.yaml`` with overrides, writing into a temporary run directory."""
    from sphinx_mllm.train.config import load_config

    def make(out: Path, *overrides: str):
        return load_config(TINY, [f"out={out}", *overrides])

    return make
