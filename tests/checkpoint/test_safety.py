import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

import sphinx_mllm
from sphinx_mllm.checkpoint import ours
from sphinx_mllm.checkpoint.torch_files import UnsafeCheckpointError, load_state_dict
from sphinx_mllm.inference.pipeline import bundled_tokenizer_path


class Exploit:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "consolidated.00-of-01.model.pth"
    with open(path, "wb") as f:
        pickle.dump({"model": {"llma.norm.weight": Exploit(marker)}}, f)
    with pytest.raises(UnsafeCheckpointError, match="refusing to load .* could run code"):
        load_state_dict(path)
    assert not marker.exists()


def test_torch_saved_objects_other_than_tensors_are_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "weights.pth"
    torch.save({"model": {"w": torch.zeros(2), "evil": Exploit(marker)}}, path)
    with pytest.raises(UnsafeCheckpointError):
        load_state_dict(path)
    assert not marker.exists()


def test_plain_tensor_checkpoints_load_memory_mapped(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"model": {"a": torch.arange(4.0)}}, path)
    state = load_state_dict(path)
    assert torch.equal(state["a"], torch.arange(4.0))


@pytest.fixture
def saved(tmp_path):
    return ours.save(sphinx_mllm.build("toy"), bundled_tokenizer_path(), tmp_path / "ck")


def _rewrite_tensor(path, name, tensor):
    index = json.loads((path / ours.INDEX).read_text())["weight_map"]
    shard = path / index[name]
    from safetensors.torch import load_file
    tensors = load_file(str(shard))
    tensors[name] = tensor
    save_file(tensors, str(shard))


def test_safetensors_shape_is_checked_against_the_config(saved):
    _rewrite_tensor(saved, "visual_proj.0.weight", torch.zeros(64, 5))
    with pytest.raises(ValueError, match=r"visual_proj.0.weight: checkpoint \[64, 5\], model \[64, 96\]"):
        ours.load(saved)


def test_safetensors_tensor_missing_from_the_shards_is_named(saved):
    index = json.loads((saved / ours.INDEX).read_text())
    index["weight_map"]["visual_proj.9.weight"] = "model-00001-of-00001.safetensors"
    (saved / ours.INDEX).write_text(json.dumps(index))
    with pytest.raises(KeyError, match="visual_proj.9.weight"):
        ours.load(saved)
