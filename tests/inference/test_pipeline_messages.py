"""Pipeline: the messages form, structured objects in original pixels, the image loader."""

import io

import pytest
import torch
from PIL import Image

import sphinx_mllm
from sphinx_mllm.inference.pipeline import example_image_path
from sphinx_mllm.media import InvalidImage
from sphinx_mllm.tasks import Box, BoxObject


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    return sphinx_mllm.load("toy")


def png(image: Image.Image, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG" if not options else "JPEG", **options)
    return buf.getvalue()


def test_messages_form_equals_the_question_history_form(pipe):
    image = example_image_path()
    messages = [{"role": "user", "content": [{"type": "image", "image": str(image)},
                                             {"type": "text", "text": "Q1"}]},
                {"role": "assistant", "content": "A1"},
                {"role": "user", "content": "Q2"}]
    a = pipe.prepare(image, "Q2", history=[("Q1", "A1")])
    b = pipe.prepare(messages=messages)
    assert a.ids == b.ids and torch.equal(a.pixels, b.pixels) and a.frame == b.frame
    assert (pipe.chat(messages=messages, max_new_tokens=6).tokens
            == pipe.chat(image, "Q2", history=[("Q1", "A1")], max_new_tokens=6).tokens)
    with pytest.raises(ValueError, match="not both"):
        pipe.prepare(image, "Q2", messages=messages)


def test_system_message_replaces_the_system_text(pipe):
    plain = pipe.prepare(messages=[{"role": "user", "content": "hi"}]).ids
    custom = pipe.prepare(messages=[{"role": "system", "content": "Be terse."},
                                    {"role": "user", "content": "hi"}]).ids
    assert plain != custom
    assert pipe.tokenizer.decode(custom).startswith("Be terse.")


def test_objects_are_in_original_pixels_of_the_oriented_image(pipe):
    wide = Image.new("RGB", (40, 20), (9, 9, 9))
    prompt = pipe.prepare(png(wide), "Where?")
    assert (prompt.frame.width, prompt.frame.height) == (40, 20)
    gen = pipe.start(prompt, max_new_tokens=1)
    gen.result()
    answer = gen.answer("<p>thing</p> [0.00,0.25,1.00,0.75]")
    assert answer.objects == [BoxObject("thing", Box(0, 0, 40, 20))]
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 40x20, shown 20x40
    turned = pipe.prepare(png(wide, exif=exif, quality=90), "Where?")
    assert (turned.frame.width, turned.frame.height) == (20, 40)


def test_text_only_answers_have_no_objects(pipe):
    answer = pipe.chat(None, "Say [0.1,0.1,0.2,0.2]", max_new_tokens=3)
    assert answer.objects == []


def test_image_checks_apply_to_chat(pipe):
    with pytest.raises(InvalidImage, match="truncated"):
        data = png(Image.effect_noise((64, 64), 50).convert("RGB"))
        pipe.chat(data[: len(data) // 2], "What?", max_new_tokens=2)


@pytest.mark.parametrize("question", ["Describe it.", "What colour?", "Detect all objects."])
def test_streamed_text_is_the_chat_text(pipe, question):
    image = example_image_path()
    text = "".join(pipe.stream(image, question, max_new_tokens=24))
    assert text == pipe.chat(image, question, max_new_tokens=24).text
