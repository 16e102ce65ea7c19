"""Visual Genome region descriptions (REG): ``ROOT/region_descriptions.json``, a list of
``{"id": image id, "regions": [{"region_id", "x", "y", "width", "height", "phrase", ...}]}``.

Image sizes come from ``ROOT/image_data.json`` when present, else from the image file header.
Images ``{image_id}.jpg`` are looked up in ``images`` or, by default, ``ROOT/VG_100K`` then
``ROOT/VG_100K_2`` (the release splits them in two folders).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from ...tasks import Box, ImageFrame, Region, make_turn, sample_rng
from ..files import read_json, require
from ..sample import Malformed, Sample, Skips, image_frame, messages_from_pairs, text


def _sizes(root: Path) -> dict[int, tuple[int, int]]:
    file = root / "image_data.json"
    if not file.is_file():
        return {}
    return {e.get("image_id", e.get("id")): (e.get("width"), e.get("height"))
            for e in read_json(file) if isinstance(e, dict)}


def _image_path(image_id: int, folders: list[Path]) -> Path:
    for folder in folders:
        if (folder / f"{image_id}.jpg").is_file():
            return folder / f"{image_id}.jpg"
    return folders[0] / f"{image_id}.jpg"


def _region_sample(region: dict, image: Path, frame: ImageFrame, file: Path, seed: int) -> Sample:
    pixels = Box.from_xywh(*(float(region[k]) for k in ("x", "y", "width", "height")))
    if pixels.width <= 0 or pixels.height <= 0:
        raise Malformed("empty region")
    source = f"vg-regions:{file.name}:{region['region_id']}"
    example = Region(text(region["phrase"], "phrase"), (frame.box_to_square(pixels),))
    pair = make_turn("reg", example, sample_rng(seed, source))
    return Sample(image, messages_from_pairs([pair]), "reg", source)


def read_vg_regions(root: Path, split: str | None, images: Path | None, seed: int,
                    skips: Skips) -> Iterator[Sample]:
    """One ``reg`` sample per region with a non-empty box and phrase."""
    file = require(root / "region_descriptions.json", "Visual Genome region descriptions")
    sizes = _sizes(root)
    folders = [images] if images else [root / "VG_100K", root / "VG_100K_2"]
    for entry in read_json(file):
        image_id = entry.get("id", entry.get("image_id")) if isinstance(entry, dict) else None
        image = _image_path(image_id, folders)
        frames = skips.guard(file, f"image {image_id}",
                             lambda: [image_frame(*sizes.get(image_id, (None, None)), image)])
        if not frames:
            continue
        for region in entry.get("regions", []):
            key = f"region {region.get('region_id') if isinstance(region, dict) else region!r}"
            yield from skips.guard(file, key,
                                   lambda: [_region_sample(region, image, frames[0], file, seed)])
