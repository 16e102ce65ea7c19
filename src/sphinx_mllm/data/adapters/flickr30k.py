"""Flickr30k Entities grounded captions: ``ROOT/Sentences/{id}.txt`` (five sentences with
``[/EN#18/people A child]`` entity markup) and ``ROOT/Annotations/{id}.xml`` (Pascal-VOC-style
``<object>`` entries whose ``<name>`` is the entity id); images ``{id}.jpg`` in ``images``
(default ``ROOT/flickr30k-images``); optional split lists ``ROOT/{split}.txt`` of image ids.

Each sentence becomes one ``grounded_caption`` sample; phrases whose entity has boxes are written
``<p>phrase</p> [boxes]``, the others stay plain text. XML pixel coordinates are used as given.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Iterator

from ...tasks import Box, Detection, GroundedCaption, ImageFrame, make_turn, sample_rng
from ..sample import Malformed, Sample, Skips, messages_from_pairs

# Flickr30k Entities' own sentence markup (not box text): [/EN#<entity id>/<types> <phrase>]
_ENTITY = re.compile(r"\[/EN#(\d+)/\S+ ([^\]]*)\]")


def read_boxes(xml_file: Path) -> tuple[ImageFrame, dict[str, list[Box]]]:
    """Image frame and entity id -> boxes (padded square) from one Annotations XML file."""
    try:
        tree = ET.parse(xml_file).getroot()
    except ET.ParseError as err:
        raise Malformed(f"invalid XML: {err}") from err
    size = tree.find("size")
    frame = ImageFrame(int(size.findtext("width")), int(size.findtext("height")))
    boxes: dict[str, list[Box]] = {}
    for obj in tree.iter("object"):
        bndbox = obj.find("bndbox")
        if bndbox is None:  # <nobndbox> / <scene> entities have no region
            continue
        pixels = Box(*(float(bndbox.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")))
        for name in obj.iter("name"):
            boxes.setdefault(name.text.strip(), []).append(frame.box_to_square(pixels))
    return frame, boxes


def parse_sentence(line: str, boxes: dict[str, list[Box]]) -> GroundedCaption:
    """Entity markup -> caption parts: plain strings and grounded :class:`Detection` phrases."""
    parts: list[str | Detection] = []
    last = 0
    for match in _ENTITY.finditer(line):
        parts.append(line[last:match.start()])
        entity, phrase = match.groups()
        if entity in boxes:
            parts.append(Detection(phrase, tuple(boxes[entity])))
        else:
            parts.append(phrase)
        last = match.end()
    parts.append(line[last:])
    if "[/EN#" in "".join(p for p in parts if isinstance(p, str)):
        raise Malformed("unbalanced entity markup")
    return GroundedCaption(tuple(p for p in parts if p != ""))


def _split_ids(root: Path, split: str | None) -> list[str]:
    if split is None:
        return sorted(p.stem for p in (root / "Sentences").glob("*.txt"))
    ids_file = root / f"{split}.txt"
    if not ids_file.is_file():
        raise FileNotFoundError(f"Flickr30k Entities split list not found: {ids_file}")
    return [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]


def read_flickr30k(root: Path, split: str | None, images: Path | None, seed: int,
                   skips: Skips) -> Iterator[Sample]:
    """All images (``split=None``) or those listed in ``ROOT/{split}.txt``."""
    folder = images or root / "flickr30k-images"
    for image_id in _split_ids(root, split):
        sentences_file = root / "Sentences" / f"{image_id}.txt"
        xml_file = root / "Annotations" / f"{image_id}.xml"
        loaded = skips.guard(xml_file, f"image {image_id}", lambda: [read_boxes(xml_file)])
        if not loaded:
            continue
        _, boxes = loaded[0]

        def convert(index: int, line: str) -> list[Sample]:
            source = f"flickr30k-entities:{sentences_file.name}:{index}"
            pair = make_turn("grounded_caption", parse_sentence(line.strip(), boxes),
                             sample_rng(seed, source))
            return [Sample(folder / f"{image_id}.jpg", messages_from_pairs([pair]),
                           "grounded_caption", source)]

        lines = skips.guard(sentences_file, f"image {image_id}",
                            lambda: sentences_file.read_text(encoding="utf-8").splitlines())
        for index, line in enumerate(lines):
            if line.strip():
                yield from skips.guard(sentences_file, f"line {index + 1}",
                                       lambda: convert(index, line))
