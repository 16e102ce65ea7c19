"""Scoring a model on a held-out toy world with the evaluation module's readers and metrics.

Every task reads the world's files with the benchmark reader of its real counterpart (VQAv2,
RefCOCO, PubLayNet, COCO keypoints, COCO captions) and scores with that benchmark's scorer, so
the toy numbers come out of exactly the code that scores real benchmarks. Detection has no
benchmark of its own: ``instances_S.json`` is read and scored as PubLayNet is (COCO box mAP,
labels matched to categories by name), with the detection prompt.

The summary (:data:`SUMMARY_KEYS`) holds fractions in [0, 1]; CIDEr is CIDEr-D as the COCO
toolkit computes it (the evaluation module's value / 100, which can exceed 1). Captions are
tokenised with the metric's Java-free ``simple`` tokenizer, so no JRE is needed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..data.files import read_json
from ..eval.benchmarks import Benchmark, Item, get_benchmark
from ..eval.benchmarks.base import task_prompt
from ..eval.benchmarks.grounding import answer_box
from ..eval.metrics.answers import normalize_vqa_answer
from ..eval.runner import generate_answers, json_safe, read_answers, score_items
from ..tasks import (COCO_KEYPOINTS, Box, Detection, Detections, Keypoints, Point, format_box,
                     format_detections, format_keypoints)
from .dataset import generate_world, world_picture
from .seeds import check_held_out_seed, read_manifest
from .world import MAX_THINGS, check_colours, check_things, position_word

SUMMARY_KEYS = ("vqa_acc", "rec_acc50", "det_map50", "layout_map50", "pose_pck10",
                "caption_cider_web", "caption_cider_synthetic", "highres_acc")
CAPTION_OPTIONS = {"tokenizer": "simple", "metrics": ("cider",)}


def _read_detection(root: Path, split: str, images: Path | None) -> list[Item]:
    """One item per scene (``image_id``): ``annotations/instances_S.json`` is a COCO box file like
    PubLayNet's, so the PubLayNet reader reads it; the prompt becomes the detection prompt."""
    items = get_benchmark("publaynet").read(root / "annotations", f"instances_{split}",
                                            images or root / split)
    prompt = task_prompt("detection", Detections(()))
    return [dataclasses.replace(item, prompt=prompt) for item in items]


@dataclasses.dataclass(frozen=True)
class ToyTask:
    """One evaluated task: the benchmark record that reads and scores it, where its files are
    relative to the world folder, the scorer options, and whether an evaluation that names no
    tasks scores it (``default``; the issue's tasks do, diagnostics only when named)."""

    name: str
    benchmark: Benchmark
    root: str = "."              # the benchmark's data folder, relative to the world
    split_suffix: str = ""       # caption domains are splits S_web / S_synthetic
    images_in_split: bool = False
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    default: bool = True

    def items(self, world: Path, split: str) -> list[Item]:
        images = world / split if self.images_in_split else None
        return self.benchmark.read(world / self.root, split + self.split_suffix, images)


def _budget(name: str, tokens: int) -> Benchmark:
    """A registered benchmark with a token budget sized for the toy world's answers."""
    return dataclasses.replace(get_benchmark(name), max_new_tokens=tokens, budget_source="ours")


def toy_tasks() -> tuple[ToyTask, ...]:
    layout = get_benchmark("publaynet")
    detection = Benchmark("toy-detection", _read_detection, layout.score, ("image_id",), ("val",),
                          "val", 192, "map_50", budget_source="ours",
                          description="toy-world scenes, COCO box mAP by category name")
    return (
        ToyTask("vqa", get_benchmark("vqav2")),
        ToyTask("rec", get_benchmark("refcoco"), root="refcoco", images_in_split=True),
        ToyTask("detection", detection),
        ToyTask("layout", _budget("publaynet", 384)),
        ToyTask("pose", get_benchmark("coco-keypoints")),
        ToyTask("caption_web", get_benchmark("coco-captions"), split_suffix="_web",
                images_in_split=True, options=CAPTION_OPTIONS),
        ToyTask("caption_synthetic", _budget("coco-captions", 160), split_suffix="_synthetic",
                images_in_split=True, options=CAPTION_OPTIONS),
        ToyTask("where", get_benchmark("vqav2"), root="where", images_in_split=True,
                default=False),
    )


