"""Task registry: verbatim spec prompts, seeded paraphrases, typed dispatch, answer formats."""

import random

import pytest

from sphinx_mllm.tasks import (QA, TASKS, Box, Caption, Choice, Detection, Detections,
                               GroundedCaption, Keypoints, Point, Pose, Region, get_task,
                               make_turn, plural, sample_rng)

BOX = Box(0.1, 0.2, 0.3, 0.4)
EXAMPLES = {
    "vqa": (QA("What color is the bus?", "red"),
            "What color is the bus?\nAnswer the question using a single word or phrase.", "red"),
    "multiple_choice": (Choice("Which is a fruit?", ("stone", "apple"), 1),
                        "Which is a fruit?\nA. stone\nB. apple\n"
                        "Answer with the option's letter from the given choices directly.", "B"),
    "short_caption": (Caption("A dog."), "Provide a one-sentence caption for the provided image.",
                      "A dog."),
    "detailed_caption": (Caption("A dog on grass."),
                         "Generate a detailed description about the image.", "A dog on grass."),
    "rec": (Region("blue backpack.", (BOX,)),
            "Please provide the bounding box coordinate of the region this sentence describes: "
            "blue backpack.", "[0.10,0.20,0.30,0.40]"),
    "grounded_caption": (GroundedCaption(("A ", Detection("dog", (BOX,)), " runs.")),
                         "Describe the image concisely. Include the bounding box for each "
                         "mentioned object.", "A <p>dog</p> [0.10,0.20,0.30,0.40] runs."),
    "detection": (Detections((Detection("dog", (BOX,)),)),
                  "Detect all objects shown in the image.", "<p>dog</p> [0.10,0.20,0.30,0.40]"),
    "category_detection": (Detections((Detection("person", (BOX,)),), "person"),
                           "Detect all people shown in the image.",
                           "<p>person</p> [0.10,0.20,0.30,0.40]"),
    "text_detection": (Detections((Detection("STOP", (BOX,)),)),
                       "Please detect all texts and provide their bounding box coordinate.",
                       "<p>STOP</p> [0.10,0.20,0.30,0.40]"),
    "pose": (Pose(BOX, Keypoints((("nose", Point(0.2, 0.25)),))),
             "Detect the key points of the person in the region [0.10,0.20,0.30,0.40].",
             "<p>nose</p> [0.20,0.25]"),
}


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_spec_prompts_verbatim(name):
    example, question, answer = EXAMPLES[name]
    assert TASKS[name].prompt_source == "spec"
    assert make_turn(name, example, random.Random(0)) == (question, answer)


def test_our_paraphrases_are_seeded_and_varied():
    example = Region("a red car", (BOX,))
    questions = {make_turn("reg", example, sample_rng(0, str(i)))[0] for i in range(50)}
    assert questions == {p.format(box="[0.10,0.20,0.30,0.40]") for p in TASKS["reg"].prompts}
    assert make_turn("reg", example, sample_rng(3, "k")) == make_turn("reg", example, sample_rng(3, "k"))
    layout = Detections((Detection("title", (BOX,)), Detection("table", (BOX, BOX))))
    question, answer = make_turn("layout", layout, sample_rng(0, "page"))
    assert question in TASKS["layout"].prompts and TASKS["layout"].prompt_source == "ours"
    assert answer == "<p>title</p> [0.10,0.20,0.30,0.40] <p>table</p> [0.10,0.20,0.30,0.40;0.10,0.20,0.30,0.40]"


def test_typed_dispatch():
    with pytest.raises(TypeError):
        make_turn("rec", QA("q", "a"), random.Random(0))
    with pytest.raises(KeyError):
        get_task("sing")


def test_plural():
    assert [plural(n) for n in ("person", "bus", "bench", "skis", "teddy bear", "baby", "toy")] == \
        ["people", "buses", "benches", "skis", "teddy bears", "babies", "toys"]
