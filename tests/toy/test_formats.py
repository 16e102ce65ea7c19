"""The world on disk is read by the project's own adapters, mixture code and collate, exactly as
real datasets are: no skipped record, the expected tasks, boxes that match the annotations."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from sphinx_mllm.config import SphinxConfig
from sphinx_mllm.data import (Collator, Skips, TypeGroupedBatchSampler, load_mixture, read_samples,
                              read_mixture_config)
from sphinx_mllm.data.files import read_plain_pickle
from sphinx_mllm.processing import Processor
from sphinx_mllm.tasks import Box, ImageFrame, first_box, parse_keypoints
from sphinx_mllm.toy import world_sources
from sphinx_mllm.toy.dataset import generate_world

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "toy"

EXPECTED_TASKS = {
    "coco-instances": {"detection", "category_detection", "rec", "reg"},
    "coco-keypoints": {"pose"}, "coco-captions": {"short_caption"}, "vqav2": {"vqa"},
    "publaynet": {"layout"}, "refcoco": {"rec", "reg"}, "llava": {"conversation"},
    "text": {"dialogue"},
}


def test_every_source_reads_cleanly(train_world):
    manifest = json.loads((train_world / "world.json").read_text())
    counts = Counter()
    for source in world_sources(train_world):
        skips = Skips()
        samples = list(read_samples(source.format, source.path, split=source.split,
                                    images=source.root, skips=skips))
        assert skips.total == 0, (source.name, skips.counts)
        assert samples and {s.task for s in samples} == EXPECTED_TASKS[source.format], source.name
        assert all(s.image is None or s.image.is_file() for s in samples)
        counts.update(f"{source.format}/{s.task}" for s in samples)
    c = manifest["counts"]
    assert counts["vqav2/vqa"] == c["questions"]
    assert counts["refcoco/rec"] == c["ref_sentences"] and counts["refcoco/reg"] == c["refs"]
    assert counts["coco-keypoints/pose"] == c["people"]
    assert counts["publaynet/layout"] == manifest["pictures"]["page"]
    assert counts["coco-instances/detection"] == manifest["pictures"]["scene"]
    assert counts["coco-captions/short_caption"] == c["captions_web"] + c["captions_synthetic"]


def test_rec_answers_are_the_annotated_boxes(train_world):
    """RefCOCO answers, mapped back to pixels, are the instance boxes (within the two-decimal
    rounding of the answer text: 0.005 of the 128-px square)."""
    instances = json.loads((train_world / "refcoco" / "instances.json").read_text())
    boxes = {a["id"]: Box.from_xywh(*a["bbox"]) for a in instances["annotations"]}
    refs = {r["ref_id"]: r for r in read_plain_pickle(train_world / "refcoco" / "refs(unc).p")}
    frame = ImageFrame(128, 128)
    samples = [s for s in read_samples("refcoco", train_world / "refcoco", split="train",
                                       images=train_world / "train") if s.task == "rec"]
    assert samples
    for sample in samples:
        ref = refs[int(sample.source.split(":")[-2])]
        got = frame.box_to_pixels(first_box(sample.messages[-1].content))
        want = boxes[ref["ann_id"]]
        assert max(abs(got.x1 - want.x1), abs(got.y1 - want.y1), abs(got.x2 - want.x2),
                   abs(got.y2 - want.y2)) <= 0.64 + 1e-9
        assert sample.image.name == ref["file_name"]


def test_pose_answers_name_all_17_keypoints(train_world):
    samples = list(read_samples("coco-keypoints", train_world, split="train"))
    assert samples
    for sample in samples:
        assert len(parse_keypoints(sample.messages[-1].content).points) == 17


def test_the_mixture_yaml_loads_samples_and_batches(train_world, tmp_path, tokenizer):
    """configs/toy/data-all.yaml, placed where it expects the world (runs/toy/world two levels
    up), loads through the mixture code; the sampler and collate make toy-world batches."""
    (tmp_path / "configs").mkdir()
    shutil.copytree(CONFIGS, tmp_path / "configs" / "toy")
    shutil.copytree(train_world, tmp_path / "runs" / "toy" / "world")
    sources = read_mixture_config(tmp_path / "configs" / "toy" / "data-all.yaml")
    mixture = load_mixture(sources)
    assert all(s.total == 0 for s in mixture.skips)
    assert {s.task for s in mixture.samples} >= {"vqa", "rec", "reg", "detection", "pose", "layout",
                                                  "short_caption", "conversation", "dialogue"}
    for name in ("data-web.yaml", "data-synthetic.yaml"):
        lm = load_mixture(read_mixture_config(tmp_path / "configs" / "toy" / name))
        assert len(lm) > 0 and all(s.total == 0 for s in lm.skips)
    sampler = TypeGroupedBatchSampler(mixture.types, mixture.lengths, 4, weights=mixture.weights)
    indices = next(i for i in sampler if mixture.types[i[0]] == "image_text")
    cfg = SphinxConfig.from_name("toy-world")
    batch = Collator(Processor(tokenizer, cfg))([mixture[i] for i in indices])
    assert batch.images.shape == (4, 3, cfg.image_size, cfg.image_size)
    assert batch.input_ids.shape[0] == 4 and (batch.labels != -100).any()


def test_caption_domains_are_separate_splits(train_world):
    web = list(read_samples("coco-captions", train_world, split="train_web",
                            images=train_world / "train"))
    synthetic = list(read_samples("coco-captions", train_world, split="train_synthetic",
                                  images=train_world / "train"))
    assert len(web) == 5 * len(synthetic)
    assert not {s.messages[-1].content for s in web} & {s.messages[-1].content for s in synthetic}


def test_manifest_written_and_empty_world_refused(tmp_path):
    manifest = generate_world(2, 3, tmp_path / "w")
    assert (tmp_path / "w" / "world.json").is_file() and manifest["n"] == 3
    with pytest.raises(ValueError):
        generate_world(2, 0, tmp_path / "empty")


def test_every_toy_training_config_parses_and_the_two_shape_data_loads(tmp_path):
    """Each configs/toy stage YAML parses, and each tail file reads against the finetune's
    mixture; data-two-shapes.yaml, placed where it expects its world, yields REC and REG turns
    about scenes of exactly two shapes."""
    from sphinx_mllm.toy.recipe import TAIL_PREFIX, Budget, finetune_mixtures, read_tail
    from sphinx_mllm.train.config import load_config

    stages = [p for p in sorted(CONFIGS.glob("*.yaml"))
              if not p.name.startswith(("data-", TAIL_PREFIX))]
    assert {"rec-two-shapes.yaml", "finetune.yaml"} <= {p.name for p in stages}
    for path in stages:
        cfg = load_config(path)
        assert cfg.data.name.startswith("data-") and cfg.data.exists(), path
    tails = sorted(CONFIGS.glob(f"{TAIL_PREFIX}*.yaml"))
    assert [p.name for p in tails] == ["tail-pose.yaml"]
    for path in tails:
        assert read_tail(path.name, finetune_mixtures(Budget(rec_view_steps=6000)))
    (tmp_path / "configs").mkdir()
    shutil.copytree(CONFIGS, tmp_path / "configs" / "toy")
    world = tmp_path / "runs" / "toy" / "world-2shapes"
    generate_world(7, 16, world, min_things=2, max_things=2)
    data = tmp_path / "configs" / "toy" / "data-two-shapes.yaml"
    mixture = load_mixture(read_mixture_config(data))
    assert len(mixture) > 0 and all(s.total == 0 for s in mixture.skips)
    assert {s.task for s in mixture.samples} == {"rec", "reg"}
    instances = json.loads((world / "refcoco" / "instances.json").read_text())
    assert set(Counter(a["image_id"] for a in instances["annotations"]).values()) == {2}


def test_where_questions_ask_the_place_of_a_shape_named_by_its_shape(train_world, tmp_path):
    """``write_where_questions``: "Where is the <shape>?" for every scene shape whose shape is
    unique in its scene and whose place no other shape shares, answered by that place as the
    synthetic captions word it; readable by the VQAv2 adapter from the world's images; the same
    files, byte for byte, as ``generate_world`` writes to ``world/where``."""
    from sphinx_mllm.data.adapters.vqa import read_vqav2
    from sphinx_mllm.toy.dataset import write_where_questions
    from sphinx_mllm.toy.evaluate import scene_shapes
    from sphinx_mllm.toy.world import position_word

    written = write_where_questions(train_world, tmp_path / "where")
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in json.loads(
        (train_world / "refcoco" / "instances.json").read_text())["images"]}
    expected = Counter()
    for name, shapes in scene_shapes(train_world).items():
        kinds = Counter(category.split()[-1] for category, _ in shapes)
        places = [position_word(box, *sizes[name]) for _, box in shapes]
        expected.update((name, f"Where is the {category.split()[-1]}?", place)
                        for (category, _), place in zip(shapes, places)
                        if kinds[category.split()[-1]] == 1 and places.count(place) == 1)
    skips = Skips()
    samples = list(read_vqav2(tmp_path / "where", "train", train_world / "train", 0, skips))
    assert skips.total == 0 and len(samples) == written == sum(expected.values()) > 10
    got = Counter((s.image.name, s.messages[0].content.split("\n")[0], s.messages[1].content)
                  for s in samples)  # the question, before the VQA task's answer-format line
    assert got == expected
    annotations = json.loads((tmp_path / "where" / "v2_mscoco_train_annotations.json").read_text())
    assert {a["question_family"] for a in annotations["annotations"]} == {"where"}
    for name in ("v2_OpenEnded_mscoco_train_questions.json", "v2_mscoco_train_annotations.json"):
        assert (tmp_path / "where" / name).read_bytes() == \
            (train_world / "where" / name).read_bytes()
    manifest = json.loads((train_world / "world.json").read_text())
    assert manifest["counts"]["where_questions"] == written
