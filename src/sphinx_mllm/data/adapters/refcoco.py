"""RefCOCO / RefCOCO+ / RefCOCOg: ``ROOT/refs(unc).p`` (or ``refs(umd).p``, ``refs(google).p``)
and ``ROOT/instances.json``, as the ``refer`` toolkit's downloads unpack; images are COCO
train2014 (``--images``, default ``ROOT/images``).

Each ref names one COCO annotation (``ann_id``) and several referring sentences. Every sentence
becomes a REC sample; each ref also becomes one REG sample, its answer one of the sentences drawn
with the sample's RNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...tasks import Region, make_turn, sample_rng
from ..files import read_json, read_plain_pickle, require
from ..sample import Malformed, Sample, Skips, iter_guarded, messages_from_pairs, text
from .coco import CocoImage, as_object, read_images, pixel_box

# refcocog ships two partitions; umd's is the one with a test split and what SPHINX evaluates on.
REFS_PREFERENCE = ("refs(umd).p", "refs(unc).p", "refs(google).p")


def refs_file(root: Path) -> Path:
    """The refs pickle in ``root``: by :data:`REFS_PREFERENCE`, then any other ``refs(*).p``."""
    for name in REFS_PREFERENCE:
        if (root / name).is_file():
            return root / name
    others = sorted(root.glob("refs(*).p"))
    if not others:
        raise FileNotFoundError(f"no refs(*).p file in {root}")
    return others[0]


def read_refcoco(root: Path, split: str | None, images: Path | None, seed: int,
                 skips: Skips) -> Iterator[Sample]:
    """Refs of ``split`` (default ``train``; also val, test, testA, testB as the refs file has)."""
    split = split or "train"
    pickle_file = refs_file(root)
    instances_file = require(root / "instances.json", "RefCOCO instances.json")
    data = as_object(read_json(instances_file), instances_file)
    by_id = read_images(data, instances_file, images or root / "images", skips)
    boxes = {a["id"]: a.get("bbox") for a in data.get("annotations", []) if isinstance(a, dict)}
    refs = read_plain_pickle(pickle_file)
    if not isinstance(refs, list):
        raise ValueError(f"{pickle_file}: expected a list of refs, got {type(refs).__name__}")
    # root's folder name tells RefCOCO, RefCOCO+ and RefCOCOg apart in source ids
    prefix = f"refcoco:{root.name}/{pickle_file.name}"

    def convert(key: str, ref: dict) -> list[Sample]:
        if ref["split"] != split:
            return []
        image: CocoImage | None = by_id.get(ref["image_id"])
        if image is None:
            raise Malformed(f"unknown or skipped image_id {ref['image_id']!r}")
        if ref["ann_id"] not in boxes:
            raise Malformed(f"ann_id {ref['ann_id']!r} not in instances.json")
        box = image.frame.box_to_square(pixel_box(boxes[ref["ann_id"]]))
        sentences = [text(s["sent"], "sentence") for s in ref["sentences"]]
        if not sentences:
            raise Malformed("ref has no sentences")
        source = f"{prefix}:{ref['ref_id']}"
        rng = sample_rng(seed, source)
        out = [Sample(image.path, messages_from_pairs([make_turn("rec", Region(s, (box,)), rng)]),
                      "rec", f"{source}:rec{i}") for i, s in enumerate(sentences)]
        reg = make_turn("reg", Region(rng.choice(sentences), (box,)), rng)
        out.append(Sample(image.path, messages_from_pairs([reg]), "reg", f"{source}:reg"))
        return out

    items = ((f"ref {r.get('ref_id') if isinstance(r, dict) else r!r}", r) for r in refs)
    yield from iter_guarded(pickle_file, items, skips, convert)
