"""Where the short-answer VQA datasets keep their files, in their released layouts.

One home for the file names that both the training adapters (``data/adapters/vqa.py``) and the
benchmarks (``eval/benchmarks/vqa.py``) read: VQAv2, OK-VQA, GQA and TextVQA. Only paths here;
each side reads the records its own way (a training sample keeps the consensus answer, a
benchmark item all ten).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


def first_existing(*paths: Path) -> Path:
    """The first of ``paths`` that exists, else the first (so the error names the release layout)."""
    for path in paths:
        if path.exists():
            return path
    return paths[0]


@dataclass(frozen=True)
class MscocoVQA:
    """A COCO-based VQA split: questions JSON, annotations JSON, the COCO image folder."""

    questions: Path
    annotations: Path
    images: Path
    split: str

    def image(self, image_id: object) -> Path:
        return self.images / f"COCO_{self.split}_{int(image_id):012d}.jpg"


def vqav2(root: Path, split: str, images: Path | None = None) -> MscocoVQA:
    """``v2_OpenEnded_mscoco_{split}_questions.json`` + ``v2_mscoco_{split}_annotations.json``;
    images ``COCO_{split}_{id:012d}.jpg`` in ``images`` (default ``ROOT/{split}``)."""
    return MscocoVQA(root / f"v2_OpenEnded_mscoco_{split}_questions.json",
                     root / f"v2_mscoco_{split}_annotations.json", images or root / split, split)


def okvqa(root: Path, split: str, images: Path | None = None) -> MscocoVQA:
    """``OpenEnded_mscoco_{split}_questions.json`` + ``mscoco_{split}_annotations.json``; images
    as VQAv2's."""
    return MscocoVQA(root / f"OpenEnded_mscoco_{split}_questions.json",
                     root / f"mscoco_{split}_annotations.json", images or root / split, split)


def gqa(root: Path, split: str, images: Path | None = None) -> tuple[Path, Path]:
    """(questions file, image folder): ``{split}_questions.json`` in ``ROOT`` or
    ``ROOT/questions1.2``; images ``{imageId}.jpg`` in ``images`` (default ``ROOT/images``)."""
    name = f"{split}_questions.json"
    return first_existing(root / name, root / "questions1.2" / name), images or root / "images"


def textvqa(root: Path, split: str, images: Path | None = None) -> tuple[Path, Path]:
    """(annotations file, image folder): ``TextVQA_*_{split}.json`` (the newest version present,
    else ``TextVQA_0.5.1_{split}.json``); images ``{image_id}.jpg`` in ``images`` (default
    ``ROOT/train_images``, which train and val share, or ``ROOT/test_images`` for test)."""
    def version(path: Path) -> tuple[int, ...]:  # "TextVQA_0.5.1_val.json" -> (0, 5, 1)
        text = path.name[len("TextVQA_"):-len(f"_{split}.json")]
        return tuple(int(p) for p in text.split(".") if p.isdigit())

    candidates = sorted(root.glob(f"TextVQA_*_{split}.json"), key=version)
    file = candidates[-1] if candidates else root / f"TextVQA_0.5.1_{split}.json"
    return file, images or root / ("test_images" if split == "test" else "train_images")