def load_world_items(world: str | Path, tasks: Sequence[str] | None = None
                     ) -> dict[str, list[Item]]:
    """Items of the toy tasks of a generated world (those named in ``tasks``, checked by
    :func:`check_tasks`; default every one), by task name; a task left out has none."""
    world = Path(world)
    split = read_manifest(world)["split"]
    named = task_names() if tasks is None else check_tasks(tasks)
    return {t.name: t.items(world, split) if t.name in named else [] for t in toy_tasks()}


def task_names() -> tuple[str, ...]:
    """Names of the toy tasks, in the order :func:`evaluate` answers them."""
    return tuple(t.name for t in toy_tasks())


def default_tasks() -> tuple[str, ...]:
    """The tasks an evaluation that names none scores: all but the diagnostics (``where``)."""
    return tuple(t.name for t in toy_tasks() if t.default)


def check_tasks(tasks: Sequence[str]) -> list[str]:
    """``tasks`` as a list when there is at least one and every name is a toy task, else
    ValueError."""
    tasks = list(tasks)
    unknown = sorted(set(tasks) - set(task_names()))
    if unknown or not tasks:
        raise ValueError(f"tasks: {'unknown ' + ', '.join(unknown) if unknown else 'none given'}; "
                         f"choose among {', '.join(task_names())}")
    return tasks


def question_families(world: str | Path) -> dict[str, str]:
    """VQA ``question_id`` (as a string) -> question family (colour, shape, count, highres)."""
    world = Path(world)
    split = read_manifest(world)["split"]
    data = read_json(world / f"v2_mscoco_{split}_annotations.json")
    return {str(a["question_id"]): a["question_family"] for a in data["annotations"]}


def scene_shapes(world: str | Path) -> dict[str, list[tuple[str, Box]]]:
    """Scene image file name -> ``(category, pixel box)`` of each of its shapes (category as the
    RefCOCO folder's instances name it: ``red circle``)."""
    data = read_json(Path(world) / "refcoco" / "instances.json")
    names = {c["id"]: c["name"] for c in data["categories"]}
    shapes: dict[int, list[tuple[str, Box]]] = defaultdict(list)
    for ann in data["annotations"]:
        x, y, w, h = ann["bbox"]
        shapes[ann["image_id"]].append((names[ann["category_id"]], Box(x, y, x + w, y + h)))
    return {image["file_name"]: shapes[image["id"]] for image in data["images"]}


def shapes_per_scene(world: str | Path) -> dict[str, list[Box]]:
    """Scene image file name -> pixel boxes of its shapes (from the RefCOCO folder's instances)."""
    return {name: [box for _, box in shapes] for name, shapes in scene_shapes(world).items()}


def _named(scene: Sequence[Box], item: Item) -> int:
    """Index of the scene's shape that ``item``'s reference box is (the best IoU)."""
    return max(range(len(scene)), key=lambda i: scene[i].iou(item.reference))


def _keyed(benchmark: str, answers: Mapping[Any, Mapping] | Sequence[Mapping]
           ) -> tuple[Benchmark, Mapping]:
    """The registered ``benchmark`` and answer records keyed by its id fields."""
    bench = get_benchmark(benchmark)
    if not isinstance(answers, Mapping):
        answers = {bench.key(r): r for r in answers}
    return bench, answers


