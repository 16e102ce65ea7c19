"""The messages form: OpenAI-style content parts -> template turns + the one image."""

import base64
import io

import pytest
from PIL import Image

from sphinx_mllm.conversation import Message
from sphinx_mllm.media import InvalidImage
from sphinx_mllm.messages import MessageError, parse_messages


def data_url() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (3, 2), (1, 2, 3)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_openai_form_with_history_and_system():
    conv = parse_messages([
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url()}},
                                     {"type": "text", "text": "What is it?"}]},
        {"role": "assistant", "content": "A square."},
        {"role": "user", "content": "And its colour?"},
    ])
    assert conv.system == "Be brief."
    assert conv.turns == (Message("user", "What is it?"), Message("assistant", "A square."),
                          Message("user", "And its colour?"))
    assert Image.open(io.BytesIO(conv.image)).size == (3, 2)


def test_image_only_message_adds_no_turn_and_plain_strings_work():
    image = Image.new("RGB", (2, 2))
    conv = parse_messages([{"role": "user", "content": [{"type": "image", "image": image}]},
                           {"role": "user", "content": "Describe."}])
    assert conv.turns == (Message("user", "Describe."),) and conv.image is image
    assert parse_messages([Message("user", "hi")]).image is None


@pytest.mark.parametrize("messages, param", [
    ([], "messages"),
    ([{"role": "tool", "content": "x"}], "messages[0].role"),
    ([{"role": "user", "content": 3}], "messages[0].content"),
    ([{"role": "user", "content": [{"type": "audio"}]}], "messages[0].content[0].type"),
    ([{"role": "user", "content": [{"type": "text"}]}], "messages[0].content[0].text"),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "messages[1]"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://x/a.png"}}]}],
     "messages[0].content[0].image_url.url"),
    ([{"role": "assistant", "content": [{"type": "image", "image": b"x"}]},
      {"role": "user", "content": "q"}], "messages[0].content"),
    ([{"role": "user", "content": "q"}, {"role": "system", "content": "late"},
      {"role": "user", "content": "q"}], "messages[1]"),
])
def test_malformed_conversations_name_the_field(messages, param):
    with pytest.raises(MessageError) as err:
        parse_messages(messages)
    assert err.value.param == param


def test_one_image_per_conversation():
    part = {"type": "image", "image": Image.new("RGB", (2, 2))}
    with pytest.raises(MessageError, match="one image per conversation"):
        parse_messages([{"role": "user", "content": [part, part, {"type": "text", "text": "q"}]}])


def test_bad_base64_is_an_invalid_image():
    url = {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}
    with pytest.raises(InvalidImage, match="base64"):
        parse_messages([{"role": "user", "content": [url]}])
