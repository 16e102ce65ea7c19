"""COCO-format annotation files: captions, instances (detection, REC, REG), person keypoints, and
PubLayNet (COCO-format document layout).

Layout (as the public releases ship): ``ROOT/annotations/{captions,instances,person_keypoints}_
{split}.json`` with images in ``ROOT/{split}/``; PubLayNet: ``ROOT/{split}.json`` with images in
``ROOT/{split}/``. Boxes are COCO ``[x, y, w, h]`` pixels, converted to the padded square using the
``width``/``height`` of the file's ``images`` entry. Crowd annotations (``iscrowd``) are ignored:
they mark groups, not objects.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ...tasks import (COCO_KEYPOINTS, Box, Caption, Detection, Detections, ImageFrame, Keypoints,
                      Point, Pose, Region, make_turn, sample_rng)
from ..files import read_json, require
from ..sample import Malformed, Sample, Skips, image_frame, iter_guarded, messages_from_pairs, text


@dataclass(frozen=True)
class CocoImage:
    path: Path
    frame: ImageFrame


@dataclass(frozen=True)
class CocoObject:
    """One non-crowd annotation: its category name and its box in the padded square."""

    label: str
    box: Box


def as_object(data: object, file: Path) -> dict:
    if not isinstance(data, dict):
        raise ValueError(f"{file}: expected a COCO JSON object, got {type(data).__name__}")
    return data


def read_images(data: dict, file: Path, folder: Path, skips: Skips) -> dict[int, CocoImage]:
    """image id -> path and frame; entries without a usable file name or size are skipped."""
    def convert(key: str, entry: dict) -> list[tuple[int, CocoImage]]:
        path = folder / text(entry["file_name"], "file_name")
        frame = image_frame(entry.get("width"), entry.get("height"), path)
        return [(entry["id"], CocoImage(path, frame))]

    out = {}
    for entry in data.get("images", []):
        key = f"image {entry.get('id') if isinstance(entry, dict) else entry!r}"
        out.update(skips.guard(file, key, lambda: convert(key, entry)))
    return out


def pixel_box(bbox: object) -> Box:
    if not isinstance(bbox, list) or len(bbox) != 4:
        raise Malformed(f"bbox must be [x, y, w, h], got {bbox!r}")
    box = Box.from_xywh(*(float(v) for v in bbox))
    if box.width <= 0 or box.height <= 0:
        raise Malformed(f"empty bbox {bbox!r}")
    return box


def _objects(data: dict, file: Path, images: dict[int, CocoImage],
             skips: Skips) -> dict[int, list[CocoObject]]:
    """image id -> its non-crowd objects, in annotation order."""
    names = {c["id"]: c["name"] for c in data.get("categories", [])}
    by_image: dict[int, list[CocoObject]] = defaultdict(list)

    def convert(key: str, ann: dict) -> list[tuple[int, CocoObject]]:
        if ann.get("iscrowd"):
            return []
        image = images.get(ann["image_id"])
        if image is None:
            raise Malformed(f"unknown or skipped image_id {ann['image_id']!r}")
        if ann["category_id"] not in names:
            raise Malformed(f"unknown category_id {ann['category_id']!r}")
        box = image.frame.box_to_square(pixel_box(ann["bbox"]))
        return [(ann["image_id"], CocoObject(names[ann["category_id"]], box))]

    for ann in data.get("annotations", []):
        key = f"annotation {ann.get('id') if isinstance(ann, dict) else ann!r}"
        for image_id, obj in skips.guard(file, key, lambda: convert(key, ann)):
            by_image[image_id].append(obj)
    return by_image


def group_detections(objects: list[CocoObject]) -> tuple[Detection, ...]:
    """One detection per label; boxes in raster order (top to bottom, then left to right) and
    labels in the raster order of their first box (our choice of a stable, learnable order)."""
    ordered = sorted(objects, key=lambda o: (o.box.y1, o.box.x1))
    boxes: dict[str, list[Box]] = {}
    for obj in ordered:
        boxes.setdefault(obj.label, []).append(obj.box)
    return tuple(Detection(label, tuple(b)) for label, b in boxes.items())


def _load(file: Path, folder: Path, skips: Skips) -> tuple[dict, dict[int, CocoImage]]:
    data = as_object(read_json(require(file, "COCO annotation file")), file)
    return data, read_images(data, file, folder, skips)


def _sample(image: CocoImage, pairs: list[tuple[str, str]], task: str, source: str) -> Sample:
    return Sample(image.path, messages_from_pairs(pairs), task, source)


def read_captions(root: Path, split: str | None, images: Path | None, seed: int,
                  skips: Skips) -> Iterator[Sample]:
    """``annotations/captions_{split}.json``: one ``short_caption`` sample per caption."""
    split = split or "train2017"
    file = root / "annotations" / f"captions_{split}.json"
    data, by_id = _load(file, images or root / split, skips)

    def convert(key: str, ann: dict) -> list[Sample]:
        image = by_id.get(ann["image_id"])
        if image is None:
            raise Malformed(f"unknown or skipped image_id {ann['image_id']!r}")
        source = f"coco-captions:{file.name}:{ann['id']}"
        pair = make_turn("short_caption", Caption(text(ann["caption"], "caption")),
                         sample_rng(seed, source))
        return [_sample(image, [pair], "short_caption", source)]

    items = ((f"annotation {a.get('id') if isinstance(a, dict) else a!r}", a)
             for a in data.get("annotations", []))
    yield from iter_guarded(file, items, skips, convert)


def _instance_samples(image: CocoImage, objects: list[CocoObject], source: str,
                      seed: int) -> Iterator[Sample]:
    """Detection of all objects; detection of one category (drawn with the sample's RNG); and REC
    plus REG for every object that is the only one of its category in the image, so that the
    category name refers to it unambiguously."""
    rng = sample_rng(seed, source)
    detections = group_detections(objects)
    yield _sample(image, [make_turn("detection", Detections(detections), rng)], "detection",
                  f"{source}:all")
    chosen = rng.choice(detections)
    yield _sample(image, [make_turn("category_detection", Detections((chosen,), chosen.label), rng)],
                  "category_detection", f"{source}:{chosen.label}")
    counts = Counter(o.label for o in objects)
    for index, obj in enumerate(objects):
        if counts[obj.label] == 1:
            region = Region(obj.label, (obj.box,))
            for task in ("rec", "reg"):
                yield _sample(image, [make_turn(task, region, rng)], task, f"{source}:{task}{index}")


def read_instances(root: Path, split: str | None, images: Path | None, seed: int,
                   skips: Skips) -> Iterator[Sample]:
    """``annotations/instances_{split}.json``: per image with objects, see :func:`_instance_samples`."""
    split = split or "train2017"
    file = root / "annotations" / f"instances_{split}.json"
    data, by_id = _load(file, images or root / split, skips)
    for image_id, objects in sorted(_objects(data, file, by_id, skips).items()):
        yield from _instance_samples(by_id[image_id], objects,
                                     f"coco-instances:{file.name}:{image_id}", seed)


def _keypoints(flat: object, names: tuple[str, ...], frame: ImageFrame) -> Keypoints:
    """COCO ``[x1, y1, v1, ...]`` pixels -> named points in the padded square; ``v == 0`` (not
    labelled) points are left out, ``v == 1`` (labelled, occluded) kept."""
    if not isinstance(flat, list) or len(flat) != 3 * len(names):
        raise Malformed(f"keypoints must hold {3 * len(names)} numbers")
    points = []
    for name, (x, y, v) in zip(names, zip(flat[0::3], flat[1::3], flat[2::3])):
        if v > 0:
            points.append((name, frame.point_to_square(Point(float(x), float(y)))))
    return Keypoints(tuple(points))


def read_keypoints(root: Path, split: str | None, images: Path | None, seed: int,
                   skips: Skips) -> Iterator[Sample]:
    """``annotations/person_keypoints_{split}.json``: one ``pose`` sample per non-crowd person
    with at least one labelled keypoint."""
    split = split or "train2017"
    file = root / "annotations" / f"person_keypoints_{split}.json"
    data, by_id = _load(file, images or root / split, skips)
    categories = data.get("categories") or [{}]
    names = tuple(n.replace("_", " ") for n in categories[0].get("keypoints", COCO_KEYPOINTS))

    def convert(key: str, ann: dict) -> list[Sample]:
        image = by_id.get(ann["image_id"])
        if image is None:
            raise Malformed(f"unknown or skipped image_id {ann['image_id']!r}")
        keypoints = _keypoints(ann["keypoints"], names, image.frame)
        if ann.get("iscrowd") or not keypoints.points:
            return []
        person = image.frame.box_to_square(pixel_box(ann["bbox"]))
        source = f"coco-keypoints:{file.name}:{ann['id']}"
        pair = make_turn("pose", Pose(person, keypoints), sample_rng(seed, source))
        return [_sample(image, [pair], "pose", source)]

    items = ((f"annotation {a.get('id') if isinstance(a, dict) else a!r}", a)
             for a in data.get("annotations", []))
    yield from iter_guarded(file, items, skips, convert)


def read_publaynet(root: Path, split: str | None, images: Path | None, seed: int,
                   skips: Skips) -> Iterator[Sample]:
    """PubLayNet ``{split}.json`` (categories text, title, list, table, figure): one ``layout``
    sample per page with at least one element."""
    split = split or "train"
    file = root / f"{split}.json"
    data, by_id = _load(file, images or root / split, skips)
    for image_id, objects in sorted(_objects(data, file, by_id, skips).items()):
        source = f"publaynet:{file.name}:{image_id}"
        pair = make_turn("layout", Detections(group_detections(objects)), sample_rng(seed, source))
        yield _sample(by_id[image_id], [pair], "layout", source)