def rec_by_colour(world: str | Path, items: Sequence[Item],
                  answers: Mapping[Any, Mapping] | Sequence[Mapping]) -> dict[str, dict]:
    """REC over the answered expressions about scenes of two or more shapes, split by whether
    another shape of the scene has the named shape's colour: ``{"colour_shared", "colour_unique",
    "shape_decides": {"n", "named", "other"}}``, where ``named`` is Acc@0.5 and ``other`` the share
    of answers that box another shape instead (IoU >= 0.5 with it; both None for a group with no
    answer). ``shape_decides`` is the part of ``colour_shared`` where no other shape has the named
    one's colour and shape both, so that the expression's shape word is what singles it out.
    A model that picks the named shape by its colour alone scores well only where the colour is
    unique; one that reads the shape word too boxes the named shape more often than another
    (``named`` above ``other``) where the shape decides."""
    rec, answers = _keyed("refcoco", answers)
    scenes = scene_shapes(world)
    groups: dict[str, list[Item]] = {"colour_shared": [], "colour_unique": [], "shape_decides": []}
    for item in items:
        scene = scenes[Path(item.image).name]
        if len(scene) < 2 or rec.key(item.ids) not in answers:
            continue
        named = _named([box for _, box in scene], item)
        colour = scene[named][0].split()[0]
        others = [name for i, (name, _) in enumerate(scene) if i != named]
        shared = any(name.split()[0] == colour for name in others)
        groups["colour_shared" if shared else "colour_unique"].append(item)
        if shared and scene[named][0] not in others:
            groups["shape_decides"].append(item)
    return {group: _named_or_other(rec, group_items, answers, scenes)
            for group, group_items in groups.items()}


def _named_or_other(rec: Benchmark, items: Sequence[Item], answers: Mapping,
                    scenes: Mapping[str, list[tuple[str, Box]]]) -> dict:
    """``{"n", "named", "other"}`` of answered REC ``items``: Acc@0.5 and the share of answers
    that box another shape of the scene instead (None for both when there is no item)."""
    if not items:
        return {"n": 0, "named": None, "other": None}
    other = 0
    for item in items:
        box = answer_box(str(answers[rec.key(item.ids)]["answer"]), item)
        scene = [b for _, b in scenes[Path(item.image).name]]
        named = _named(scene, item)
        other += _boxes_another(box, scene, named)
    return {"n": len(items), "named": _fraction(score_items(rec, items, answers)["acc50"]),
            "other": other / len(items)}


def colour_question_choice(world: str | Path, items: Sequence[Item],
                           answers: Mapping[Any, Mapping] | Sequence[Mapping]) -> dict:
    """VQA accuracy on the colour questions ("What color is the circle?", which name their shape
    by the shape alone) answered about scenes of two or more shapes, beside ``chance``: what a
    model scores that names one of the scene's colours at random (the mean of 1 / the scene's
    distinct colours). ``{"n", "accuracy", "chance"}``, both None when ``n`` is 0. A model that
    finds the shape by its shape scores well above ``chance``; one that sees the scene's colours
    but not which shape is asked about scores ``chance``."""
    vqa, answers = _keyed("vqav2", answers)
    family_of, scenes = question_families(world), scene_shapes(world)
    asked, chance = [], 0.0
    for item in items:
        scene = scenes.get(Path(item.image).name, [])
        if (family_of[str(item.ids["question_id"])] != "colour" or len(scene) < 2
                or vqa.key(item.ids) not in answers):
            continue
        asked.append(item)
        chance += 1 / len({name.split()[0] for name, _ in scene})
    if not asked:
        return {"n": 0, "accuracy": None, "chance": None}
    return {"n": len(asked), "accuracy": _fraction(score_items(vqa, asked, answers)["accuracy"]),
            "chance": chance / len(asked)}


def where_choice(world: str | Path, items: Sequence[Item],
                 answers: Mapping[Any, Mapping] | Sequence[Mapping]) -> dict:
    """The where questions ("Where is the circle?", :func:`~.language.where_questions`) answered
    about scenes of two or more shapes: ``{"n", "named", "other"}``, where ``named`` is VQA
    accuracy (the named shape's place) and ``other`` the share of answers that give the place of
    another shape of the scene instead (both None when ``n`` is 0). The named shape is the only
    one of its kind and the only one at its place, so a model that finds it by its shape has
    ``named`` well above ``other``; one that reads where the shapes are but not which one is
    asked for splits its answers among their places."""
    vqa, answers = _keyed("vqav2", answers)
    manifest = read_manifest(world)
    image_ids = {image["file_name"]: image["id"]
                 for image in read_json(Path(world) / "refcoco" / "instances.json")["images"]}
    asked, other = [], 0
    for item in items:
        record = answers.get(vqa.key(item.ids))
        if record is None:
            continue
        # the exact boxes, drawn again (instances.json rounds them to 0.01 px)
        picture = world_picture(manifest, image_ids[Path(item.image).name] - 1)
        if len(picture.things) < 2:
            continue
        places = {position_word(t.box, picture.width, picture.height) for t in picture.things}
        asked.append(item)
        other += normalize_vqa_answer(str(record["answer"])) in places - set(item.reference)
    if not asked:
        return {"n": 0, "named": None, "other": None}
    return {"n": len(asked), "named": _fraction(score_items(vqa, asked, answers)["accuracy"]),
            "other": other / len(asked)}


