"""Only answer spans are supervised, for a converted sample of every task."""

import random
from pathlib import Path

import pytest

import sphinx_mllm
from sphinx_mllm.config import SphinxConfig
from sphinx_mllm.constants import IGNORE_INDEX, IMAGE_PLACEHOLDER_ID
from sphinx_mllm.conversation import Message
from sphinx_mllm.data import Sample
from sphinx_mllm.processing import Processor
from sphinx_mllm.tasks import (LM_TASKS, QA, TASK_NAMES, TASKS, Box, Caption, Choice, Detection, Detections,
                               GroundedCaption, Keypoints, Point, Pose, Region, make_turn)
from sphinx_mllm.tokenizer import Tokenizer

BOX = Box(0.12, 0.5, 0.33, 0.91)
EXAMPLES = {
    "vqa": QA("What is it?", "a cat"),
    "unanswerable_vqa": QA("What does the label say?", "unanswerable"),
    "multiple_choice": Choice("Which?", ("x", "y", "z"), 2),
    "short_caption": Caption("A cat on a mat."),
    "detailed_caption": Caption("A grey cat sleeps on a red mat. Sun shines."),
    "rec": Region("the cat", (BOX,)),
    "reg": Region("the cat", (BOX,)),
    "grounded_caption": GroundedCaption(("A ", Detection("cat", (BOX, BOX)), " sleeps.")),
    "detection": Detections((Detection("cat", (BOX,)), Detection("mat", (BOX,)))),
    "category_detection": Detections((Detection("cat", (BOX,)),), "cat"),
    "text_detection": Detections((Detection("EXIT", (BOX,)),)),
    "layout": Detections((Detection("title", (BOX,)),)),
    "pose": Pose(BOX, Keypoints((("nose", Point(0.2, 0.6)), ("left eye", Point(0.21, 0.58))))),
}


@pytest.fixture(scope="module")
def processor():
    tokenizer = Tokenizer.from_file(Path(sphinx_mllm.__file__).parent / "assets" / "toy-tokenizer.model")
    return Processor(tokenizer, SphinxConfig.from_name("toy"))


def _samples():
    rng = random.Random(0)
    for task, example in EXAMPLES.items():
        q, a = make_turn(task, example, rng)
        yield Sample(Path("x.jpg"), (Message("user", q), Message("assistant", a)), task, task)
    yield Sample(Path("x.jpg"), (Message("user", "What?"), Message("assistant", "A cat."),
                                 Message("user", "Color?"), Message("assistant", "Grey.")),
                 "conversation", "conversation")
    yield Sample(Path("x.jpg"), (Message("user", "How many cats?"), Message("assistant", "3")),
                 "vqa", "counting")  # a digit: with split digits the answer starts with a lone "▁"
    yield Sample(None, (Message("user", ""), Message("assistant", "Plain web text.")),
                 "dialogue", "dialogue")


def _lm_samples():
    yield Sample(Path("x.jpg"), (Message("assistant", "A cat on a mat."),), "caption_lm", "c")
    yield Sample(None, (Message("assistant", "Raw web text, all of it\nsupervised."),), "text_lm", "t")


def _runs(labels):
    runs, current = [], []
    for label in labels:
        if label == IGNORE_INDEX:
            if current:
                runs.append(current)
            current = []
        else:
            current.append(label)
    return runs + [current] * bool(current)


def test_every_task_is_covered():
    covered = {s.task for s in _samples()} | {s.task for s in _lm_samples()}
    assert covered == set(TASK_NAMES) == set(TASKS) | {"conversation", "dialogue"} | set(LM_TASKS)


@pytest.mark.parametrize("sample", list(_lm_samples()), ids=lambda s: s.task)
def test_language_modelling_supervises_every_text_token_and_eos(processor, sample):
    """Pre-training layout: BOS [placeholders] text EOS, labels = ids after BOS/placeholders."""
    has_image = sample.image is not None
    text = sample.messages[0].content
    encoded = processor.encode_lm(text, has_image)
    prefix = 1 + processor.image_tokens * has_image
    ids = processor.tokenizer.encode(text)
    placeholders = [IMAGE_PLACEHOLDER_ID] * processor.image_tokens * has_image
    eos = processor.tokenizer.eos_id
    assert encoded.input_ids == [processor.tokenizer.bos_id] + placeholders + ids + [eos]
    assert encoded.labels == [IGNORE_INDEX] * prefix + ids + [processor.tokenizer.eos_id]
    assert processor.tokenizer.decode(encoded.labels[prefix:-1]) == text


@pytest.mark.parametrize("sample", list(_samples()), ids=lambda s: s.source)
def test_only_answers_are_supervised(processor, sample):
    encoded = processor.encode_training(sample.messages, sample.image is not None)
    answers = [m.content for m in sample.messages if m.role == "assistant"]
    runs = _runs(encoded.labels)
    assert [processor.tokenizer.decode(r).strip() for r in runs] == [a + "\n###" for a in answers]
    assert encoded.labels[:1 + processor.image_tokens * (sample.image is not None)] == \
        [IGNORE_INDEX] * (1 + processor.image_tokens * (sample.image is not None))


@pytest.mark.parametrize("sample", list(_samples()), ids=lambda s: s.source)
def test_each_answer_continues_its_inference_prompt(processor, sample):
    """Training supervises exactly the tokens generation must write after the prompt that
    ``encode_prompt`` builds for that turn, including a lone leading ``▁`` (digits, ``<p>``)."""
    encoded = processor.encode_training(sample.messages, sample.image is not None)
    labelled = [label != IGNORE_INDEX for label in encoded.labels]
    starts = [i for i in range(1, len(labelled)) if labelled[i] and not labelled[i - 1]]
    turns = [i + 1 for i, m in enumerate(sample.messages) if m.role == "assistant"]
    assert len(starts) == len(turns)
    for start, end in zip(starts, turns):
        prompt = processor.encode_prompt(sample.messages[:end - 1], sample.image is not None)
        assert encoded.input_ids[:start] == prompt


def test_training_images_keep_their_stored_orientation(tmp_path, processor):
    """Annotations are on the stored pixels: a JPEG's EXIF rotation is not applied in training."""
    from PIL import Image

    from sphinx_mllm.data.collate import Collator
    from sphinx_mllm.data.sample import image_frame

    image = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees to display"
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif.tobytes())
    assert image_frame(None, None, path).width == 40
    sample = Sample(path, (Message("user", "Q"), Message("assistant", "A")), "conversation", "s")
    batch = Collator(processor)([sample])
    upright = processor.image(image)  # the stored 40x20 pixels, padded to a square
    assert (batch.images[0] - upright).abs().max() < 0.1
