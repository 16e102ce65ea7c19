"""LLaVA / Accessory conversation files and plain-text JSONL."""

import json

from sphinx_mllm.conversation import Message
from sphinx_mllm.data import Skips, read_samples

LLAVA = [
    {"id": "a1", "image": "coco/train2017/1.jpg", "conversations": [
        {"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": "A cat."},
        {"from": "human", "value": "How many?"}, {"from": "gpt", "value": 2}]},
    {"id": "a2", "conversations": [{"from": "human", "value": "Hi"},
                                   {"from": "assistant", "value": "Hello!"}]},
    {"id": "bad-order", "conversations": [{"from": "gpt", "value": "x"}]},
    {"id": "no-answer", "conversations": [{"from": "human", "value": "x"}]},
    {"id": "no-turns"},
]


def test_llava_json(tmp_path, write_json, skip_warnings):
    write_json(tmp_path / "llava.json", LLAVA)
    skips = Skips()
    samples = list(read_samples("llava", tmp_path / "llava.json", images="/data/images",
                                skips=skips))
    assert skips.total == 3
    assert any("llava.json" in w and "#4" in w for w in skip_warnings())
    first, second = samples
    assert first.image.as_posix() == "/data/images/coco/train2017/1.jpg"
    assert first.messages == (Message("user", "What is this?"), Message("assistant", "A cat."),
                              Message("user", "How many?"), Message("assistant", "2"))
    assert (first.task, first.source) == ("conversation", "llava:llava.json:a1")
    assert (second.image, second.task) == (None, "dialogue")


def test_converted_jsonl_round_trips(tmp_path):
    lines = [json.dumps({"image": "/abs/1.jpg", "task": "rec", "source": "refcoco:x:1",
                         "conversations": [{"from": "human", "value": "q"},
                                           {"from": "gpt", "value": "[0.10,0.20,0.30,0.40]"}]}),
             "{not json"]
    (tmp_path / "out.jsonl").write_text("\n".join(lines) + "\n")
    skips = Skips()
    (sample,) = read_samples("llava", tmp_path, skips=skips)
    assert skips.total == 1
    assert (sample.task, sample.source) == ("rec", "refcoco:x:1")
    assert read_samples("llava", tmp_path).__next__().to_json() == json.loads(lines[0])


def test_plain_text_jsonl(tmp_path):
    (tmp_path / "web.jsonl").write_text(
        json.dumps({"text": "The sky is blue. "}) + "\n" + json.dumps({"text": 3}) + "\n\n")
    skips = Skips()
    (sample,) = read_samples("text", tmp_path, skips=skips)
    assert skips.total == 1
    assert sample.messages == (Message("user", ""), Message("assistant", "The sky is blue."))
    assert (sample.image, sample.task, sample.source) == (None, "dialogue", "text:web.jsonl:line 1")
