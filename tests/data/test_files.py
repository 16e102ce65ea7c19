"""`data.files.written`: a file appears under its name only when its writer finished."""

import json

import pytest

from sphinx_mllm.data.convert import write_jsonl
from sphinx_mllm.data.files import write_json, written


def test_written_publishes_on_success_and_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "deep" / "out.json"
    write_json(path, {"a": 1})
    assert json.loads(path.read_text()) == {"a": 1}

    with pytest.raises(RuntimeError):
        with written(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("the writer failed")
    assert json.loads(path.read_text()) == {"a": 1}  # untouched
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.json"]  # no .tmp left


def test_write_jsonl_whose_writer_fails_leaves_no_file(tmp_path):
    class Broken:
        def to_json(self):
            raise ValueError("bad sample")

    out = tmp_path / "samples.jsonl"
    with pytest.raises(ValueError, match="bad sample"):
        write_jsonl([Broken()], out)
    assert list(tmp_path.iterdir()) == []
