"""The request body of ``POST /v1/chat/completions`` (the OpenAI chat-completions subset we serve).

Validation errors become 422 responses naming the field (``messages.0.content.1.image_url.url``).
Fields of the OpenAI protocol that we do not implement and that change the answer (tools,
logprobs, penalties other than 0, ...) are refused with 422 rather than silently ignored; purely
informational ones (``user``, ``metadata``...) are accepted and ignored.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_STOP = 4
MAX_STOP_CHARS = 128


class TextPart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class ImageURL(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str
    detail: Literal["auto", "low", "high"] | None = None  # accepted; SPHINX has one resolution


class ImagePart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["image_url"]
    image_url: ImageURL


Part = Annotated[Union[TextPart, ImagePart], Field(discriminator="type")]


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # e.g. "name"
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[Part]


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)  # an extension, as vLLM has it
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = Field(None, validate_default=True)  # -> list[str]
    n: int = Field(1, ge=1)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1 - 128)  # choice i seeds seed + i
    stream: bool = False
    stream_options: StreamOptions | None = None
    # refused when they would change the answer: we do not implement them
    frequency_penalty: Literal[0, 0.0] | None = None
    presence_penalty: Literal[0, 0.0] | None = None
    logprobs: Literal[False] | None = None
    tools: Annotated[list, Field(max_length=0)] | None = None
    response_format: dict | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> list[str]:
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        if any(not s or len(s) > MAX_STOP_CHARS for s in stops):
            raise ValueError(f"stop sequences must have 1 to {MAX_STOP_CHARS} characters")
        return stops

    @field_validator("response_format")
    @classmethod
    def _format(cls, value: dict | None) -> dict | None:
        if value is not None and value.get("type", "text") != "text":
            raise ValueError("only the text response format is served")
        return value

    @property
    def new_tokens(self) -> int | None:
        """``max_completion_tokens`` (the newer name) or ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens
