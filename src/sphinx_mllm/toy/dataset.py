"""Writing a toy world to disk in the real public dataset formats.

One world folder (``S`` = the world's split, ``train`` or ``val``, see :mod:`.seeds`)::

    world.json                                   manifest: seed, n, split, counts, files
    S/COCO_S_{image_id:012d}.jpg                 every picture (JPEG, quality 95, no chroma subsampling)
    annotations/instances_S.json                 COCO instances: the shapes of the scenes
    annotations/person_keypoints_S.json          COCO person keypoints: the stick figures
    annotations/captions_S_web.json              COCO captions, "web" domain (5 per picture)
    annotations/captions_S_synthetic.json        COCO captions, "synthetic" domain (1 per picture)
    v2_OpenEnded_mscoco_S_questions.json         VQAv2 questions
    v2_mscoco_S_annotations.json                 VQAv2 annotations (10 answers each)
    where/v2_OpenEnded_mscoco_S_questions.json   VQAv2 "Where is the circle?" -> a 3x3 place
    where/v2_mscoco_S_annotations.json           (:func:`~.language.where_questions`; images in S/)
    S.json                                       PubLayNet (COCO format): the pages
    refcoco/refs(unc).p, refcoco/instances.json  RefCOCO (refer toolkit layout): the scenes
    conversations_S.json                         LLaVA format: "What's in the image?" + description
    text_S.jsonl                                 text-only corpus {"text": ...} (captions of unseen scenes)

So the world is read by the same adapters (``coco-instances``, ``coco-keypoints``,
``coco-captions`` with split ``S_web`` / ``S_synthetic`` and ``images=S``, ``vqav2``,
``publaynet``, ``refcoco`` with ``images=../S``, ``vqav2`` on ``where`` with ``images=../S``,
``llava``, ``text``) and the same benchmark
readers as the real datasets. Fields beyond the public formats (ours): ``attributes`` on
instances (size, pattern), ``question_family`` on VQA annotations.
"""

from __future__ import annotations

import json
import math
import pickle
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..data import layouts
from ..data.files import write_json, written
from ..data.mixture import SourceConfig
from ..tasks import COCO_KEYPOINTS, Box
from . import language
from .render import render
from .seeds import MANIFEST, is_held_out, read_manifest, split_for
from .world import (COLOURS, LAYOUT_CATEGORIES, MAX_THINGS, SHAPES, Picture, check_colours,
                    check_things, sample_picture)

GENERATOR_VERSION = 1
WEB_CAPTIONS = 5
TEXT_INDEX_OFFSET = 10_000_000
"""Pictures of the text-only corpus are drawn from indices ``>= TEXT_INDEX_OFFSET``: never
rendered, never an image of the world."""
JPEG_OPTIONS = {"quality": 95, "subsampling": 0}
"""4:4:4 chroma at quality 95 keeps the 1-pixel patterns legible (see docs/toy-world.md)."""

CATEGORIES = tuple(f"{c} {s}" for s in SHAPES for c in COLOURS)
"""COCO instance categories (ids 1..18): colour and shape, supercategory the shape."""
_COCO_SKELETON_IDS = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7],
                      [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5],
                      [4, 6], [5, 7]]


def image_file(split: str, image_id: int) -> str:
    """COCO 2014 naming, which the VQAv2 layout requires."""
    return f"COCO_{split}_{image_id:012d}.jpg"


def _xywh(box: Box) -> list[float]:
    return [round(box.x1, 2), round(box.y1, 2), round(box.width, 2), round(box.height, 2)]


def _polygon(box: Box, shape: str = "square") -> list[list[float]]:
    """A COCO polygon segmentation for a shape filling ``box``."""
    x1, y1, x2, y2 = box.x1, box.y1, box.x2, box.y2
    if shape == "triangle":
        points = [(x1, y2), (x2, y2), ((x1 + x2) / 2, y1)]
    elif shape == "circle":
        cx, cy, r = (x1 + x2) / 2, (y1 + y2) / 2, box.width / 2
        points = [(cx + r * math.cos(2 * math.pi * k / 16), cy + r * math.sin(2 * math.pi * k / 16))
                  for k in range(16)]
    else:
        points = [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    return [[round(v, 2) for p in points for v in p]]


def _shape_area(shape: str, box: Box) -> float:
    factor = {"circle": math.pi / 4, "square": 1.0, "triangle": 0.5}[shape]
    return round(factor * box.width * box.height, 2)


@dataclass
class _Files:
    """The records of every output file, filled picture by picture."""

    split: str
    images: dict[str, list[dict]] = field(default_factory=lambda: {
        "scene": [], "page": [], "people": [], "all": []})
    instances: list[dict] = field(default_factory=list)
    keypoints: list[dict] = field(default_factory=list)
    layout: list[dict] = field(default_factory=list)
    captions: dict[str, list[dict]] = field(default_factory=lambda: {"web": [], "synthetic": []})
    questions: list[dict] = field(default_factory=list)
    answers: list[dict] = field(default_factory=list)
    where_questions: list[dict] = field(default_factory=list)
    where_answers: list[dict] = field(default_factory=list)
    refs: list[dict] = field(default_factory=list)
    conversations: list[dict] = field(default_factory=list)
    ann_id: int = 0
    ref_id: int = 0
    sent_id: int = 0

    def next_ann(self) -> int:
        self.ann_id += 1
        return self.ann_id

    def add(self, picture: Picture, image_id: int) -> None:
        rng = random.Random(f"language:{picture.seed}:{picture.index}")
        entry = {"id": image_id, "file_name": image_file(self.split, image_id),
                 "width": picture.width, "height": picture.height}
        self.images["all"].append(entry)
        self.images[picture.kind].append(entry)
        for domain, texts in (("synthetic", [language.synthetic_caption(picture)]),
                              ("web", [language.web_caption(picture, rng) for _ in range(WEB_CAPTIONS)])):
            for text in texts:
                self.captions[domain].append({"id": self.next_ann(), "image_id": image_id,
                                              "caption": text})
        self.conversations.append({
            "id": f"toy-{self.split}-{image_id}", "image": f"{self.split}/{entry['file_name']}",
            "conversations": [{"from": "human", "value": "<image>\nWhat's in the image?"},
                              {"from": "gpt", "value": language.synthetic_caption(picture)}]})
        _add_questions(self.questions, self.answers, image_id, language.questions(picture, rng))
        _add_questions(self.where_questions, self.where_answers, image_id,
                       language.where_questions(picture))
        add_kind = {"scene": self._add_scene, "page": self._add_page, "people": self._add_people}
        add_kind[picture.kind](picture, image_id, rng)

    def _add_scene(self, picture: Picture, image_id: int, rng: random.Random) -> None:
        ids = []
        for thing in picture.things:
            ids.append(self.next_ann())
            self.instances.append({
                "id": ids[-1], "image_id": image_id, "category_id": CATEGORIES.index(thing.category) + 1,
                "bbox": _xywh(thing.box), "area": _shape_area(thing.shape, thing.box), "iscrowd": 0,
                "segmentation": _polygon(thing.box, thing.shape),
                "attributes": {"size": thing.size, "pattern": thing.pattern}})
        for index, sentences in language.referring_expressions(picture, rng):
            self.ref_id += 1
            sents = []
            for s in sentences:
                self.sent_id += 1
                sents.append({"tokens": s.split(), "raw": s, "sent_id": self.sent_id, "sent": s})
            thing = picture.things[index]
            self.refs.append({
                "sent_ids": [x["sent_id"] for x in sents], "file_name": image_file(self.split, image_id),
                "ann_id": ids[index], "ref_id": self.ref_id, "image_id": image_id,
                "split": self.split, "sentences": sents,
                "category_id": CATEGORIES.index(thing.category) + 1})

    def _add_page(self, picture: Picture, image_id: int, rng: random.Random) -> None:
        for block in picture.blocks:
            self.layout.append({
                "id": self.next_ann(), "image_id": image_id,
                "category_id": LAYOUT_CATEGORIES.index(block.category) + 1,
                "bbox": _xywh(block.box), "area": round(block.box.area, 2), "iscrowd": 0,
                "segmentation": _polygon(block.box)})

    def _add_people(self, picture: Picture, image_id: int, rng: random.Random) -> None:
        for person in picture.people:
            flat = [v for p in person.keypoints for v in (round(p.x, 2), round(p.y, 2), 2)]
            self.keypoints.append({
                "id": self.next_ann(), "image_id": image_id, "category_id": 1,
                "bbox": _xywh(person.box), "area": round(person.box.area, 2), "iscrowd": 0,
                "keypoints": flat, "num_keypoints": len(person.keypoints),
                "segmentation": _polygon(person.box)})


def _add_questions(questions: list[dict], answers: list[dict], image_id: int,
                   asked: list[language.Question]) -> None:
    """Append VQAv2 question and annotation records of ``asked`` about image ``image_id``
    (question ids ``image_id * 10 + k``; ten identical answers, as VQAv2 has ten annotators)."""
    for k, q in enumerate(asked):
        qid = image_id * 10 + k
        questions.append({"image_id": image_id, "question": q.question, "question_id": qid})
        answers.append({
            "question_id": qid, "image_id": image_id,
            "question_type": q.question.split(" ")[0].lower(),
            "answer_type": q.answer_type, "multiple_choice_answer": q.answer,
            "answers": [{"answer": q.answer, "answer_confidence": "yes", "answer_id": a + 1}
                        for a in range(10)],
            "question_family": q.family})


def _write_vqa(out: Path, split: str, info: dict, questions: list[dict],
               answers: list[dict]) -> None:
    """The VQAv2 question and annotation files of ``split`` under ``out`` (names from
    :func:`~sphinx_mllm.data.layouts.vqav2`), the annotations last."""
    files = layouts.vqav2(out, split)
    write_json(files.questions, {"info": info, "task_type": "Open-Ended", "data_type": "mscoco",
                                 "data_subtype": split, "questions": questions})
    write_json(files.annotations, {"info": info, "data_type": "mscoco", "data_subtype": split,
                                   "annotations": answers})


def _info(seed: int, split: str) -> dict:
    return {"description": f"sphinx-mllm toy world, seed {seed}, split {split}",
            "version": str(GENERATOR_VERSION), "year": 2026}


def generate_world(seed: int, n: int, out: str | Path, *, text_lines: int | None = None,
                   max_things: int = MAX_THINGS, min_things: int = 1,
                   colours: int | None = None) -> dict:
    """Draw pictures ``0 .. n-1`` of world ``seed`` and write them in the public formats under
    ``out`` (layout in the module docstring). ``text_lines`` (default ``n``) sets the size of the
    text-only corpus; ``max_things`` / ``min_things`` bound the shapes per scene (a curriculum
    world); ``colours`` draws each scene's shapes from a palette of that many colours (1: shapes
    told apart by anything but their colour; :func:`~.world.sample_picture`). Returns the
    manifest (also written to ``out/world.json``, last, so a folder with a manifest is complete).
    Deterministic: the same (seed, n, max_things, min_things, colours) gives identical files.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    check_things(min_things, max_things)
    check_colours(colours)
    out = Path(out)
    split = split_for(seed)
    (out / split).mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    files = _Files(split)
    kinds: Counter[str] = Counter()
    for index in range(n):
        picture = sample_picture(seed, index, max_things, min_things, colours)
        image_id = index + 1
        render(picture).save(out / split / image_file(split, image_id), "JPEG", **JPEG_OPTIONS)
        files.add(picture, image_id)
        kinds[picture.kind] += 1
    info = _info(seed, split)
    instances = {"info": info, "images": files.images["scene"], "annotations": files.instances,
                 "categories": [{"id": i + 1, "name": name, "supercategory": name.split()[-1]}
                                for i, name in enumerate(CATEGORIES)]}
    write_json(out / "annotations" / f"instances_{split}.json", instances)
    write_json(out / "refcoco" / "instances.json", instances)
    (out / "refcoco" / "refs(unc).p").write_bytes(pickle.dumps(files.refs, protocol=2))
    write_json(out / "annotations" / f"person_keypoints_{split}.json", {
        "info": info, "images": files.images["people"], "annotations": files.keypoints,
        "categories": [{"id": 1, "name": "person", "supercategory": "person",
                        "keypoints": [k.replace(" ", "_") for k in COCO_KEYPOINTS],
                        "skeleton": _COCO_SKELETON_IDS}]})
    for domain, anns in files.captions.items():
        write_json(out / "annotations" / f"captions_{split}_{domain}.json",
                   {"info": info, "images": files.images["all"], "annotations": anns})
    _write_vqa(out, split, info, files.questions, files.answers)
    _write_vqa(out / "where", split, _where_info(seed, split), files.where_questions,
               files.where_answers)
    write_json(out / f"{split}.json", {
        "images": files.images["page"], "annotations": files.layout,
        "categories": [{"id": i + 1, "name": c, "supercategory": ""}
                       for i, c in enumerate(LAYOUT_CATEGORIES)]})
    write_json(out / f"conversations_{split}.json", files.conversations)
    _write_text_corpus(out / f"text_{split}.jsonl", seed, n if text_lines is None else text_lines)
    manifest = {
        "generator": "sphinx-mllm toy world", "version": GENERATOR_VERSION, "seed": seed, "n": n,
        "max_things": max_things, "min_things": min_things, "colours": colours, "split": split,
        "held_out": is_held_out(seed),
        "pictures": dict(sorted(kinds.items())),
        "counts": {"instances": len(files.instances), "people": len(files.keypoints),
                   "layout_blocks": len(files.layout), "questions": len(files.questions),
                   "where_questions": len(files.where_questions),
                   "refs": len(files.refs), "ref_sentences": files.sent_id,
                   "captions_web": len(files.captions["web"]),
                   "captions_synthetic": len(files.captions["synthetic"])},
    }
    write_json(out / MANIFEST, manifest)
    return manifest


def write_where_questions(world: str | Path, out: str | Path) -> int:
    """Write to ``out`` the VQAv2 files of :func:`~.language.where_questions` ("Where is the
    circle?" -> ``top left``) about the pictures of ``world``, drawn again from its manifest: what
    :func:`generate_world` writes to ``world/where``, for a world written before it did (the
    images stay in ``world``: a mixture's ``root``). Returns how many questions."""
    manifest = read_manifest(world)
    questions: list[dict] = []
    answers: list[dict] = []
    for index in range(manifest["n"]):
        _add_questions(questions, answers, index + 1,
                       language.where_questions(world_picture(manifest, index)))
    _write_vqa(Path(out), manifest["split"], _where_info(manifest["seed"], manifest["split"]),
               questions, answers)
    return len(questions)


def world_picture(manifest: dict, index: int) -> Picture:
    """The ground truth of picture ``index`` (image id ``index + 1``) of the world whose manifest
    is ``manifest``, drawn again as :func:`generate_world` drew it."""
    return sample_picture(manifest["seed"], index, manifest.get("max_things", MAX_THINGS),
                          manifest.get("min_things", 1), manifest.get("colours"))


def _where_info(seed: int, split: str) -> dict:
    return {**_info(seed, split),
            "description": f"where questions about sphinx-mllm toy world {seed}, split {split}"}


def _write_text_corpus(path: Path, seed: int, lines: int) -> None:
    """Captions of pictures that are never rendered: language about the world without images."""
    with written(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for k in range(lines):
            picture = sample_picture(seed, TEXT_INDEX_OFFSET + k)
            rng = random.Random(f"text:{seed}:{k}")
            text = (language.synthetic_caption(picture) if rng.random() < 0.5
                    else language.web_caption(picture, rng))
            f.write(json.dumps({"id": k, "text": text}) + "\n")


def world_sources(world: str | Path) -> list[SourceConfig]:
    """Every source of a generated world as mixture entries (adapter format, root, split and
    image folder), in the order of the module docstring's table, except the where questions: the
    recipe's sources (its tokenizer reads them), which predate ``where/``."""
    world = Path(world)
    split = read_manifest(world)["split"]
    images = world / split

    def source(format: str, path: Path, split: str | None = None, root: Path | None = None,
               type: str = "image_text") -> SourceConfig:
        return SourceConfig(path, type, format, root, split)

    return [
        source("coco-instances", world, split),
        source("coco-keypoints", world, split),
        source("coco-captions", world, f"{split}_web", images),
        source("coco-captions", world, f"{split}_synthetic", images),
        source("vqav2", world, split),
        source("publaynet", world, split),
        source("refcoco", world / "refcoco", split, images),
        source("llava", world / f"conversations_{split}.json"),
        source("text", world / f"text_{split}.jsonl", type="text"),
    ]
