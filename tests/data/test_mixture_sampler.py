"""YAML mixtures, the type-grouped length-bucketed sampler, and the collate function."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

import sphinx_mllm
from sphinx_mllm.config import SphinxConfig
from sphinx_mllm.constants import IGNORE_INDEX, IMAGE_PLACEHOLDER_ID
from sphinx_mllm.data import (Collator, TypeGroupedBatchSampler, format_stats, load_mixture,
                              mixture_stats, read_mixture_config)
from sphinx_mllm.processing import Processor
from sphinx_mllm.tokenizer import Tokenizer

TOKENIZER = Path(sphinx_mllm.__file__).parent / "assets" / "toy-tokenizer.model"


@pytest.fixture
def mixture_yaml(tmp_path, write_json):
    images = tmp_path / "images"
    for i, size in enumerate([(30, 20), (20, 40), (16, 16)]):
        images.mkdir(exist_ok=True)
        Image.new("RGB", size, (i * 50, 0, 0)).save(images / f"{i}.png")
    write_json(tmp_path / "ann" / "chat.json", [
        {"image": f"{i % 3}.png", "conversations": [{"from": "human", "value": "Q" * (i + 1)},
                                                    {"from": "gpt", "value": f"answer {i}"}]}
        for i in range(10)] + [{"image": "0.png"}])
    (tmp_path / "ann" / "web.jsonl").write_text(
        "".join(json.dumps({"text": "word " * (i + 1)}) + "\n" for i in range(6)))
    config = tmp_path / "mix.yaml"
    config.write_text(
        "META:\n"
        "  - path: ann/chat.json\n    type: image_text\n    root: images\n"
        "  - path: ann/web.jsonl\n    type: text\n    format: text\n    ratio: 0.5\n"
        "    weight: 2\n")
    return config


def test_a_type_with_image_and_text_only_samples_is_split(tmp_path):
    from sphinx_mllm.conversation import Message
    from sphinx_mllm.data.mixture import Mixture, SourceConfig
    from sphinx_mllm.data.sample import Sample

    turn = (Message("user", "q"), Message("assistant", "a"))
    samples = [Sample(tmp_path / "x.png", turn, "conversation", "1"),
               Sample(None, turn, "dialogue", "2"), Sample(None, turn, "dialogue", "3")]
    mixture = Mixture([SourceConfig(tmp_path, "image_text"), SourceConfig(tmp_path, "text")],
                      samples, [0, 0, 1])
    assert mixture.types == ["image_text", "image_text/text", "text"]


def test_config_and_mixture(mixture_yaml):
    sources = read_mixture_config(mixture_yaml)
    assert [(s.format, s.type, s.weight, s.ratio) for s in sources] == \
        [("llava", "image_text", 1.0, 1.0), ("text", "text", 2.0, 0.5)]
    assert sources[0].root == mixture_yaml.parent / "images"
    mixture = load_mixture(sources)
    assert len(mixture) == 13 and [s.total for s in mixture.skips] == [1, 0]
    assert mixture.types.count("text") == 3 and mixture.weights[-1] == 2.0
    assert mixture.types.count("image_text") == 10
    assert mixture[0].image == mixture_yaml.parent / "images" / "0.png"


def test_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    for text in ("nope: 1\n", "META:\n  - path: x\n", "META:\n  - {path: x, type: t, format: z}\n",
                 "META:\n  - {path: x, type: t, wieght: 2}\n", "META:\n  - {path: x, type: t, turns: 0}\n",
                 "META:\n  - {path: x, type: t, turns: 2, task: caption_lm}\n"):
        bad.write_text(text)
        with pytest.raises(ValueError):
            read_mixture_config(bad)


def test_turns_packs_same_image_same_task_samples(tmp_path):
    from sphinx_mllm.conversation import Message
    from sphinx_mllm.data.sample import Sample, pack_turns

    def sample(image, task, answer, i):
        turn = (Message("user", f"q{i}"), Message("assistant", answer))
        return Sample(image and tmp_path / image, turn, task, f"s{i}")

    samples = [sample("a.png", "rec", f"[{i}]", i) for i in range(5)]  # 5 distinct answers
    samples += [sample("a.png", "reg", "the cat", 5),                    # another task: apart
                sample("b.png", "rec", "[0]", 6), sample("b.png", "rec", "[0]", 7),  # same answer
                sample(None, "dialogue", "hi", 8), sample(None, "dialogue", "hi", 9)]
    packed = pack_turns(samples, turns=2, seed=0)
    shape = [(p.image and p.image.name, p.task, len(p.messages) // 2) for p in packed]
    assert shape == [("a.png", "rec", 2), ("a.png", "rec", 2), ("a.png", "rec", 1),
                     ("a.png", "reg", 1), ("b.png", "rec", 1), ("b.png", "rec", 1),
                     (None, "dialogue", 1), (None, "dialogue", 1)]
    rec = [m.content for p in packed[:3] for m in p.messages if m.role == "assistant"]
    assert sorted(rec) == [f"[{i}]" for i in range(5)]  # every answer kept once
    first = packed[0]
    assert [m.role for m in first.messages] == ["user", "assistant"] * 2
    assert first.source.count(" + ") == 1
    assert pack_turns(samples, 2, seed=0) == packed  # deterministic per seed
    assert pack_turns(samples, 1) == samples


def test_turns_in_a_mixture(mixture_yaml):
    text = mixture_yaml.read_text().replace("root: images\n", "root: images\n    turns: 4\n", 1)
    mixture_yaml.write_text(text)
    sources = read_mixture_config(mixture_yaml)
    assert sources[0].turns == 4 and sources[1].turns == 1
    mixture = load_mixture(sources)
    chats = [s for s in mixture.samples if s.image is not None]
    # 10 chats over 3 images (4 / 3 / 3), all answers distinct: one conversation per image
    assert sorted(len(s.messages) // 2 for s in chats) == [3, 3, 4]


def _sampler(**kw):
    types = ["a"] * 10 + ["b"] * 7
    lengths = [(i * 7) % 13 for i in range(17)]
    args = dict(batch_size=2, world_size=2, accum=1, seed=3)
    args.update(kw)
    return TypeGroupedBatchSampler(types, lengths, **args), types, lengths


def test_global_batches_stay_within_one_type_and_are_length_sorted():
    sampler, types, lengths = _sampler()
    ranks = [list(_sampler(rank=r)[0]) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 2 + 1  # 10 // 4 + 7 // 4 global batches
    for a, b in zip(*ranks):
        global_batch = a + b
        assert len({types[i] for i in global_batch}) == 1
        assert [lengths[i] for i in global_batch] == sorted(lengths[i] for i in global_batch)
    seen = [i for batches in ranks for b in batches for i in b]
    assert len(seen) == len(set(seen)) == 12


def test_sampler_deterministic_epochs_and_resume():
    sampler, _, _ = _sampler(accum=2, world_size=1)
    first = list(sampler)
    assert first == list(_sampler(accum=2, world_size=1)[0])
    sampler.set_epoch(1)
    assert list(sampler) != first  # global batches reshuffled with seed + epoch
    resumed, _, _ = _sampler(accum=2, world_size=1)
    resumed.load_state_dict(_sampler(accum=2, world_size=1)[0].state_dict(consumed=3))
    assert list(resumed) == first[3:] and len(resumed) == len(first) - 3
    with pytest.raises(ValueError):
        resumed.load_state_dict({"seed": 9, "epoch": 0, "start": 0})


def test_weights_repeat_and_drop_items():
    sampler = TypeGroupedBatchSampler(["t"] * 4, [1, 2, 3, 4], 1, weights=[0, 3, 1, 0.5])
    drawn = sorted(i for b in sampler for i in b)
    assert drawn.count(0) == 0 and drawn.count(1) == 3 and drawn.count(2) == 1
    assert drawn.count(3) in (0, 1)


def test_collate_pads_right(mixture_yaml):
    processor = Processor(Tokenizer.from_file(TOKENIZER), SphinxConfig.from_name("toy"))
    mixture = load_mixture(read_mixture_config(mixture_yaml))
    samples = [mixture[0], mixture[1], mixture[-1]]  # two with images, one text-only
    batch = Collator(processor)(samples)
    lengths = [len(processor.encode_training(s.messages, s.image is not None).input_ids)
               for s in samples]
    assert batch.input_ids.shape == (3, max(lengths))
    assert batch.images.shape == (2, 3, 56, 56)
    assert batch.has_image.tolist() == [True, True, False]
    assert batch.attention_mask.sum(1).tolist() == lengths
    assert (batch.input_ids[~batch.attention_mask] == 0).all()
    assert (batch.labels[~batch.attention_mask] == IGNORE_INDEX).all()
    assert (batch.input_ids == IMAGE_PLACEHOLDER_ID).sum().item() == 2 * processor.image_tokens
    assert batch.tasks == ["conversation", "conversation", "dialogue"]
    short = Collator(processor, max_length=processor.image_tokens + 5)(samples)
    assert short.input_ids.shape[1] == processor.image_tokens + 5
    with pytest.raises(ValueError):
        Collator(processor, max_length=processor.image_tokens)(samples[:1])
    loader = torch.utils.data.DataLoader(
        mixture, batch_sampler=TypeGroupedBatchSampler(mixture.types, mixture.lengths, 2,
                                                       weights=mixture.weights),
        collate_fn=Collator(processor))
    assert all(len(set(b.tasks)) == 1 for b in loader)


def test_stats(mixture_yaml):
    stats = mixture_stats(mixture_yaml, Tokenizer.from_file(TOKENIZER), "toy")
    assert [(s.samples, s.skipped, s.weight) for s in stats] == [(10, 1, 1.0), (3, 0, 2.0)]
    assert [s.share for s in stats] == pytest.approx([10 / 16, 6 / 16])  # weight x samples
    processor = Processor(Tokenizer.from_file(TOKENIZER), SphinxConfig.from_name("toy"))
    mixture = load_mixture(read_mixture_config(mixture_yaml))
    longest = max(len(processor.encode_training(s.messages, s.image is not None).input_ids)
                  for s in mixture.samples[:10])
    assert stats[0].percentiles[100] == longest  # visual placeholders counted
    table = [line.split() for line in format_stats(stats).splitlines()]
    assert table[0][:6] == ["source", "type", "samples", "skipped", "weight", "draws"]
    assert [row[4:6] for row in table[1:]] == [["1", "62.5%"], ["2", "37.5%"]]


def test_example_config_parses():
    config = Path(__file__).parents[2] / "configs" / "data-mixture-example.yaml"
    sources = read_mixture_config(config)
    assert {s.type for s in sources} == {"image_text", "text"}
    assert all(s.path.is_absolute() for s in sources)
