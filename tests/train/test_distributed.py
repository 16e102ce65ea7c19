"""FSDP2 on two CPU processes (gloo, torchrun) equals one process with the same global batch;
its checkpoints export in one process."""

import os
import shutil
import socket
import subprocess
import sys

import pytest
import torch
from trainhelp import TINY, losses

import sphinx_mllm
from sphinx_mllm.train.config import load_config
from sphinx_mllm.train.trainer import export_checkpoint, train

pytestmark = pytest.mark.skipif(shutil.which("torchrun") is None and not os.path.exists(
    os.path.join(os.path.dirname(sys.executable), "torchrun")), reason="torchrun not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


MIXED = """META:
  - {{path: {tiny}/captions.json, type: image_text, task: caption_lm}}
  - {{path: {tiny}/text.jsonl, format: text, type: image_text, task: text_lm}}
"""


@pytest.mark.parametrize("case", ["chat", "image-and-text"])
def test_two_fsdp_processes_match_one_process(tmp_path, case):
    """``image-and-text``: one type holds image and text-only samples; no global batch may mix
    them, or ranks would touch different parameters (FSDP2 collectives then mismatch)."""
    common = ["steps=20", "save_every=10", "resume=none"]
    if case == "image-and-text":
        mixture = tmp_path / "mixed.yaml"
        mixture.write_text(MIXED.format(tiny=TINY.parent / "tiny"))
        common = ["steps=8", "save_every=4", "resume=none", f"data={mixture}", "batch_size=1"]
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    per_rank = ["batch_size=2"] if case == "chat" else []
    cmd = [torchrun, "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port",
           str(free_port()), "-m", "sphinx_mllm.cli", "train", str(TINY),
           f"out={tmp_path / 'two'}", *per_rank, "grad_accum=1", *common]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    # One process, two micro-batches of 2: the same global batch of 4 in the same order.
    train(load_config(TINY, [f"out={tmp_path / 'one'}", *per_rank, "grad_accum=2", *common]))
    two, one = losses(tmp_path / "two"), losses(tmp_path / "one")
    assert len(two) == len(one) == (20 if case == "chat" else 8)
    assert max(abs(a - b) for a, b in zip(two, one)) <= 1e-4
    assert (tmp_path / "two" / "final" / "model.safetensors.index.json").is_file()
    if case == "chat":  # the two processes' step-20 checkpoint exports in one process as final/
        final = sphinx_mllm.checkpoint.load(tmp_path / "two" / "final").state_dict()
        exported = sphinx_mllm.checkpoint.load(export_checkpoint(tmp_path / "two")).state_dict()
        assert all(torch.equal(exported[name], tensor) for name, tensor in final.items())
