"""The SPHINX conversation template (LLaMA2-Accessory ``conv_v1_2``): the one place that renders it.

    <system>\\n\\n### Human: Q1\\n### Assistant: A1\\n### Human: Q2\\n### Assistant:

Every assistant answer is followed by ``"\\n###"``; that suffix is both the training target's end
and the stop signal at generation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal, Sequence

SYSTEM = (
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions."
)
SEP = "###"
ANSWER_END = "\n" + SEP
ROLES = {"user": "Human", "assistant": "Assistant"}

Role = Literal["user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Rendered:
    """Rendered prompt text and the character spans (start, end) the loss supervises."""

    text: str
    supervised: tuple[tuple[int, int], ...]


def as_messages(items: Iterable[Message | dict]) -> list[Message]:
    """Accept ``Message`` objects or ``{"role": ..., "content": ...}`` dicts."""
    out = []
    for item in items:
        msg = item if isinstance(item, Message) else Message(item["role"], item["content"])
        if msg.role not in ROLES:
            raise ValueError(f"role must be one of {sorted(ROLES)}, got {msg.role!r}")
        out.append(msg)
    return out


def render(messages: Sequence[Message | dict], add_generation_prompt: bool = False,
           system: str | None = None) -> Rendered:
    """Render a conversation.

    Each assistant turn supervises ``" " + answer + "\\n###"``: the space the template puts before
    the answer belongs to it, as in the reference (``encode_segment`` of the answer starts with
    ``▁``). With ``add_generation_prompt`` an open ``" Assistant:"`` turn is appended (no trailing
    space), which is how prompts end at inference, so the model must write that space itself: when
    the answer's first piece is a lone ``▁`` (a digit, ``<p>``), it has to have been supervised.
    ``system`` replaces the template's system text (:data:`SYSTEM`) when given.
    """
    text = (SYSTEM if system is None else system) + "\n\n" + SEP
    spans = []
    for msg in as_messages(messages):
        text += f" {ROLES[msg.role]}: "
        if msg.role == "assistant":
            start = len(text) - 1  # the space after "Assistant:" is the answer's first character
            spans.append((start, len(text) + len(msg.content) + len(ANSWER_END)))
        text += msg.content + ANSWER_END
    if add_generation_prompt:
        text += f" {ROLES['assistant']}:"
    return Rendered(text, tuple(spans))


def history_to_messages(history: Sequence[tuple[str, str]], question: str) -> list[Message]:
    """``[(q1, a1), ...] + q`` -> messages ending with the open user question."""
    msgs = []
    for q, a in history:
        msgs += [Message("user", q), Message("assistant", a)]
    msgs.append(Message("user", question))
    return msgs


def cut_answer(text: str) -> str:
    """The answer is what the model wrote before the first separator, right-stripped."""
    return text.split(SEP, 1)[0].rstrip()


def visible_answer(text: str, finished: bool) -> str:
    """What a streaming client may show of ``text`` so far: the answer before the separator,
    holding back a trailing partial separator until the next token resolves it."""
    if finished:
        return cut_answer(text)
    head = text.split(SEP, 1)[0]
    partial = next((k for k in range(len(SEP) - 1, 0, -1) if head.endswith(SEP[:k])), 0)
    return head[:len(head) - partial]
