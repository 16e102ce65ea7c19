"""The world's ground truth and pixels: coverage of the vocabulary, determinism, prefixes, seeds,
and the high-resolution detail that only the sub-image views resolve."""

import hashlib
import json
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from sphinx_mllm import cli
from sphinx_mllm.toy import check_training_seed, check_training_world, generate_world
from sphinx_mllm.toy.render import render
from sphinx_mllm.toy.seeds import HELD_OUT_START, check_held_out_seed, split_for
from sphinx_mllm.toy.world import (ARMS, COLOURS, LAYOUT_CATEGORIES, PATTERNS, SHAPES, SIZES,
                                   Picture, Thing, sample_picture)
from sphinx_mllm.tasks import Box


def _digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_vocabulary_is_covered():
    pictures = [sample_picture(0, i) for i in range(400)]
    things = [t for p in pictures for t in p.things]
    assert {t.shape for t in things} == set(SHAPES) and len(SHAPES) >= 3
    assert {t.colour for t in things} == set(COLOURS) and len(COLOURS) == 6
    assert {t.size for t in things} == set(SIZES) and len(SIZES) == 2
    assert {t.pattern for t in things} == set(PATTERNS)
    scenes = [p for p in pictures if p.kind == "scene"]
    assert {len(p.things) for p in scenes} == {1, 2, 3, 4, 5}
    assert {p.background for p in scenes} == {"flat", "textured"}
    assert {b.category for p in pictures for b in p.blocks} == set(LAYOUT_CATEGORIES)
    people = [p for p in pictures if p.kind == "people"]
    assert {len(p.people) for p in people} == {1, 2}
    assert {person.arms for p in people for person in p.people} == set(ARMS)
    assert all(len(person.keypoints) == 17 for p in people for person in p.people)


def test_curriculum_worlds_cap_the_shapes():
    counts = {len(sample_picture(0, i, max_things=1).things) for i in range(100)}
    assert counts == {0, 1}  # 0: pages and people
    with pytest.raises(ValueError):
        sample_picture(0, 0, max_things=6)


def test_two_shape_worlds_hold_exactly_two_and_the_default_world_is_unchanged(tmp_path):
    # shapes per picture of world 0, drawn by the generator before min_things existed
    assert [len(sample_picture(0, i).things) for i in range(12)] == \
        [1, 4, 0, 0, 0, 0, 5, 4, 5, 2, 2, 0]
    assert [len(sample_picture(0, i, max_things=2).things) for i in range(12)] == \
        [1, 2, 0, 0, 0, 0, 1, 2, 1, 1, 1, 0]
    # and the whole ground truth of its first 200 pictures, hashed from that generator's output
    for max_things, digest in ((5, "79eec18be30907f6"), (2, "e030be6940fe4cc5")):
        truth = repr([sample_picture(0, i, max_things) for i in range(200)]).encode()
        assert hashlib.sha256(truth).hexdigest()[:16] == digest
    scenes = [sample_picture(0, i, 2, min_things=2) for i in range(100)]
    assert {len(p.things) for p in scenes if p.kind == "scene"} == {2}
    for bad in ({"min_things": 0}, {"min_things": 3, "max_things": 2}, {"max_things": 6}):
        with pytest.raises(ValueError, match="shapes per scene"):
            sample_picture(0, 0, **bad)
        with pytest.raises(ValueError, match="shapes per scene"):
            generate_world(7, 2, tmp_path / "refused", **bad)
    assert not (tmp_path / "refused").exists()  # refused before anything is written
    manifest = generate_world(7, 8, tmp_path / "two", min_things=2, max_things=2)
    assert (manifest["min_things"], manifest["max_things"]) == (2, 2)
    instances = json.loads((tmp_path / "two" / "refcoco" / "instances.json").read_text())
    per_image = Counter(a["image_id"] for a in instances["annotations"])
    assert len(instances["images"]) > 0 and set(per_image.values()) == {2}
    assert len(per_image) == len(instances["images"])


def test_one_colour_worlds_share_the_colour_within_a_scene_and_the_default_is_unchanged(tmp_path):
    scenes = [p for p in (sample_picture(0, i, colours=1) for i in range(200)) if p.kind == "scene"]
    assert all(len({t.colour for t in p.things}) == 1 for p in scenes)
    assert {t.colour for p in scenes for t in p.things} == set(COLOURS)  # drawn per scene
    assert max(len({t.shape for t in p.things}) for p in scenes) == len(SHAPES)
    pairs = [p for p in (sample_picture(0, i, 5, 3, colours=2) for i in range(200))
             if p.kind == "scene"]
    assert {len({t.colour for t in p.things}) for p in pairs} == {1, 2}
    # colours=None draws exactly what the generator drew before the option existed
    truth = repr([sample_picture(0, i, colours=None) for i in range(200)]).encode()
    assert hashlib.sha256(truth).hexdigest()[:16] == "79eec18be30907f6"
    for bad in (0, 7):
        with pytest.raises(ValueError, match="colours per scene: need 1 <= colours <= 6"):
            generate_world(7, 2, tmp_path / "refused", colours=bad)
    assert not (tmp_path / "refused").exists()
    manifest = generate_world(7, 8, tmp_path / "one", min_things=2, max_things=2, colours=1)
    assert manifest["colours"] == 1
    instances = json.loads((tmp_path / "one" / "refcoco" / "instances.json").read_text())
    names = {c["id"]: c["name"] for c in instances["categories"]}
    colours_of = {}
    for a in instances["annotations"]:
        colours_of.setdefault(a["image_id"], set()).add(names[a["category_id"]].split()[0])
    assert colours_of and all(len(c) == 1 for c in colours_of.values())


