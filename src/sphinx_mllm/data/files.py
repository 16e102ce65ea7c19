"""Annotation files: reading JSON, JSONL and pickles restricted to plain builtin data; writing files
that appear under their names only when complete."""

from __future__ import annotations

import json
import pickle
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .sample import Skips


def require(path: Path, what: str) -> Path:
    """``path`` if it is a file; a missing annotation file is a setup error, not a bad record."""
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def read_json(path: Path) -> object:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@contextmanager
def written(path: Path) -> Iterator[Path]:
    """The path to write ``path``'s contents to: ``PATH.tmp`` beside it (parents made), renamed
    to ``path`` when the block ends and removed when it raises, so the file appears under its
    name only when complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)


def write_json(path: Path, data: object) -> None:
    """Compact JSON at ``path``, appearing only when complete (:func:`written`)."""
    with written(path) as tmp:
        tmp.write_text(json.dumps(data, separators=(",", ":")))


def read_jsonl(path: Path, skips: Skips) -> Iterator[tuple[str, object]]:
    """(``"line N"``, record) for every parseable line; bad lines are skipped and counted."""
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                yield f"line {number}", json.loads(line)
            except json.JSONDecodeError as err:
                skips.skip(path, f"line {number}", f"invalid JSON: {err}")


def read_records(path: Path, skips: Skips) -> Iterator[tuple[str, object]]:
    """Records of a ``.jsonl`` file (one per line) or a ``.json`` file holding a list."""
    if path.suffix == ".jsonl":
        yield from read_jsonl(path, skips)
        return
    data = read_json(path)
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of records, got {type(data).__name__}")
    for index, record in enumerate(data):
        yield f"#{index}", record


_SAFE_BUILTINS = frozenset({"dict", "list", "tuple", "set", "frozenset", "str", "bytes",
                            "bytearray", "int", "float", "complex", "bool"})


class _PlainDataUnpickler(pickle.Unpickler):
    """Refuses every global except plain builtin containers and scalars, so loading a pickle can
    never run code: RefCOCO's refs files hold only lists, dicts, strings and numbers."""

    def find_class(self, module: str, name: str) -> type:
        if module in ("builtins", "__builtin__") and name in _SAFE_BUILTINS:
            return getattr(__import__("builtins"), name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only plain data is allowed")


def read_plain_pickle(path: Path) -> object:
    """Load a pickle of plain data; Python 2 ``str`` objects (the public refs files) decode as UTF-8."""
    with open(path, "rb") as f:
        return _PlainDataUnpickler(f, encoding="utf-8", errors="replace").load()