def rec_by_objects(world: str | Path, items: Sequence[Item],
                   answers: Mapping[Any, Mapping] | Sequence[Mapping]) -> dict[int, dict]:
    """REC by the number of shapes in the scene: ``{count: {"n", "named", "other", "near"}}``
    over the answered expressions (``n`` of them; None for the shares when a group has none),
    where ``named`` is Acc@0.5 (the refcoco scorer), ``other`` the share of answers whose box
    matches another shape of the scene (IoU >= 0.5) instead, and ``near`` the share whose box
    matches no shape but whose centre is nearest the named shape's (placed by the right shape,
    too imprecise to count). A model that reads a shape's box but does not choose the named one
    has ``other`` near ``named * (count - 1)``; one that chooses but places loosely has a large
    ``near``: more than the ``1 / count`` of its misses that a box dropped anywhere would be
    nearest the named shape."""
    rec, answers = _keyed("refcoco", answers)
    shapes = shapes_per_scene(world)
    groups: dict[int, list[Item]] = defaultdict(list)
    for item in items:
        groups[len(shapes[Path(item.image).name])].append(item)
    out = {}
    for count, group in sorted(groups.items()):
        answered = [item for item in group if rec.key(item.ids) in answers]
        if not answered:
            out[count] = {"n": 0, "named": None, "other": None, "near": None}
            continue
        other = near = 0
        for item in answered:
            box = answer_box(str(answers[rec.key(item.ids)]["answer"]), item)
            if box is None:
                continue
            scene = shapes[Path(item.image).name]
            named = _named(scene, item)
            if _boxes_another(box, scene, named):
                other += 1
            elif scene[named].iou(box) < 0.5:
                near += min(range(len(scene)), key=lambda i: _centre_gap(scene[i], box)) == named
        acc50 = score_items(rec, answered, answers)["acc50"]
        out[count] = {"n": len(answered), "named": _fraction(acc50),
                      "other": other / len(answered), "near": near / len(answered)}
    return out


def _boxes_another(box: Box | None, scene: Sequence[Box], named: int) -> bool:
    """Whether ``box`` matches (IoU >= 0.5) a shape of ``scene`` other than shape ``named``
    (shapes do not overlap, so such a box misses the named one)."""
    return box is not None and any(b.iou(box) >= 0.5 for i, b in enumerate(scene) if i != named)


def _centre_gap(a: Box, b: Box) -> float:
    """Squared distance between the centres of two boxes."""
    return ((a.x1 + a.x2 - b.x1 - b.x2) ** 2 + (a.y1 + a.y2 - b.y1 - b.y2) ** 2) / 4


