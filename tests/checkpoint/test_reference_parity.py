"""Parity with the original SPHINX code on real-size encoders, for every released variant.

Needs the artifacts written by shared/reference/parity-harness (57 GiB; one variant at a time takes
up to 14 GB of RAM and minutes on 2 cores): set SPHINX_MLLM_REFDATA to their folder. Each variant
runs every dtype its artifacts hold, through scripts/parity_check.py, and must meet the bounds of
``parity_check.failures`` (fp32 logits <= 1e-4 and identical greedy tokens, bit-identical tower
inputs, encoders <= 1e-4; bf16 logits <= 5e-2 and identical tokens or a flip explained by noise).
With SPHINX_MLLM_PARITY_REPORTS set, each variant's JSON report is written into that folder.
"""

import importlib.util
import json
import os
from pathlib import Path

import pytest

REFDATA = Path(os.environ.get("SPHINX_MLLM_REFDATA", "/nonexistent"))
REPORTS = os.environ.get("SPHINX_MLLM_PARITY_REPORTS")
VARIANTS = ["llama_ens", "llama_ens5", "llama_ens10", "llama_ens_light", "llama_ens5_light"]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (REFDATA / "tokenizer").is_dir(),
                                 reason="parity-harness artifacts absent: set SPHINX_MLLM_REFDATA "
                                        "to the folder make_reference.py wrote")]


def checker():
    path = Path(__file__).resolve().parents[2] / "scripts" / "parity_check.py"
    spec = importlib.util.spec_from_file_location("parity_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_matches_the_original(variant):
    if not (REFDATA / variant / "outputs" / "logits_fp32.npy").is_file():
        pytest.skip(f"{REFDATA / variant} has no finished artifacts (run its harness stage)")
    module = checker()
    assert set(module.VARIANTS) == set(VARIANTS)
    report = module.check(REFDATA, variant)
    if REPORTS:
        Path(REPORTS).mkdir(parents=True, exist_ok=True)
        (Path(REPORTS) / f"{variant}.json").write_text(json.dumps(report, indent=2) + "\n")
    assert "fp32" in report["runs"]
    assert report["failures"] == [], json.dumps(report, indent=2)
