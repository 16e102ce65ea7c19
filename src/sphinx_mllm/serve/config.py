"""Everything the server is told at start-up (the ``sphinx-mllm serve`` flags), in one record."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..media import ImageLimits

DEFAULT_MODEL = "toy-1k"
"""A random-weight preset until the bundled trained model exists (then: that model)."""


@dataclass(frozen=True)
class ServeConfig:
    """Limits and policies of one server.

    ``max_batch`` sequences decode together in the engine; up to ``max_queue`` more choices wait
    for a slot; past that a request gets 503 with ``Retry-After``. ``max_tokens_cap`` bounds
    ``max_tokens`` (and is the default when a request leaves it out, within the context).
    """

    model_name: str = DEFAULT_MODEL
    api_key: str | None = None
    max_body_bytes: int = 48 * 2**20
    limits: ImageLimits = field(default_factory=ImageLimits)
    local_media: Path | None = None
    remote_hosts: frozenset[str] = frozenset()
    remote_timeout_s: float = 10.0
    max_batch: int = 8
    max_queue: int = 64
    max_n: int = 8
    max_tokens_cap: int = 1024
    retry_after_s: int = 1
    demo: bool = False

    @property
    def capacity(self) -> int:
        """Choices in flight at most (decoding or waiting for a slot)."""
        return self.max_batch + self.max_queue