def _fraction(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value / 100.0


def score_world(world: str | Path, answers: Mapping[str, Mapping | Sequence[Mapping]],
                items: Mapping[str, list[Item]] | None = None) -> dict:
    """Score answer records (per task: records with the benchmark's id fields + ``answer``).

    Returns ``{"summary": {SUMMARY_KEYS...}, "tasks": {task: metrics}, "vqa_families": {family:
    accuracy fraction}, "rec_by_objects": :func:`rec_by_objects`, "rec_by_colour":
    :func:`rec_by_colour`, "colour_question_choice": :func:`colour_question_choice`,
    "where_choice": :func:`where_choice`}``. A summary value is None only when the world has no
    item for it (or its task was not scored).
    ``rec_by_objects`` tells whether REC fails at reading a box (one shape) or at choosing the
    named shape among several; ``rec_by_colour`` whether that choice reads the shape or only the
    colour; ``colour_question_choice`` and ``where_choice`` whether a question finds a shape named
    by its shape alone.
    """
    items = items or load_world_items(world, default_tasks())
    tasks = {t.name: t for t in toy_tasks()}
    metrics = {}
    for name, task_items in items.items():
        if not task_items:
            continue
        metrics[name] = score_items(tasks[name].benchmark, task_items, answers[name],
                                    **tasks[name].options)
    families: dict[str, float | None] = {}
    if items["vqa"]:
        by_family = defaultdict(list)
        family_of = question_families(world)
        for item in items["vqa"]:
            by_family[family_of[str(item.ids["question_id"])]].append(item)
        vqa = tasks["vqa"].benchmark
        for family, family_items in sorted(by_family.items()):
            families[family] = _fraction(score_items(vqa, family_items, answers["vqa"])["accuracy"])
    by_objects = rec_by_objects(world, items["rec"], answers["rec"]) if items["rec"] else {}
    by_colour = rec_by_colour(world, items["rec"], answers["rec"]) if items["rec"] else {}
    colour_choice = (colour_question_choice(world, items["vqa"], answers["vqa"])
                     if items["vqa"] else {})
    where = where_choice(world, items["where"], answers["where"]) if items.get("where") else {}

    def get(task: str, key: str) -> float | None:
        return _fraction(metrics[task][key]) if task in metrics else None

    summary = {
        "vqa_acc": get("vqa", "accuracy"), "rec_acc50": get("rec", "acc50"),
        "det_map50": get("detection", "map_50"), "layout_map50": get("layout", "map_50"),
        "pose_pck10": get("pose", "pck"), "caption_cider_web": get("caption_web", "cider"),
        "caption_cider_synthetic": get("caption_synthetic", "cider"),
        "highres_acc": families.get("highres"),
    }
    return {"summary": summary, "tasks": metrics, "vqa_families": families,
            "rec_by_objects": by_objects, "rec_by_colour": by_colour,
            "colour_question_choice": colour_choice, "where_choice": where}


def evaluate(pipeline: Any, world: str | Path, out: str | Path, *, batch_size: int = 16,
             max_new_tokens: int | None = None, progress: bool = False,
             tasks: Sequence[str] | None = None) -> dict:
    """Answer the toy tasks of ``world`` named in ``tasks`` (checked by :func:`check_tasks`;
    default :func:`default_tasks`) with ``pipeline`` (greedy; answers resumable in
    ``out/<task>.answers.jsonl``) and score them with :func:`score_world`; the summary keys of
    tasks left out are None.

    ``max_new_tokens`` caps every task's budget (for smoke tests; None keeps each task's own).
    """
    world, out = Path(world), Path(out)
    tasks = default_tasks() if tasks is None else check_tasks(tasks)
    items = load_world_items(world, tasks)
    answers = {}
    for task in toy_tasks():
        if not items[task.name]:
            continue
        path = out / f"{task.name}.answers.jsonl"
        sampling = {"max_new_tokens": max_new_tokens} if max_new_tokens else None
        generate_answers(task.benchmark, items[task.name], pipeline, path, batch_size, sampling,
                         progress)
        answers[task.name] = read_answers(path, task.benchmark)
    result = score_world(world, answers, items)
    (out / "scores.json").write_text(json.dumps(json_safe(result), indent=2) + "\n")
    return result


# --- the perfect answers: checks that scoring cannot silently be wrong --------------------------


def _square_detections(item: Item) -> str:
    names = {i: n for n, i in item.meta["categories"].items()}
    grouped: dict[str, list[Box]] = {}
    for ref in sorted(item.reference, key=lambda r: (r["bbox"][1], r["bbox"][0])):
        grouped.setdefault(names[ref["category_id"]], []).append(
            item.frame.box_to_square(Box(*ref["bbox"])))
    return format_detections([Detection(label, tuple(boxes)) for label, boxes in grouped.items()])


def _square_keypoints(item: Item) -> str:
    points = tuple((name, item.frame.point_to_square(Point(x, y)))
                   for name, (x, y, v) in zip(COCO_KEYPOINTS, item.reference["keypoints"]) if v > 0)
    return format_keypoints(Keypoints(points))


def reference_answers(items: Mapping[str, list[Item]]) -> dict[str, list[dict]]:
    """The answer records a perfect model would write (ground truth in the answer formats the
    training data uses), per task; scoring them must give 1.0 on every fraction."""
    def answer(task: str, item: Item) -> str:
        if task in ("vqa", "where"):
            return item.reference[0]
        if task == "rec":
            return format_box(item.frame.box_to_square(item.reference))
        if task in ("detection", "layout"):
            return _square_detections(item)
        if task == "pose":
            return _square_keypoints(item)
        return item.reference[0]  # captions: the first reference of the domain
    return {task: [{**it.ids, "answer": answer(task, it)} for it in task_items]
            for task, task_items in items.items()}


def evaluate_seed(pipeline: Any, seed: int, n: int, out: str | Path | None = None, *,
                  batch_size: int = 16, max_new_tokens: int | None = None,
                  progress: bool = False, tasks: Sequence[str] | None = None,
                  max_things: int = MAX_THINGS, min_things: int = 1,
                  colours: int | None = None) -> dict:
    """Generate held-out world ``seed`` with ``n`` pictures and :func:`evaluate` ``pipeline`` on it
    (the tasks named in ``tasks``, default :func:`default_tasks`). ``max_things`` /
    ``min_things`` bound the shapes per scene and ``colours`` their palette as in
    :func:`~.dataset.generate_world` (two-shape scenes ask REC for the choice alone; one colour a
    scene asks it to read the shape).

    ``out`` keeps the world (``out/world``) and the answers (``out/answers``); by default both go
    to a temporary folder that is removed afterwards. Training seeds are refused.
    """
    check_held_out_seed(seed)
    check_things(min_things, max_things)  # all before the world is generated
    check_colours(colours)
    if tasks is not None:
        tasks = check_tasks(tasks)
    with tempfile.TemporaryDirectory(prefix="toy-eval-") as tmp:
        base = Path(out) if out is not None else Path(tmp)
        generate_world(seed, n, base / "world", max_things=max_things, min_things=min_things,
                       colours=colours)
        result = evaluate(pipeline, base / "world", base / "answers", batch_size=batch_size,
                          max_new_tokens=max_new_tokens, progress=progress, tasks=tasks)
    return {"seed": seed, "n": n, **result}


def format_scores(result: dict) -> str:
    """A short human-readable table of a result of :func:`evaluate_seed`."""
    def show(value):
        return "n/a" if value is None else f"{value:.3f}"
    lines = [f"toy world seed {result.get('seed')}, n = {result.get('n')}"]
    lines += [f"  {key:<26} {show(value)}" for key, value in result["summary"].items()]
    lines += [f"  vqa {family:<22} {show(value)}" for family, value in result["vqa_families"].items()]
    for count, rec in result.get("rec_by_objects", {}).items():
        scene = f"{count} shape" + ("s" if int(count) > 1 else "")
        lines.append(f"  rec {scene:<22} {show(rec['named'])}  (another shape boxed: "
                     f"{show(rec['other'])}; by the named one, IoU < 0.5: "
                     f"{show(rec.get('near'))}; n = {rec['n']})")
    for group, rec in result.get("rec_by_colour", {}).items():
        label = group.replace("_", " ")
        lines.append(f"  rec {label:<22} {show(rec['named'])}  (another shape boxed: "
                     f"{show(rec.get('other'))}; scenes of 2+ shapes; n = {rec['n']})")
    choice = result.get("colour_question_choice") or {}
    if choice.get("n"):
        label = "colour of a named shape"
        lines.append(f"  vqa {label:<22} {show(choice['accuracy'])}  (scenes of 2+ shapes; a "
                     f"scene colour at random: {show(choice['chance'])}; n = {choice['n']})")
    if "where" in result.get("tasks", {}):
        lines.append(f"  {'where (a diagnostic)':<26} "
                     f"{show(_fraction(result['tasks']['where']['accuracy']))}")
    where = result.get("where_choice") or {}
    if where.get("n"):
        lines.append(f"  where {'of 2+ shapes':<20} {show(where['named'])}  (another shape's "
                     f"place: {show(where['other'])}; n = {where['n']})")
    return "\n".join(lines)
