"""A Markdown + HTML page over benchmark runs: a table against SPHINX's published numbers and
example images with the predictions drawn (REC boxes, keypoint skeletons, layout boxes).

Input: run directories written by :func:`~sphinx_mllm.eval.runner.run_benchmark` (each with
``metrics.json`` and ``answers.jsonl``). Drawing reads the items again from the ``data_dir``
recorded in ``metrics.json``; a run whose data is gone still gets its table row.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from PIL import Image, ImageDraw

from ..media import load_image
from ..tasks import COCO_KEYPOINTS, COCO_SKELETON, parse_detections
from .benchmarks import Item, get_benchmark
from .benchmarks.coco import answer_keypoints
from .benchmarks.grounding import answer_box
from .published import MODELS, PUBLISHED, published_for
from .runner import ANSWERS_FILE, METRICS_FILE, load_items, read_answers

TRUTH, PREDICTION = (40, 200, 40), (230, 40, 40)

_INDEX = {name: i for i, name in enumerate(COCO_KEYPOINTS)}


@dataclass(frozen=True)
class Run:
    directory: Path
    record: dict

    @property
    def benchmark(self) -> str:
        return self.record["benchmark"]


def load_run(directory: str | Path) -> Run:
    path = Path(directory) / METRICS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no {METRICS_FILE} in {directory}: run `sphinx-mllm eval` first")
    return Run(Path(directory), json.loads(path.read_text()))


def _fmt(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def table_rows(runs: Sequence[Run]) -> list[list[str]]:
    """One row per (run, shown metric): the benchmark's primary metric, plus any other metric
    SPHINX published for it (MME cognition)."""
    rows = []
    for run in runs:
        rec, metrics = run.record, run.record["metrics"]
        primary = get_benchmark(run.benchmark).primary
        shown = [primary] + [m for m in metrics
                             if m != primary and published_for(run.benchmark, rec["split"], m)]
        for metric in shown:
            columns = published_for(run.benchmark, rec["split"], metric)
            published = [columns[0][1][m] if columns else None for m in MODELS]
            rows.append([run.directory.name, run.benchmark, rec["split"], str(rec["model"]), metric,
                         _fmt(metrics.get(metric)), *(_fmt(p) for p in published),
                         _fmt(metrics.get("n")), _fmt(metrics.get("missing"))])
    return rows


HEADER = ["run", "benchmark", "split", "model", "metric", "ours", *MODELS, "n", "missing"]


# --- drawing --------------------------------------------------------------------------------------


def _box(draw: ImageDraw.ImageDraw, box: Sequence[float], color, label: str | None = None) -> None:
    x1, y1, x2, y2 = box
    draw.rectangle((min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)), outline=color, width=2)
    if label:
        draw.text((min(x1, x2) + 2, min(y1, y2) + 1), label, fill=color)


def _skeleton(draw: ImageDraw.ImageDraw, points: Sequence[Sequence[float] | None], color) -> None:
    """COCO-17 points (pixels, None or v == 0 for missing) with the limbs between present ones."""
    def present(p):
        return p is not None and (len(p) < 3 or p[2] > 0)

    for a, b in COCO_SKELETON:
        p, q = points[_INDEX[a]], points[_INDEX[b]]
        if present(p) and present(q):
            draw.line((p[0], p[1], q[0], q[1]), fill=color, width=2)
    for p in points:
        if present(p):
            draw.ellipse((p[0] - 3, p[1] - 3, p[0] + 3, p[1] + 3), fill=color)


def draw_example(benchmark: str, item: Item, answer: str) -> Image.Image:
    """The item's image with ground truth (green) and the parsed prediction (red), in pixels."""
    image = load_image(item.image)
    draw = ImageDraw.Draw(image)
    drawing = get_benchmark(benchmark).drawing
    if drawing == "box":
        ref = item.reference
        _box(draw, (ref.x1, ref.y1, ref.x2, ref.y2), TRUTH)
        pred = answer_box(answer, item)
        if pred is not None:
            _box(draw, (pred.x1, pred.y1, pred.x2, pred.y2), PREDICTION)
    elif drawing == "keypoints":
        _box(draw, item.reference["bbox"], TRUTH)
        _skeleton(draw, item.reference["keypoints"], TRUTH)
        _skeleton(draw, answer_keypoints(answer, item), PREDICTION)
    elif drawing == "layout":
        names = {v: k for k, v in item.meta["categories"].items()}
        for g in item.reference:
            _box(draw, g["bbox"], TRUTH, names.get(g["category_id"]))
        for detection in parse_detections(answer):
            for b in detection.boxes:
                p = item.frame.box_to_pixels(b, clip=False)
                _box(draw, (p.x1, p.y1, p.x2, p.y2), PREDICTION, detection.label)
    else:
        raise ValueError(f"no drawing for benchmark {benchmark!r} (its record sets no `drawing`)")
    return image


