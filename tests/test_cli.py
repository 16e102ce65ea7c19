import json
import resource

import pytest

from sphinx_mllm.cli import main
from sphinx_mllm.inference.pipeline import example_image_path


def test_info_sphinx_1k_on_meta(capsys):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    assert main(["info", "sphinx-1k", "--json"]) == 0
    peak_growth_gib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2**20
    info = json.loads(capsys.readouterr().out)
    assert info["image_tokens"] == 1455
    params = info["params"]
    assert abs(params["llm"] - 13.0e9) / 13.0e9 <= 0.005
    vision = sum(params["vision"].values())
    assert abs(vision - 3.4e9) / 3.4e9 < 0.02  # spec 6.6: 0.30 + 0.85 + 1.14 + 0.99 + 0.11 B
    assert set(params["vision"]) == {"clip", "convnext", "dinov2", "qformer"}
    assert params["total"] == params["llm"] + params["projector"] + vision
    assert peak_growth_gib < 1.0  # 30 GiB of bf16 weights were never allocated


def test_info_text_output(capsys):
    assert main(["info", "sphinx-tiny"]) == 0
    out = capsys.readouterr().out
    assert "259 visual tokens" in out and "vision: convnext" in out


def test_chat_end_to_end_on_a_toy_preset(capsys):
    code = main(["chat", "--model", "toy-1k", "--image", str(example_image_path()), "--json",
                 "--max-new-tokens", "5", "What's in the image?"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"answer", "tokens", "prompt_tokens", "finish_reason", "objects"}
    assert isinstance(out["objects"], list)
    assert 1 <= len(out["tokens"]) <= 5


def test_chat_stream_prints_text(capsys):
    assert main(["chat", "--model", "toy", "--stream", "--max-new-tokens", "4", "hello"]) == 0
    assert capsys.readouterr().out.endswith("\n")


@pytest.mark.parametrize("argv,message", [
    (["chat", "--model", "toy", "--image", "missing.png", "q"], "image not found"),
    (["chat", "--model", "no-such-model", "q"], "neither a preset"),
    (["info", "no-such-model"], "is not a preset"),
    (["chat", "--model", "toy", "--max-new-tokens", "5000", "q"], "exceeds max_seq_len"),
    (["train", "missing.yaml"], "missing.yaml"),
    (["toy", "eval", "--model", "toy", "--seed", "0", "--n", "1"], "is a training seed"),
    (["toy", "eval", "--model", "toy", "--seed", "1001", "--max-objects", "6"], "shapes per scene"),
])
def test_clear_errors(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)


def coco_captions(root):
    (root / "annotations").mkdir(parents=True)
    (root / "val2017").mkdir()
    from PIL import Image
    Image.new("RGB", (40, 30)).save(root / "val2017" / "000000000001.jpg")
    data = {"images": [{"id": 1, "file_name": "000000000001.jpg", "width": 40, "height": 30}],
            "annotations": [{"id": 10, "image_id": 1, "caption": "A small dark picture."},
                            {"id": 11, "image_id": 99, "caption": "no such image"}]}
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(data))


def test_data_convert_writes_jsonl(tmp_path, capsys):
    coco_captions(tmp_path / "coco")
    out = tmp_path / "out.jsonl"
    assert main(["data", "convert", "--format", "coco-captions", "--root", str(tmp_path / "coco"),
                 "--split", "val2017", "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 1
    assert records[0]["conversations"][1]["value"] == "A small dark picture."
    assert records[0]["image"].startswith("/") and records[0]["task"] == "short_caption"
    assert "wrote 1 conversations" in capsys.readouterr().out


def test_data_convert_rejects_unknown_format(tmp_path):
    with pytest.raises(SystemExit, match="unknown format"):
        main(["data", "convert", "--format", "nope", "--root", str(tmp_path), "--out", "x.jsonl"])


def test_data_stats_counts_visual_tokens(tmp_path, capsys):
    coco_captions(tmp_path / "coco")
    cfg = tmp_path / "mix.yaml"
    cfg.write_text("META:\n  - path: coco\n    format: coco-captions\n    split: val2017\n"
                   "    type: image_text\n")
    assert main(["data", "stats", str(cfg), "--preset", "sphinx-1k"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:7] == ["source", "type", "samples", "skipped", "weight", "draws",
                                    "p50"]
    row = table[1].split()
    assert row[2:6] == ["1", "1", "1", "100.0%"]
    assert int(row[6]) > 1455  # median length includes the 1455 visual tokens


def test_clear_errors_for_bad_files(tmp_path):
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("hello")
    with pytest.raises(SystemExit, match="not an image"):
        main(["chat", "--model", "toy", "--image", str(not_an_image), "q"])
    with pytest.raises(SystemExit, match="missing.yaml"):
        main(["data", "stats", str(tmp_path / "missing.yaml")])
    out = tmp_path / "out.jsonl"
    with pytest.raises(SystemExit, match="refs"):
        main(["data", "convert", "--format", "refcoco", "--root", str(tmp_path), "--out", str(out)])
    assert not out.exists() and not list(tmp_path.glob("*.tmp"))  # no partial output left
