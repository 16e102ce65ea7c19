"""One admitted chat completion: its choices run in worker threads, answered as JSON or as SSE.

Each choice is a :class:`~sphinx_mllm.inference.pipeline.Generation` pulled by :func:`drive` in a
worker thread (the engine decodes all running sequences together); text deltas reach the event
loop through an ``asyncio.Queue``. A watcher reads the ASGI ``receive`` channel: when the client
disconnects, every generation is closed, which frees its engine cache slot before the next step.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import AsyncIterator, Callable

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ..tasks import objects_json
from .stops import StopText

log = logging.getLogger("sphinx_mllm.serve")


@dataclass
class ChoiceResult:
    index: int
    text: str = ""
    finish_reason: str = "stop"
    completion_tokens: int = 0
    objects: list[dict] = field(default_factory=list)


def drive(gen, index: int, stops: list[str], cancelled: threading.Event,
          emit: Callable[[int, str], None]) -> ChoiceResult:
    """Worker thread: pull one generation's deltas, apply the stop strings, hand deltas on."""
    matcher = StopText(stops)
    hit = False
    try:
        for delta in gen:
            if cancelled.is_set():
                break
            shown, hit = matcher.feed(delta)
            if shown:
                emit(index, shown)
            if hit:
                break
        if not hit and not cancelled.is_set():
            rest = matcher.flush()
            if rest:
                emit(index, rest)
    finally:
        gen.close()
    answer = gen.answer(matcher.text if hit else None)
    return ChoiceResult(index, answer.text, "stop" if hit else answer.finish_reason,
                        len(gen.tokens), objects_json(answer.objects))


class Completion:
    """The running choices of one request; ``release`` returns its admission when it ends."""

    def __init__(self, request: Request, gens: list, prompt_tokens: int, stops: list[str],
                 executor: Executor, release: Callable[[], None], model: str):
        self.loop = asyncio.get_running_loop()
        self.gens, self.prompt_tokens, self.release = gens, prompt_tokens, release
        self.id = "chatcmpl-" + uuid.uuid4().hex[:24]
        self.head = {"id": self.id, "created": int(time.time()), "model": model}
        self.t0 = time.perf_counter()
        self.cancelled = threading.Event()
        self.events: asyncio.Queue = asyncio.Queue()  # (choice, text) deltas; None: client gone
        self.futures = [self.loop.run_in_executor(executor, drive, g, i, stops, self.cancelled,
                                                  self._emit) for i, g in enumerate(gens)]
        self.watcher = asyncio.ensure_future(self._watch(request))

    def _emit(self, index: int, text: str) -> None:  # from worker threads
        self.loop.call_soon_threadsafe(self.events.put_nowait, (index, text))

    async def _watch(self, request: Request) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        self.cancelled.set()
        for gen in self.gens:
            gen.close()
        self.events.put_nowait(None)

    def usage(self, results: list[ChoiceResult]) -> dict:
        done = sum(r.completion_tokens for r in results)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": done,
                "total_tokens": self.prompt_tokens + done}

    def _finish(self, outcome: str, stream: bool) -> None:
        self.watcher.cancel()
        self.cancelled.set()
        for gen in self.gens:
            gen.close()
        self.release()
        log.info("%s %s n=%d stream=%s prompt_tokens=%d completion_tokens=%d %.3fs", self.id,
                 outcome, len(self.gens), stream, self.prompt_tokens,
                 sum(len(g.tokens) for g in self.gens), time.perf_counter() - self.t0)

    async def json_response(self) -> Response:
        waiter = asyncio.gather(*self.futures)
        try:
            await asyncio.wait([waiter, self.watcher], return_when=asyncio.FIRST_COMPLETED)
            if not waiter.done():  # the client went away
                await asyncio.gather(*self.futures, return_exceptions=True)
                self._finish("disconnected", stream=False)
                return Response(status_code=499)
            results = waiter.result()
        except BaseException:
            self._finish("failed", stream=False)
            raise
        self._finish("ok", stream=False)
        choices = [{"index": r.index, "message": {"role": "assistant", "content": r.text},
                    "finish_reason": r.finish_reason, "logprobs": None, "objects": r.objects}
                   for r in results]
        return JSONResponse({**self.head, "object": "chat.completion", "choices": choices,
                             "usage": self.usage(results)})

    def _chunk(self, choices: list[dict], **extra) -> str:
        return "data: " + json.dumps({**self.head, "object": "chat.completion.chunk",
                                      "choices": choices, **extra}) + "\n\n"

    async def sse(self, include_usage: bool) -> AsyncIterator[str]:
        """Server-sent events: role chunks, deltas, finish chunks with objects, usage, [DONE]."""
        outcome = "disconnected"
        try:
            for i in range(len(self.gens)):
                yield self._chunk([{"index": i, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}])
            async for index, text in self._deltas():
                yield self._chunk([{"index": index, "delta": {"content": text},
                                    "finish_reason": None}])
            if self.cancelled.is_set():
                return
            results = [f.result() for f in self.futures]
            for r in results:
                yield self._chunk([{"index": r.index, "delta": {}, "finish_reason": r.finish_reason,
                                    "objects": r.objects}])
            if include_usage:
                yield self._chunk([], usage=self.usage(results))
            yield "data: [DONE]\n\n"
            outcome = "ok"
        except Exception:
            outcome = "failed"
            log.exception("%s failed while streaming", self.id)
            yield "data: " + json.dumps({"error": {"message": "generation failed",
                                                   "type": "server_error"}}) + "\n\n"
        finally:
            self._finish(outcome, stream=True)

    async def _deltas(self) -> AsyncIterator[tuple[int, str]]:
        """Deltas as the workers emit them, until every choice has ended or the client left."""
        pending = set(self.futures)
        getter = None
        try:
            while pending or not self.events.empty():
                getter = getter or asyncio.ensure_future(self.events.get())
                done, _ = await asyncio.wait({getter, *pending},
                                             return_when=asyncio.FIRST_COMPLETED)
                pending -= done
                if getter in done:
                    item, getter = getter.result(), None
                    if item is None:
                        return
                    yield item
        finally:
            if getter is not None:
                getter.cancel()
