import pytest

from sphinx_mllm.toy.dataset import generate_world


@pytest.fixture(scope="session")
def train_world(tmp_path_factory):
    """A small training world (seed 0) with every picture kind."""
    out = tmp_path_factory.mktemp("toy") / "world"
    generate_world(0, 48, out)
    return out


@pytest.fixture(scope="session")
def eval_world(tmp_path_factory):
    """A small held-out world (seed 1000)."""
    out = tmp_path_factory.mktemp("toy-eval") / "world"
    generate_world(1000, 40, out)
    return out
