"""Loss and learning-rate curves of one or more runs (``metrics.jsonl``) as one PNG."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence


def read_metrics(run: str | Path) -> list[dict]:
    path = Path(run) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: is {run} a training run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_runs(runs: Sequence[str | Path], out: str | Path) -> Path:
    """Two panels against the optimiser step: training loss (log scale) and learning rate."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (loss_ax, lr_ax) = plt.subplots(2, 1, figsize=(8, 6), sharex=True,
                                         gridspec_kw={"height_ratios": [3, 1]})
    for run in runs:
        records = read_metrics(run)
        steps = [r["step"] for r in records]
        label = Path(run).name
        loss_ax.plot(steps, [r["loss"] for r in records], label=label, linewidth=1)
        lr_ax.plot(steps, [r["lr"] for r in records], label=label, linewidth=1)
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss")
    loss_ax.grid(alpha=0.3)
    loss_ax.legend()
    lr_ax.set_ylabel("learning rate")
    lr_ax.set_xlabel("optimiser step")
    lr_ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
