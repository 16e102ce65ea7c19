import json
import os
import shutil

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sphinx_mllm.checkpoint import keymap  # noqa: E402
from sphinx_mllm.checkpoint.official import split_dim  # noqa: E402
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


# --- released-format (LLaMA2-Accessory ``consolidated``) checkpoints -------------------------

TEXT_LEFTOVERS = {  # open_clip text-side tensors the released checkpoints carry (tiny here)
    "clip.token_embedding.weight": (8, 4), "clip.positional_embedding": (4, 4),
    "clip.ln_final.weight": (4,), "clip.ln_final.bias": (4,), "clip.text_projection": (4, 4),
    "clip.logit_scale": (), "clip.visual.proj": (32, 4),
}


def model_args(cfg) -> dict:
    """``dataclasses.asdict(ModelArgs)`` as the original writes it (vocab_size -1: from tokenizer)."""
    llm = cfg.llm
    return {"dim": llm.dim, "n_layers": llm.n_layers, "n_heads": llm.n_heads,
            "n_kv_heads": llm.n_kv_heads, "vocab_size": -1, "multiple_of": llm.multiple_of,
            "ffn_dim_multiplier": None, "norm_eps": llm.norm_eps, "max_batch_size": 32,
            "max_seq_len": 2048, "rope_scaling": None, "rope_theta": llm.rope_theta,
            "load_pretrained_visual_encoder": False}


def write_released(model, path, llama_type: str, shards: int = 2, wrap: bool = True,
                   mutate=None):
    """Write ``model``'s weights (its dtype) in the released layout, split as spec 5.6 says."""
    path.mkdir(parents=True, exist_ok=True)
    canonical = keymap.to_canonical(model.state_dict())
    gen = torch.Generator().manual_seed(0)
    dtype = next(iter(canonical.values())).dtype
    for name, shape in TEXT_LEFTOVERS.items():
        canonical[name] = torch.randn(shape, generator=gen).to(dtype)
    for rank in range(shards):
        state = {}
        for name, tensor in canonical.items():
            dim = split_dim(name)
            part = tensor.chunk(shards, dim=dim)[rank] if dim is not None else tensor
            state["llma." + name] = part.clone()
        if mutate:
            mutate(rank, state)
        torch.save({"model": state} if wrap else state,
                   path / f"consolidated.{rank:02d}-of-{shards:02d}.model.pth")
    (path / "config.json").write_text(json.dumps(model_args(model.cfg), indent=2))
    (path / "meta.json").write_text(json.dumps({"llama_type": llama_type}))
    shutil.copyfile(bundled_tokenizer_path(), path / "tokenizer.model")
    return path


@pytest.fixture
def released():
    return write_released
