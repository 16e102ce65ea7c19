"""The released file layouts that training adapters and benchmarks share (data/layouts.py)."""

from pathlib import Path

from sphinx_mllm.data import layouts


def test_vqav2_and_okvqa_name_the_released_files(tmp_path: Path):
    v2 = layouts.vqav2(tmp_path, "val2014")
    assert v2.questions == tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json"
    assert v2.annotations == tmp_path / "v2_mscoco_val2014_annotations.json"
    assert v2.image(42) == tmp_path / "val2014" / "COCO_val2014_000000000042.jpg"
    ok = layouts.okvqa(tmp_path, "val2014", images=tmp_path / "coco")
    assert ok.questions.name == "OpenEnded_mscoco_val2014_questions.json"
    assert ok.image("7") == tmp_path / "coco" / "COCO_val2014_000000000007.jpg"


def test_gqa_finds_the_questions_in_either_folder(tmp_path: Path):
    file, images = layouts.gqa(tmp_path, "testdev_balanced")
    assert file == tmp_path / "testdev_balanced_questions.json"  # absent: the release's name
    assert images == tmp_path / "images"
    (tmp_path / "questions1.2").mkdir()
    (tmp_path / "questions1.2" / "testdev_balanced_questions.json").write_text("{}")
    assert layouts.gqa(tmp_path, "testdev_balanced")[0].parent.name == "questions1.2"


def test_textvqa_takes_the_newest_version_and_the_split_s_images(tmp_path: Path):
    assert layouts.textvqa(tmp_path, "val") == (tmp_path / "TextVQA_0.5.1_val.json",
                                                tmp_path / "train_images")
    for version in ("0.5", "0.5.1"):
        (tmp_path / f"TextVQA_{version}_val.json").write_text("{}")
    assert layouts.textvqa(tmp_path, "val")[0].name == "TextVQA_0.5.1_val.json"
    assert layouts.textvqa(tmp_path, "test")[1] == tmp_path / "test_images"