def draw_examples(run: Run, folder: Path, count: int) -> list[tuple[Path, str, str]]:
    """Up to ``count`` drawn examples of ``run`` saved in ``folder``: ``[(png, title, answer)]``."""
    rec = run.record
    if get_benchmark(run.benchmark).drawing is None or count <= 0:
        return []
    try:
        items = load_items(run.benchmark, rec["data_dir"], rec["split"], rec.get("images"))
    except (FileNotFoundError, OSError):
        return []
    benchmark = get_benchmark(run.benchmark)
    answers = read_answers(run.directory / ANSWERS_FILE, benchmark)
    out = []
    folder.mkdir(parents=True, exist_ok=True)
    for item in items:
        record = answers.get(benchmark.key(item.ids))
        if record is None or not item.image.is_file():
            continue
        stem = "_".join(str(v) for v in item.ids.values())
        path = folder / f"{run.directory.name}_{run.benchmark}_{stem}.png"
        draw_example(run.benchmark, item, record["answer"]).save(path)
        out.append((path, f"{run.benchmark} {stem}", record["answer"][:160]))
        if len(out) == count:
            break
    return out


# --- page -----------------------------------------------------------------------------------------


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"
    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table>\n<tr>{head}</tr>\n{body}\n</table>"


def write_report(run_dirs: Sequence[str | Path], out: str | Path, examples: int = 4) -> tuple[Path, Path]:
    """Write ``out`` with a ``.md`` and a ``.html`` suffix (whatever suffix ``out`` has) plus a
    ``{stem}_files/`` folder of example images; return the two page paths."""
    runs = [load_run(d) for d in run_dirs]
    out = Path(out)
    md_path, html_path = out.with_suffix(".md"), out.with_suffix(".html")
    folder = out.parent / f"{out.stem}_files"
    rows = table_rows(runs)
    published = [(title, list(table[MODELS[0]]), [[m, *(_fmt(v) for v in table[m].values())] for m in MODELS])
                 for title, table in PUBLISHED.items()]
    drawn = [(run, draw_examples(run, folder, examples)) for run in runs]

    md = ["# sphinx-mllm evaluation report", "",
          "Our runs against SPHINX's published numbers (LLaMA2-Accessory README, spec 11.2). "
          "Published numbers were decoded at temperature 0.1; see each run's `metrics.json` for ours.",
          "", _markdown_table(HEADER, rows), "", "## Published SPHINX numbers", ""]
    page = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>sphinx-mllm evaluation</title>",
            "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
            "figure{display:inline-block;margin:4px}img{max-width:420px}</style></head><body>",
            "<h1>sphinx-mllm evaluation report</h1>", _html_table(HEADER, rows),
            "<h2>Published SPHINX numbers</h2>"]
    for title, columns, table_rows_ in published:
        md += [f"### {title}", "", _markdown_table(["model", *columns], table_rows_), ""]
        page += [f"<h3>{html.escape(title)}</h3>", _html_table(["model", *columns], table_rows_)]
    if any(images for _, images in drawn):
        md += ["## Examples", "", "Ground truth in green, the model's parsed prediction in red.", ""]
        page += ["<h2>Examples</h2><p>Ground truth in green, the model's parsed prediction in red.</p>"]
    for run, images in drawn:
        if not images:
            continue
        md += [f"### {run.directory.name} ({run.benchmark} {run.record['split']})", ""]
        page += [f"<h3>{html.escape(run.directory.name)} ({html.escape(run.benchmark)})</h3>"]
        for path, title, answer in images:
            rel = path.relative_to(out.parent).as_posix()
            md += [f"![{title}]({rel})", "", f"{title}: `{answer.replace('`', chr(39))}`", ""]
            page += [f"<figure><img src='{html.escape(rel)}' alt='{html.escape(title)}'><figcaption>"
                     f"{html.escape(title)}: <code>{html.escape(answer)}</code></figcaption></figure>"]
    page += ["</body></html>"]
    out.parent.mkdir(parents=True, exist_ok=True)
    md_path.write_text("\n".join(md) + "\n", encoding="utf-8")
    html_path.write_text("\n".join(page) + "\n", encoding="utf-8")
    return md_path, html_path
