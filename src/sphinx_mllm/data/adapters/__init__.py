"""Dataset adapters: each reads one public dataset layout from a local directory and yields
:class:`~sphinx_mllm.data.sample.Sample` objects. Dispatch by format name through :data:`ADAPTERS`.

Every adapter has the signature ``(root, split, images, seed, skips) -> Iterator[Sample]``:
``root`` the dataset directory (or annotation file, for ``llava`` and ``text``), ``split`` the
split name (None: the adapter's default), ``images`` the image folder when the images are not
where the release puts them under ``root``, ``seed`` fixes the prompt drawn for each sample, and
``skips`` counts malformed records.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..sample import Sample, Skips
from .coco import read_captions, read_instances, read_keypoints, read_publaynet
from .conversations import read_llava, read_text
from .flickr30k import read_flickr30k
from .refcoco import read_refcoco
from .visual_genome import read_vg_regions
from .vqa import read_gqa, read_okvqa, read_textvqa, read_vqav2

Reader = Callable[[Path, str | None, Path | None, int, Skips], Iterator[Sample]]


@dataclass(frozen=True)
class Adapter:
    name: str
    read: Reader
    tasks: tuple[str, ...]


ADAPTERS: dict[str, Adapter] = {a.name: a for a in (
    Adapter("llava", read_llava, ("conversation", "dialogue")),
    Adapter("coco-captions", read_captions, ("short_caption",)),
    Adapter("coco-instances", read_instances, ("detection", "category_detection", "rec", "reg")),
    Adapter("coco-keypoints", read_keypoints, ("pose",)),
    Adapter("refcoco", read_refcoco, ("rec", "reg")),
    Adapter("vqav2", read_vqav2, ("vqa",)),
    Adapter("okvqa", read_okvqa, ("vqa",)),
    Adapter("gqa", read_gqa, ("vqa",)),
    Adapter("textvqa", read_textvqa, ("vqa",)),
    Adapter("flickr30k-entities", read_flickr30k, ("grounded_caption",)),
    Adapter("publaynet", read_publaynet, ("layout",)),
    Adapter("vg-regions", read_vg_regions, ("reg",)),
    Adapter("text", read_text, ("dialogue",)),
)}

FORMATS = tuple(ADAPTERS)


def read_samples(format: str, root: str | Path, *, split: str | None = None,
                 images: str | Path | None = None, seed: int = 0,
                 skips: Skips | None = None) -> Iterator[Sample]:
    """Samples of one local dataset in format ``format`` (a key of :data:`ADAPTERS`).

    Malformed records are counted in ``skips`` (pass one to read the counts afterwards) and
    logged; missing annotation files raise ``FileNotFoundError``.
    """
    if format not in ADAPTERS:
        raise KeyError(f"unknown data format {format!r}; known formats: {', '.join(FORMATS)}")
    return ADAPTERS[format].read(Path(root), split, Path(images) if images else None, seed,
                                 skips if skips is not None else Skips())
