"""Tiny benchmark fixtures in each benchmark's released file layout, and the toy pipeline."""

import json
import pickle

import pytest
from PIL import Image

COCO_NAMES = ["nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
              "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
              "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]


def _json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _image(path, size=(40, 20)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path)


def _vqa_answers(*answers):
    return [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(answers)]


def write_vqav2(root, prefix="v2_"):
    _json(root / f"{prefix}OpenEnded_mscoco_val2014_questions.json", {"questions": [
        {"question_id": 1001, "image_id": 1, "question": "How many dogs?"},
        {"question_id": 1002, "image_id": 2, "question": "What color is the car?"}]})
    _json(root / f"{prefix}mscoco_val2014_annotations.json", {"annotations": [
        {"question_id": 1001, "image_id": 1, "answers": _vqa_answers(*["2"] * 10)},
        {"question_id": 1002, "image_id": 2, "answers": _vqa_answers(*["red"] * 3, *["blue"] * 7)}]})
    for i in (1, 2):
        _image(root / "val2014" / f"COCO_val2014_{i:012d}.jpg")
    return 2


def write_okvqa(root):
    return write_vqav2(root, prefix="")


def write_gqa(root):
    _json(root / "testdev_balanced_questions.json", {
        "20968379": {"imageId": "n288870", "question": "Is the sky blue?", "answer": "yes"},
        "20968380": {"imageId": "n288871", "question": "Which side is the cup on?", "answer": "left"}})
    for name in ("n288870", "n288871"):
        _image(root / "images" / f"{name}.jpg")
    return 2


def write_textvqa(root):
    _json(root / "TextVQA_0.5.1_val.json", {"dataset_name": "textvqa", "data": [
        {"question_id": 34602, "image_id": "003a8ae2ef43b901", "question": "What brand is this?",
         "answers": ["nokia"] * 10}]})
    _image(root / "train_images" / "003a8ae2ef43b901.jpg")
    return 1


def write_vizwiz(root):
    _json(root / "val.json", [
        {"image": f"VizWiz_val_{i:08d}.jpg", "question": "What is this?", "answerable": 1,
         "answer_type": "other", "answers": _vqa_answers(*["soup"] * 10)} for i in range(2)])
    for i in range(2):
        _image(root / "val" / f"VizWiz_val_{i:08d}.jpg")
    return 2


def write_docvqa(root):
    _json(root / "val" / "val_v1.0.json", {"dataset_name": "docvqa", "dataset_split": "val", "data": [
        {"questionId": 49153, "question": "What is the date?", "image": "documents/pybv0228_81.png",
         "docId": 14465, "answers": ["1/8/93", "January 8, 1993"]}]})
    _image(root / "val" / "documents" / "pybv0228_81.png", (30, 40))
    return 1


def write_chartqa(root):
    _json(root / "test" / "test_human.json", [
        {"imgname": "41699051005347.png", "query": "What is the peak value?", "label": "12"},
        {"imgname": "41699051005347.png", "query": "Which year is lowest?", "label": "2010"}])
    _image(root / "test" / "png" / "41699051005347.png")
    return 2


def write_scienceqa(root):
    _json(root / "problems.json", {
        "10": {"question": "Which is a mammal?", "choices": ["shark", "whale", "trout"], "answer": 1,
               "hint": "Look at the picture.", "image": "image.png", "split": "test"},
        "11": {"question": "Text only?", "choices": ["yes", "no"], "answer": 0, "hint": "",
               "image": None, "split": "test"}})
    _json(root / "pid_splits.json", {"test": ["10", "11"], "val": []})
    _image(root / "images" / "test" / "10" / "image.png")
    return 1


def write_pope(root, split="random"):
    lines = [{"question_id": i + 1, "image": f"COCO_val2014_{i + 1:012d}.jpg",
              "text": f"Is there a {obj} in the image?", "label": label}
             for i, (obj, label) in enumerate([("dog", "yes"), ("cat", "yes"), ("car", "yes"),
                                               ("bus", "no")])]
    (root).mkdir(parents=True, exist_ok=True)
    (root / f"coco_pope_{split}.json").write_text("".join(json.dumps(x) + "\n" for x in lines))
    for x in lines:
        _image(root / "val2014" / x["image"])
    return 4


def write_mme(root):
    _image(root / "existence" / "000000006040.jpg")
    (root / "existence" / "000000006040.txt").write_text(
        "Is there a train in this image? Please answer yes or no.\tYes\n"
        "Is there a bed in this image? Please answer yes or no.\tNo\n")
    _image(root / "artwork" / "images" / "10002.jpg")
    (root / "artwork" / "questions_answers_YN").mkdir(parents=True)
    (root / "artwork" / "questions_answers_YN" / "10002.txt").write_text(
        "Is this artwork created by Giotto? Please answer yes or no.\tYes\n"
        "Is this artwork created by Monet? Please answer yes or no.\tNo\n")
    return 4


def write_refcoco(root, refs_name="refs(unc).p", splits=("val", "testA")):
    root.mkdir(parents=True, exist_ok=True)
    refs = [{"ref_id": 1, "ann_id": 10, "image_id": 1, "split": splits[0], "category_id": 18,
             "sentences": [{"sent_id": 100, "sent": "left dog", "tokens": ["left", "dog"]},
                           {"sent_id": 101, "sent": "dog on the left", "tokens": []},
                           {"sent_id": 102, "sent": "brown dog.", "tokens": []}]},
            {"ref_id": 2, "ann_id": 11, "image_id": 1, "split": splits[1], "category_id": 18,
             "sentences": [{"sent_id": 200, "sent": "right dog", "tokens": []}]}]
    with open(root / refs_name, "wb") as f:
        pickle.dump(refs, f, protocol=2)
    _json(root / "instances.json", {
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg", "width": 40, "height": 20}],
        "annotations": [{"id": 10, "image_id": 1, "bbox": [4, 2, 10, 8], "category_id": 18},
                        {"id": 11, "image_id": 1, "bbox": [24, 4, 12, 12], "category_id": 18}],
        "categories": [{"id": 18, "name": "dog"}]})
    _image(root / "images" / "COCO_train2014_000000000001.jpg")
    return 3


def write_captions(root):
    _json(root / "annotations" / "captions_val2017.json", {
        "images": [{"id": 1, "file_name": "000000000001.jpg", "width": 40, "height": 20},
                   {"id": 2, "file_name": "000000000002.jpg", "width": 40, "height": 20}],
        "annotations": [{"id": 1, "image_id": 1, "caption": "A dog runs on grass."},
                        {"id": 2, "image_id": 1, "caption": "A brown dog running."},
                        {"id": 3, "image_id": 2, "caption": "A red car parked on a street."}]})
    for i in (1, 2):
        _image(root / "val2017" / f"{i:012d}.jpg")
    return 2


def person_keypoints(x0, y0):
    flat = []
    for k in range(17):
        flat += [x0 + k % 4, y0 + k // 4, 2 if k < 15 else 0]
    return flat


def write_keypoints(root):
    _json(root / "annotations" / "person_keypoints_val2017.json", {
        "images": [{"id": 7, "file_name": "000000000007.jpg", "width": 40, "height": 20}],
        "categories": [{"id": 1, "name": "person", "keypoints": COCO_NAMES, "skeleton": []}],
        "annotations": [
            {"id": 70, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": [4, 2, 10, 16],
             "area": 120.0, "num_keypoints": 15, "keypoints": person_keypoints(5, 3)},
            {"id": 71, "image_id": 7, "category_id": 1, "iscrowd": 0, "bbox": [20, 2, 10, 16],
             "area": 120.0, "num_keypoints": 0, "keypoints": [0] * 51}]})
    _image(root / "val2017" / "000000000007.jpg")
    return 1


def write_publaynet(root):
    _json(root / "val.json", {
        "images": [{"id": 3, "file_name": "PMC1_00003.jpg", "width": 30, "height": 40}],
        "categories": [{"id": i + 1, "name": n, "supercategory": ""}
                       for i, n in enumerate(["text", "title", "list", "table", "figure"])],
        "annotations": [{"id": 1, "image_id": 3, "category_id": 2, "bbox": [3, 2, 20, 4], "area": 80,
                         "iscrowd": 0},
                        {"id": 2, "image_id": 3, "category_id": 1, "bbox": [3, 10, 24, 20], "area": 480,
                         "iscrowd": 0}]})
    _image(root / "val" / "PMC1_00003.jpg", (30, 40))
    return 1


WRITERS = {
    "vqav2": write_vqav2, "okvqa": write_okvqa, "gqa": write_gqa, "textvqa": write_textvqa,
    "vizwiz": write_vizwiz, "docvqa": write_docvqa, "chartqa": write_chartqa,
    "scienceqa": write_scienceqa, "pope": write_pope, "mme": write_mme, "refcoco": write_refcoco,
    "refcoco+": write_refcoco, "refcocog": lambda root: write_refcoco(root, "refs(umd).p", ("val", "test")),
    "coco-captions": write_captions, "coco-keypoints": write_keypoints, "publaynet": write_publaynet,
}


@pytest.fixture
def benchmark_data(tmp_path):
    """``make(name, **writer_kwargs) -> (data_dir, number of items in the written split)``."""
    def make(name, **kwargs):
        root = tmp_path / "data" / name
        return root, WRITERS[name](root, **kwargs)
    return make


@pytest.fixture(scope="session")
def toy_pipeline():
    import torch

    import sphinx_mllm

    torch.manual_seed(0)
    return sphinx_mllm.load("toy")


@pytest.fixture
def run_twice(tmp_path, toy_pipeline):
    """Run a benchmark end to end on the toy model, check answers.jsonl and metrics.json, rerun
    and check nothing new is generated; return (answer records, metrics.json content)."""
    from sphinx_mllm.eval.benchmarks import get_benchmark
    from sphinx_mllm.eval.runner import run_benchmark

    def run(name, data_dir, n_items, **kwargs):
        out = tmp_path / "runs" / name
        kwargs.setdefault("sampling", {"max_new_tokens": 4})
        first = run_benchmark(name, toy_pipeline, data_dir, out, batch_size=4, progress=False, **kwargs)
        answers = out / "answers.jsonl"
        records = [json.loads(line) for line in answers.read_text().splitlines()]
        assert first["written"] == n_items == len(records)
        fields = set(get_benchmark(name).id_fields) | {"answer"}
        assert all(set(r) == fields and isinstance(r["answer"], str) for r in records)
        assert len({tuple(r[f] for f in get_benchmark(name).id_fields) for r in records}) == n_items
        before = answers.read_text()
        second = run_benchmark(name, toy_pipeline, data_dir, out, batch_size=4, progress=False, **kwargs)
        assert second["written"] == 0 and answers.read_text() == before
        saved = json.loads((out / "metrics.json").read_text())
        assert saved["benchmark"] == name and saved["metrics"]["missing"] == 0
        assert saved["sampling"]["temperature"] == 0.0  # greedy by default
        return records, saved
    return run
