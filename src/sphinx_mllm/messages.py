"""The messages form of a chat, as the OpenAI chat-completions API and the demo speak it.

``[{"role": "system" | "user" | "assistant", "content": str | [part, ...]}, ...]`` where a part is
``{"type": "text", "text": ...}``, ``{"type": "image", "image": path | bytes | PIL image}`` or
``{"type": "image_url", "image_url": {"url": "data:image/...;base64,..."}}``.
:func:`parse_messages` turns it into the template's turns
(:class:`~sphinx_mllm.conversation.Message`) plus the one image, so an API request never goes through question/history tuples.

SPHINX reads one image per conversation (its visual tokens sit right after BOS, whatever turn the
image came with), so a second image is an error rather than silently dropped. A system message
replaces the template's system text. Fetching ``http(s)`` or ``file`` URLs is a server policy
(:mod:`sphinx_mllm.serve.media`); here only ``data:`` URLs are read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .conversation import ROLES, Message
from .media import ImageSource, decode_data_url


class MessageError(ValueError):
    """A malformed conversation; ``param`` names the offending field (``messages[1].content``)."""

    def __init__(self, message: str, param: str):
        super().__init__(f"{param}: {message}")
        self.param = param


@dataclass(frozen=True)
class Conversation:
    """Turns ending with the user's question, the conversation's image (or None), system text."""

    turns: tuple[Message, ...]
    image: ImageSource | None = None
    system: str | None = None


def _image_part(part: dict, where: str) -> ImageSource:
    if part["type"] == "image":
        if part.get("image") is None:
            raise MessageError("an image part needs an 'image' (path, bytes or PIL image)", where)
        return part["image"]
    ref = part.get("image_url")
    url = ref.get("url") if isinstance(ref, dict) else ref
    if not isinstance(url, str):
        raise MessageError("an image_url part needs image_url.url", f"{where}.image_url.url")
    if not url.startswith("data:"):
        raise MessageError("only data: URLs are read here; fetch other URLs first "
                           "(the server does, under its media policy)", f"{where}.image_url.url")
    return decode_data_url(url)


def _content(content: Any, where: str) -> tuple[str, list[ImageSource]]:
    """(text, images) of one message's content; text parts are joined by newlines."""
    if isinstance(content, str):
        return content, []
    if not isinstance(content, (list, tuple)):
        raise MessageError("content must be a string or a list of parts", where)
    texts, images = [], []
    for i, part in enumerate(content):
        at = f"{where}[{i}]"
        if not isinstance(part, dict) or "type" not in part:
            raise MessageError("a content part is an object with a 'type'", at)
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise MessageError("a text part needs a string 'text'", f"{at}.text")
            texts.append(part["text"])
        elif part["type"] in ("image", "image_url"):
            images.append(_image_part(part, at))
        else:
            raise MessageError(f"unknown part type {part['type']!r} (text, image, image_url)",
                               f"{at}.type")
    return "\n".join(texts), images


def parse_messages(messages: Sequence[dict | Message]) -> Conversation:
    """Messages -> :class:`Conversation`. Raises :class:`MessageError` (a ``ValueError``) naming
    the field, or a :class:`~sphinx_mllm.media.ImageError` for a bad ``data:`` URL."""
    if not messages:
        raise MessageError("at least one message is needed", "messages")
    turns: list[Message] = []
    images: list[ImageSource] = []
    system = None
    for i, msg in enumerate(messages):
        where = f"messages[{i}]"
        if isinstance(msg, Message):
            msg = {"role": msg.role, "content": msg.content}
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in (*ROLES, "system"):
            raise MessageError(f"role must be system, user or assistant, got {role!r}",
                               f"{where}.role")
        text, found = _content(msg.get("content"), f"{where}.content")
        if found and role != "user":
            raise MessageError("images can only come in user messages", f"{where}.content")
        images += found
        if role == "system":
            if turns or system is not None:
                raise MessageError("one system message, first in the list", where)
            system = text
        elif text or not found or i == len(messages) - 1:  # an image-only message adds no turn
            turns.append(Message(role, text))
    if len(images) > 1:
        raise MessageError(f"SPHINX reads one image per conversation; got {len(images)}",
                           "messages")
    if not turns or turns[-1].role != "user":
        raise MessageError("the last message must be the user's", f"messages[{len(messages) - 1}]")
    return Conversation(tuple(turns), images[0] if images else None, system)


__all__ = ["Conversation", "MessageError", "parse_messages"]