def test_generate_cli_takes_the_range_of_shapes(tmp_path, capsys):
    assert cli.main(["toy", "generate", "--seed", "7", "--n", "6", "--min-objects", "2",
                     "--max-objects", "2", "--out", str(tmp_path / "w")]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert (manifest["min_things"], manifest["max_things"], manifest["n"]) == (2, 2, 6)
    assert manifest["colours"] is None
    assert cli.main(["toy", "generate", "--seed", "7", "--n", "2", "--colours", "1",
                     "--out", str(tmp_path / "c")]) == 0
    assert json.loads(capsys.readouterr().out)["colours"] == 1
    with pytest.raises(SystemExit, match="need 1 <= min <= max <= 5, got min 3, max 2"):
        cli.main(["toy", "generate", "--seed", "7", "--n", "2", "--min-objects", "3",
                  "--max-objects", "2", "--out", str(tmp_path / "x")])


def test_objects_do_not_overlap_and_stay_inside():
    for i in range(200):
        p = sample_picture(3, i)
        boxes = [t.box for t in p.things] + [b.box for b in p.blocks] + [q.box for q in p.people]
        for k, a in enumerate(boxes):
            assert 0 <= a.x1 < a.x2 <= p.width and 0 <= a.y1 < a.y2 <= p.height
            assert all(a.iou(b) == 0 for b in boxes[k + 1:])


def test_same_seed_same_files_and_prefix(tmp_path):
    generate_world(7, 16, tmp_path / "a")
    generate_world(7, 16, tmp_path / "b")
    generate_world(7, 8, tmp_path / "short")
    generate_world(8, 16, tmp_path / "other")
    a = _digest(tmp_path / "a")
    assert a == _digest(tmp_path / "b")
    images = {k: v for k, v in a.items() if k.startswith("train/")}
    assert images != {k: v for k, v in _digest(tmp_path / "other").items() if k.startswith("train/")}
    # picture i does not depend on n: the short world's images are the first 8 of the long one
    short = {k: v for k, v in _digest(tmp_path / "short").items() if k.startswith("train/")}
    assert len(short) == 8 and all(images[k] == v for k, v in short.items())
    long = json.loads((tmp_path / "a" / "annotations" / "instances_train.json").read_text())
    cut = json.loads((tmp_path / "short" / "annotations" / "instances_train.json").read_text())
    assert cut["annotations"] == [a for a in long["annotations"] if a["image_id"] <= 8]


def test_held_out_seeds_are_refused_for_training(tmp_path):
    assert split_for(0) == "train" and split_for(HELD_OUT_START) == "val"
    assert check_training_seed(HELD_OUT_START - 1) == HELD_OUT_START - 1
    with pytest.raises(ValueError, match="reserved for evaluation"):
        check_training_seed(HELD_OUT_START)
    with pytest.raises(ValueError, match="training seed"):
        check_held_out_seed(5)
    manifest = generate_world(HELD_OUT_START + 3, 4, tmp_path / "val")
    assert manifest["split"] == "val" and manifest["held_out"]
    assert (tmp_path / "val" / "annotations" / "instances_val.json").is_file()
    with pytest.raises(ValueError, match="reserved for evaluation"):
        check_training_world(tmp_path / "val")


def _half(x: np.ndarray) -> np.ndarray:
    """The global view's resize: bicubic without antialias, as the model resizes views."""
    t = torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None]
    h = x.shape[0] // 2
    return F.interpolate(t, size=(h, h), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()


def test_pattern_needs_full_resolution():
    """Striped and checked shapes differ in every pixel at full resolution (the 2x2 sub-image
    views see it 1:1) and blur to the same colour in the half-resolution global view."""
    def image(pattern):
        thing = Thing("square", "blue", "large", pattern, Box(40, 40, 70, 70))
        picture = Picture(0, 0, "scene", 128, 128, "flat", (200, 200, 200), things=(thing,))
        return np.asarray(render(picture)).astype(np.float32)

    striped, checked, plain = image("striped"), image("checked"), image("plain")
    inside = (slice(44, 66), slice(44, 66))
    assert np.abs(striped[inside] - checked[inside]).mean() > 60
    half = (slice(23, 32), slice(23, 32))
    assert np.abs(_half(striped)[half] - _half(checked)[half]).max() < 3
    assert np.abs(_half(striped)[half] - _half(plain)[half]).mean() > 40  # patterned vs plain: visible


def test_captions_and_questions(train_world):
    web = json.loads((train_world / "annotations" / "captions_train_web.json").read_text())
    synthetic = json.loads((train_world / "annotations" / "captions_train_synthetic.json").read_text())
    per_image = Counter(a["image_id"] for a in web["annotations"])
    assert set(per_image.values()) == {5}
    assert Counter(a["image_id"] for a in synthetic["annotations"]) == Counter(range(1, 49))
    web_len = np.mean([len(a["caption"].split()) for a in web["annotations"]])
    syn_len = np.mean([len(a["caption"].split()) for a in synthetic["annotations"]])
    assert syn_len > 2 * web_len  # synthetic: complete; web: short and partial
    answers = json.loads((train_world / "v2_mscoco_train_annotations.json").read_text())
    families = Counter(a["question_family"] for a in answers["annotations"])
    assert set(families) == {"colour", "shape", "count", "highres"}
    for a in answers["annotations"]:
        assert len(a["answers"]) == 10
        if a["question_family"] == "highres":
            assert a["multiple_choice_answer"] in PATTERNS
