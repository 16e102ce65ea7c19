"""Kill and resume: a SIGKILL after a checkpoint, or in the middle of writing one, costs only the
steps since the last complete checkpoint; the resumed losses equal an uninterrupted run's."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest
from trainhelp import TINY, losses

from sphinx_mllm.train import state
from sphinx_mllm.train.config import load_config
from sphinx_mllm.train.trainer import train

COMMON = ["steps=12", "save_every=4", "keep_last=5", "batch_size=2", "grad_accum=2"]
# LoRA with dropout: the resumed run must also continue the random stream exactly.
LORA = ["lora.rank=4", "lora.dropout=0.3", "trainable=[llm,projector]"]

# Runs in a child process that kills itself (SIGKILL: no clean-up of any kind) at step 8,
# either right after the checkpoint is complete or after its files are written but before the
# rename that makes it complete.
CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from sphinx_mllm.train import state
    from sphinx_mllm.train.config import load_config
    from sphinx_mllm.train.trainer import train

    config, out, when = sys.argv[1:4]
    real_save, real_rename = state.save, os.rename

    def save(out_dir, step, *args, **kwargs):
        if step == 8 and when == "during":
            def rename(src, dst):  # the rename that would publish the complete checkpoint
                if Path(dst).name == "step-0000008":
                    os.kill(os.getpid(), signal.SIGKILL)
                return real_rename(src, dst)
            os.rename = rename
        path = real_save(out_dir, step, *args, **kwargs)
        if step == 8:
            os.kill(os.getpid(), signal.SIGKILL)
        return path

    state.save = save
    train(load_config(config, [f"out={out}", *sys.argv[4:]]))
""")


def uninterrupted(tmp_path, extra):
    out = tmp_path / "whole"
    train(load_config(TINY, [f"out={out}", *COMMON, *extra]))
    return losses(out)


@pytest.mark.parametrize("when, extra", [("after", []), ("during", LORA)], ids=["after", "during"])
def test_sigkill_then_resume_auto_matches_an_uninterrupted_run(tmp_path, when, extra):
    out = tmp_path / "run"
    child = subprocess.run([sys.executable, "-c", CHILD, str(TINY), str(out), when, *COMMON, *extra],
                           capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]
    done = [p.name for p in state.complete(out)]
    if when == "after":
        assert done == ["step-0000004", "step-0000008"]
    else:
        assert done == ["step-0000004"]
        left = out / "checkpoints" / "step-0000008.tmp"  # whole but unpublished: never loaded
        assert (left / "trainer.json").is_file() and (left / "rng-00000.pt").is_file()
    resumed_from = state.find_resume(out, "auto")
    assert resumed_from.name == done[-1]
    train(load_config(TINY, [f"out={out}", *COMMON, *extra]))
    curve = losses(out)
    assert len(curve) == 12
    assert curve == pytest.approx(uninterrupted(tmp_path, extra), abs=1e-6)
    assert [p.name for p in state.complete(out)][-1] == "step-0000012"
    assert not (out / "checkpoints" / "step-0000008.tmp").exists()


def test_resume_refuses_a_different_global_batch(tmp_path):
    out = tmp_path / "run"
    train(load_config(TINY, [f"out={out}", "steps=2", "save_every=1", "batch_size=2"]))
    with pytest.raises(ValueError, match="global batch"):
        train(load_config(TINY, [f"out={out}", "steps=4", "batch_size=4"]))
