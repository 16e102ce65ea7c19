"""Shared values for the training tests (imported as a plain module: tests are not a package)."""

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "configs" / "train" / "tiny-cpu.yaml"
COLOURS = ("red", "green", "blue", "yellow", "white", "black", "orange", "purple")


def losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
