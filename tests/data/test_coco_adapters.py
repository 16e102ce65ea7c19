"""COCO captions / instances / keypoints and PubLayNet adapters on fixtures in the real layout."""

import pytest

from sphinx_mllm.data import Skips, read_samples
from sphinx_mllm.tasks import COCO_KEYPOINTS, Box, first_box, parse_detections, parse_keypoints

IMAGES = [{"id": 1, "file_name": "000000000001.jpg", "width": 640, "height": 480},
          {"id": 2, "file_name": "000000000002.jpg", "width": 100, "height": 200},
          {"id": 3, "file_name": "000000000003.jpg"}]  # no size, no file: malformed
CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"},
              {"id": 18, "name": "dog", "supercategory": "animal"}]


def _turns(sample):
    return [(m.role, m.content) for m in sample.messages]


def test_captions(tmp_path, write_json, skip_warnings):
    write_json(tmp_path / "annotations" / "captions_val2017.json", {
        "info": {}, "licenses": [], "images": IMAGES,
        "annotations": [{"id": 10, "image_id": 1, "caption": " A dog runs on grass. "},
                        {"id": 11, "image_id": 9, "caption": "orphan"},
                        {"id": 12, "image_id": 2, "caption": ""}]})
    skips = Skips()
    samples = list(read_samples("coco-captions", tmp_path, split="val2017", skips=skips))
    assert len(samples) == 1
    assert samples[0].image == tmp_path / "val2017" / "000000000001.jpg"
    assert _turns(samples[0]) == [
        ("user", "Provide a one-sentence caption for the provided image."),
        ("assistant", "A dog runs on grass.")]
    assert samples[0].task == "short_caption"
    assert samples[0].source == "coco-captions:captions_val2017.json:10"
    assert skips.total == 3  # image 3, annotations 11 and 12
    warnings = skip_warnings()
    assert any("captions_val2017.json" in w and "annotation 11" in w for w in warnings)


def test_instances_detection_rec_reg(tmp_path, write_json):
    write_json(tmp_path / "annotations" / "instances_train2017.json", {
        "images": IMAGES[:2], "categories": CATEGORIES,
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [64, 0, 256, 480], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [320, 80, 320, 320], "iscrowd": 0},
            {"id": 3, "image_id": 1, "category_id": 18, "bbox": [0, 240, 64, 64], "iscrowd": 0},
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 640, 480], "iscrowd": 1},
            {"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 10], "iscrowd": 0},
            {"id": 6, "image_id": 1, "category_id": 99, "bbox": [0, 0, 5, 5], "iscrowd": 0},
        ]})
    skips = Skips()
    samples = {s.task: s for s in read_samples("coco-instances", tmp_path, skips=skips)}
    assert skips.total == 2  # empty box, unknown category
    assert set(samples) == {"detection", "category_detection", "rec", "reg"}
    detection = samples["detection"].messages
    assert detection[0].content == "Detect all objects shown in the image."
    # 640x480 -> padded square side 640, 80 px of padding on top.
    assert detection[1].content == ("<p>person</p> [0.10,0.12,0.50,0.88;0.50,0.25,1.00,0.75] "
                                    "<p>dog</p> [0.00,0.50,0.10,0.60]")
    chosen = parse_detections(samples["category_detection"].messages[1].content)[0].label
    assert samples["category_detection"].messages[0].content == \
        f"Detect all {'people' if chosen == 'person' else 'dogs'} shown in the image."
    rec = samples["rec"].messages
    assert rec[0].content == ("Please provide the bounding box coordinate of the region this "
                              "sentence describes: dog.")
    assert first_box(rec[1].content) == Box(0.0, 0.5, 0.1, 0.6)
    assert "[0.00,0.50,0.10,0.60]" in samples["reg"].messages[0].content
    assert samples["reg"].messages[1].content == "dog"
    assert samples["rec"].image == tmp_path / "train2017" / "000000000001.jpg"


def test_keypoints(tmp_path, write_json, write_image):
    write_image(tmp_path / "imgs" / "000000000003.jpg", (50, 100))  # size from the header
    flat = [0] * 51
    flat[0:3] = [25, 10, 2]  # nose, visible
    flat[3 * 5:3 * 5 + 3] = [10, 40, 1]  # left shoulder, occluded but labelled
    write_json(tmp_path / "annotations" / "person_keypoints_val2017.json", {
        "images": [IMAGES[2]],
        "categories": [{"id": 1, "name": "person",
                        "keypoints": [n.replace(" ", "_") for n in COCO_KEYPOINTS]}],
        "annotations": [
            {"id": 7, "image_id": 3, "category_id": 1, "bbox": [0, 0, 50, 100], "iscrowd": 0,
             "num_keypoints": 2, "keypoints": flat},
            {"id": 8, "image_id": 3, "category_id": 1, "bbox": [0, 0, 50, 100], "iscrowd": 0,
             "num_keypoints": 1, "keypoints": [1, 2, 2]},
        ]})
    skips = Skips()
    (sample,) = read_samples("coco-keypoints", tmp_path, split="val2017",
                             images=tmp_path / "imgs", skips=skips)
    assert skips.total == 1
    # 50x100 -> side 100, 25 px of padding left.
    assert sample.messages[0].content == \
        "Detect the key points of the person in the region [0.25,0.00,0.75,1.00]."
    assert sample.messages[1].content == "<p>nose</p> [0.50,0.10] <p>left shoulder</p> [0.35,0.40]"
    assert [n for n, _ in parse_keypoints(sample.messages[1].content).points] == \
        ["nose", "left shoulder"]


def test_publaynet(tmp_path, write_json):
    write_json(tmp_path / "val.json", {
        "images": [{"id": 5, "file_name": "PMC1_00000.jpg", "width": 600, "height": 800}],
        "categories": [{"id": i, "name": n, "supercategory": ""}
                       for i, n in enumerate(["text", "title", "list", "table", "figure"], 1)],
        "annotations": [
            {"id": 1, "image_id": 5, "category_id": 2, "bbox": [100, 0, 400, 80], "iscrowd": 0},
            {"id": 2, "image_id": 5, "category_id": 1, "bbox": [100, 400, 400, 400], "iscrowd": 0},
            {"id": 3, "image_id": 5, "category_id": 1, "bbox": [100, 100, 400, 200], "iscrowd": 0},
            {"id": 4, "image_id": 5, "category_id": 4, "bbox": "oops", "iscrowd": 0},
        ]})
    skips = Skips()
    (sample,) = read_samples("publaynet", tmp_path, split="val", skips=skips)
    assert skips.total == 1 and sample.task == "layout"
    assert sample.image == tmp_path / "val" / "PMC1_00000.jpg"
    assert sample.messages[1].content == ("<p>title</p> [0.25,0.00,0.75,0.10] "
                                          "<p>text</p> [0.25,0.12,0.75,0.38;0.25,0.50,0.75,1.00]")


def test_missing_annotation_file_is_a_setup_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        list(read_samples("coco-captions", tmp_path))
    with pytest.raises(KeyError):
        read_samples("imagenet", tmp_path)
