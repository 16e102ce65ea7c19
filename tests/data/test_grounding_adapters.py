"""RefCOCO (pickle + instances.json), Flickr30k Entities (txt + xml) and Visual Genome regions."""

import os
import pickle

import pytest

from sphinx_mllm.data import Skips, read_samples
from sphinx_mllm.tasks import TASKS

REC_PROMPT = "Please provide the bounding box coordinate of the region this sentence describes: {}."


def _refs():
    def sent(i, s):
        return {"tokens": s.split(), "raw": s, "sent_id": i, "sent": s}
    return [
        {"ref_id": 0, "ann_id": 100, "image_id": 1, "split": "train", "category_id": 18,
         "file_name": "COCO_train2014_000000000001_100.jpg", "sent_ids": [0, 1],
         "sentences": [sent(0, "left dog"), sent(1, "the brown dog.")]},
        {"ref_id": 1, "ann_id": 101, "image_id": 1, "split": "testA", "category_id": 1,
         "file_name": "COCO_train2014_000000000001_101.jpg", "sent_ids": [2],
         "sentences": [sent(2, "man")]},
        {"ref_id": 2, "ann_id": 999, "image_id": 1, "split": "train", "category_id": 1,
         "file_name": "x.jpg", "sent_ids": [3], "sentences": [sent(3, "ghost")]},
    ]


def _refcoco(root, write_json, refs_name="refs(unc).p"):
    write_json(root / "instances.json", {
        "images": [{"id": 1, "file_name": "COCO_train2014_000000000001.jpg",
                    "width": 200, "height": 100}],
        "annotations": [{"id": 100, "image_id": 1, "category_id": 18, "bbox": [0, 0, 100, 50],
                         "area": 5000, "iscrowd": 0, "segmentation": []},
                        {"id": 101, "image_id": 1, "category_id": 1, "bbox": [100, 0, 100, 100],
                         "area": 10000, "iscrowd": 0, "segmentation": []}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}]})
    with open(root / refs_name, "wb") as f:
        pickle.dump(_refs(), f, protocol=2)  # the public refs files are protocol-2 pickles


def test_refcoco_by_split(tmp_path, write_json, skip_warnings):
    _refcoco(tmp_path, write_json)
    skips = Skips()
    samples = list(read_samples("refcoco", tmp_path, images="/coco/train2014", skips=skips))
    assert [s.task for s in samples] == ["rec", "rec", "reg"]
    assert skips.total == 1 and "ann_id 999" in skip_warnings()[0]
    # 200x100 -> side 200, 50 px of padding on top.
    assert [(m.content) for m in samples[1].messages] == [REC_PROMPT.format("the brown dog"),
                                                          "[0.00,0.25,0.50,0.50]"]
    assert samples[0].image.as_posix() == "/coco/train2014/COCO_train2014_000000000001.jpg"
    reg_question, reg_answer = (m.content for m in samples[2].messages)
    assert reg_answer in ("left dog", "the brown dog.")
    assert reg_question in [p.format(box="[0.00,0.25,0.50,0.50]") for p in TASKS["reg"].prompts]
    (test_a,) = [s for s in read_samples("refcoco", tmp_path, split="testA") if s.task == "rec"]
    assert test_a.messages[1].content == "[0.50,0.25,1.00,0.75]"


def test_refcocog_umd_preferred(tmp_path, write_json):
    _refcoco(tmp_path, write_json, "refs(umd).p")
    with open(tmp_path / "refs(google).p", "wb") as f:
        pickle.dump([], f, protocol=2)
    assert len(list(read_samples("refcoco", tmp_path))) == 3


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_refs_pickle_may_not_run_code(tmp_path, write_json):
    _refcoco(tmp_path, write_json)
    with open(tmp_path / "refs(unc).p", "wb") as f:
        pickle.dump([_Evil()], f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="only plain data"):
        list(read_samples("refcoco", tmp_path))


FLICKR_XML = """<annotation>
<filename>1000092795.jpg</filename>
<size><width>500</width><height>250</height><depth>3</depth></size>
<object><name>1</name><bndbox><xmin>0</xmin><ymin>0</ymin><xmax>250</xmax><ymax>250</ymax></bndbox></object>
<object><name>1</name><name>3</name><bndbox><xmin>250</xmin><ymin>0</ymin><xmax>500</xmax><ymax>125</ymax></bndbox></object>
<object><name>2</name><nobndbox>1</nobndbox></object>
</annotation>
"""


def test_flickr30k_entities(tmp_path):
    (tmp_path / "Sentences").mkdir()
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Sentences" / "1000092795.txt").write_text(
        "[/EN#1/people Two young guys] with [/EN#2/bodyparts shaggy hair] look at "
        "[/EN#3/bodyparts their hands] .\n[/EN#1/people Two men broken\n")
    (tmp_path / "Annotations" / "1000092795.xml").write_text(FLICKR_XML)
    (tmp_path / "Sentences" / "2.txt").write_text("[/EN#1/people A man] .\n")
    (tmp_path / "Annotations" / "2.xml").write_text("<annotation><size>")  # broken XML
    (tmp_path / "train.txt").write_text("1000092795\n2\n")
    skips = Skips()
    (sample,) = read_samples("flickr30k-entities", tmp_path, split="train", skips=skips)
    assert skips.total == 2  # the unbalanced second sentence and the broken XML file
    assert sample.image == tmp_path / "flickr30k-images" / "1000092795.jpg"
    assert sample.messages[0].content == TASKS["grounded_caption"].prompts[0]
    # 500x250 -> side 500, 125 px of padding on top.
    assert sample.messages[1].content == (
        "<p>Two young guys</p> [0.00,0.25,0.50,0.75;0.50,0.25,1.00,0.50] with shaggy hair look at "
        "<p>their hands</p> [0.50,0.25,1.00,0.50] .")


def test_visual_genome_regions(tmp_path, write_json, write_image):
    write_json(tmp_path / "region_descriptions.json", [
        {"id": 1, "regions": [
            {"region_id": 11, "image_id": 1, "x": 0, "y": 0, "width": 40, "height": 20,
             "phrase": "a red kite"},
            {"region_id": 12, "image_id": 1, "x": 0, "y": 0, "width": 0, "height": 20,
             "phrase": "nothing"}]},
        {"id": 2, "regions": [{"region_id": 21, "image_id": 2, "x": 0, "y": 0, "width": 5,
                               "height": 5, "phrase": "sky"}]},
        {"id": 3, "regions": [{"region_id": 31, "image_id": 3, "x": 0, "y": 0, "width": 5,
                               "height": 5, "phrase": "no image"}]}])
    write_json(tmp_path / "image_data.json", [{"image_id": 1, "width": 80, "height": 40}])
    write_image(tmp_path / "VG_100K_2" / "2.jpg", (10, 10))
    skips = Skips()
    samples = list(read_samples("vg-regions", tmp_path, skips=skips))
    assert skips.total == 2  # empty region 12, image 3 without size or file
    assert [s.messages[1].content for s in samples] == ["a red kite", "sky"]
    assert "[0.00,0.25,0.50,0.50]" in samples[0].messages[0].content
    assert samples[1].image == tmp_path / "VG_100K_2" / "2.jpg"
    assert "[0.00,0.00,0.50,0.50]" in samples[1].messages[0].content
