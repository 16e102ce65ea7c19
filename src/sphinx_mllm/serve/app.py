"""The FastAPI app: OpenAI-compatible chat completions over a :class:`Pipeline`, and the demo page.

A request goes: API key -> body size -> JSON -> schema -> model name -> admission (bounded, else
503 + Retry-After) -> media policy + image checks -> prompt + context check -> one generation per
choice, each driven by a worker thread through the pipeline's engine (which decodes all running
sequences together). A client that disconnects cancels its generations, which frees their cache
slots. Every failure a client can cause is a 4xx in the OpenAI error shape (:mod:`.errors`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import ValidationError

from ..media import ImageError, load_image
from ..messages import MessageError, parse_messages
from .completion import Completion
from .config import ServeConfig
from .errors import APIError, image_error, message_error
from .media import MediaFetcher, MediaPolicy
from .schema import ChatRequest

log = logging.getLogger("sphinx_mllm.serve")


class Admission:
    """Counts choices in flight; only touched from the event loop, so it needs no lock."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self.in_flight = 0

    def admit(self, n: int) -> bool:
        if self.in_flight + n > self.capacity:
            return False
        self.in_flight += n
        return True

    def release(self, n: int) -> None:
        self.in_flight -= n


def field_path(loc: tuple) -> str | None:
    """A pydantic error location as the request's field path (``messages.0.content.1.text``):
    union branch names (``str``, ``list[...]``) and a tagged union's tag are not fields."""
    parts = [p for p in loc if not (isinstance(p, str) and (p == "str" or "[" in p))]
    parts = [p for i, p in enumerate(parts) if i + 1 == len(parts) or p != parts[i + 1]]
    return ".".join(str(p) for p in parts) or None


def parse_request(body: bytes) -> ChatRequest:
    return ChatRequest.model_validate(json.loads(body))


def _validation_error(err: ValidationError) -> APIError:
    """The most specific schema error (the deepest field) as 422 naming its field; the offending
    value is never echoed."""
    errors = err.errors(include_input=False, include_url=False)
    worst = max(errors, key=lambda e: len(e["loc"]))
    param = field_path(worst["loc"])
    return APIError(422, f"{param}: {worst['msg']}" if param else worst["msg"], param,
                    "invalid_value")


def create_app(pipeline, config: ServeConfig = ServeConfig()) -> FastAPI:
    """The app serving ``pipeline`` (a :class:`~sphinx_mllm.inference.pipeline.Pipeline`)."""
    executor = ThreadPoolExecutor(config.capacity, thread_name_prefix="sphinx-serve")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        executor.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="sphinx-mllm", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    admission = Admission(config.capacity)
    fetcher = MediaFetcher(MediaPolicy(config.local_media, config.remote_hosts,
                                       config.remote_timeout_s, config.limits))
    created = int(time.time())

    def check_key(request: Request) -> None:
        if config.api_key is None:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.encode(),
                                                                  config.api_key.encode()):
            raise APIError(401, "missing or wrong API key (Authorization: Bearer KEY)", None,
                           "invalid_api_key")

    @app.exception_handler(APIError)
    async def api_error(request: Request, err: APIError) -> JSONResponse:
        log.info("%s %s -> %d %s", request.method, request.url.path, err.status, err.code)
        return err.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, err: RequestValidationError) -> JSONResponse:
        worst = max(err.errors(), key=lambda e: len(e["loc"]), default=None)
        param = field_path(worst["loc"]) if worst else None
        message = f"{param}: {worst['msg']}" if worst else "invalid request"
        return APIError(422, message, param, "invalid_value").response()

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": config.model_name, "in_flight": admission.in_flight,
                "capacity": admission.capacity, "busy_slots": pipeline.engine.busy_slots}

    @app.get("/v1/models")
    async def models(request: Request) -> dict:
        check_key(request)
        return {"object": "list", "data": [{"id": config.model_name, "object": "model",
                                            "created": created, "owned_by": "sphinx-mllm"}]}

    async def read_body(request: Request) -> ChatRequest:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > config.max_body_bytes:
            raise APIError(413, f"request body over {config.max_body_bytes} bytes", None,
                           "body_too_large")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > config.max_body_bytes:
                raise APIError(413, f"request body over {config.max_body_bytes} bytes", None,
                               "body_too_large")
        try:  # in a thread: a body of tens of megabytes takes a while to parse
            return await asyncio.to_thread(parse_request, bytes(body))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise APIError(422, f"body: invalid JSON ({err.__class__.__name__} at position "
                           f"{getattr(err, 'pos', '?')})", "body", "invalid_json") from None
        except ValidationError as err:
            raise _validation_error(err) from None

    async def resolve_messages(req: ChatRequest) -> list[dict]:
        """The request's messages in the pipeline's form, each image fetched and checked.

        A second image is refused before anything is fetched or decoded (SPHINX reads one)."""
        images = sum(1 for msg in req.messages if not isinstance(msg.content, str)
                     for part in msg.content if part.type != "text")
        if images > 1:
            raise message_error(MessageError(
                f"SPHINX reads one image per conversation; got {images}", "messages"))
        out = []
        for i, msg in enumerate(req.messages):
            role = "system" if msg.role == "developer" else msg.role
            if isinstance(msg.content, str):
                out.append({"role": role, "content": msg.content})
                continue
            parts = []
            for j, part in enumerate(msg.content):
                if part.type == "text":
                    parts.append({"type": "text", "text": part.text})
                    continue
                param = f"messages.{i}.content.{j}.image_url.url"
                try:
                    data = await fetcher.fetch(part.image_url.url, param)
                    image = await asyncio.get_running_loop().run_in_executor(
                        executor, partial(load_image, data, config.limits))
                except ImageError as err:
                    raise image_error(err, param) from None
                parts.append({"type": "image", "image": image})
            out.append({"role": role, "content": parts})
        return out

    def budget(req: ChatRequest, prompt_len: int) -> int:
        """``max_tokens`` for this request (already within the cap), checked against the
        context length; when left out, the cap or the rest of the context."""
        context = pipeline.max_seq_len
        room = context - prompt_len
        if room < 1:
            raise APIError(400, f"the prompt takes {prompt_len} tokens (visual tokens included) of "
                           f"the model's {context}; shorten the conversation", "messages",
                           "context_length_exceeded")
        asked = req.new_tokens
        if asked is None:
            return min(config.max_tokens_cap, room)
        if asked > room:
            raise APIError(400, f"the prompt takes {prompt_len} tokens (visual tokens included) "
                           f"and max_tokens {asked} more, over the model's context of {context}",
                           "max_tokens", "context_length_exceeded")
        return asked

    def start_choices(prompt, sampling: dict, req: ChatRequest) -> list:
        """One generation per choice (seeds ``seed + i``); all or none are started."""
        gens = []
        try:
            for i in range(req.n):
                seed = None if req.seed is None else req.seed + i
                gens.append(pipeline.start(prompt, **sampling, seed=seed))
        except BaseException:
            for gen in gens:
                gen.close()
            raise
        return gens

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Response:
        check_key(request)
        req = await read_body(request)
        if req.model != config.model_name:
            raise APIError(404, f"model {req.model!r} is not served here; GET /v1/models lists "
                           f"{config.model_name!r}", "model", "model_not_found")
        if req.n > config.max_n:
            raise APIError(422, f"n: at most {config.max_n} on this server", "n", "invalid_value")
        if req.new_tokens is not None and req.new_tokens > config.max_tokens_cap:
            raise APIError(422, f"max_tokens: at most {config.max_tokens_cap} on this server",
                           "max_tokens", "invalid_value")
        if not admission.admit(req.n):
            raise APIError(503, "the server is busy; retry shortly", None, "server_busy",
                           {"Retry-After": str(config.retry_after_s)})
        released = False

        def release() -> None:
            nonlocal released
            if not released:
                released = True
                admission.release(req.n)

        try:
            return await start(request, req, release)
        except BaseException:
            release()
            raise

    async def start(request: Request, req: ChatRequest, release) -> Response:
        loop = asyncio.get_running_loop()
        try:
            conversation = parse_messages(await resolve_messages(req))
            prompt = await loop.run_in_executor(executor, partial(pipeline.prepare,
                                                                  messages=conversation))
        except MessageError as err:
            raise message_error(err) from None
        except ImageError as err:
            raise image_error(err, "messages") from None
        sampling = dict(max_new_tokens=budget(req, len(prompt.ids)), temperature=req.temperature,
                        top_p=req.top_p, top_k=req.top_k)
        gens = await loop.run_in_executor(executor, partial(start_choices, prompt, sampling, req))
        run = Completion(request, gens, len(prompt.ids), req.stop, executor, release,
                         config.model_name)
        if not req.stream:
            return await run.json_response()
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(run.sse(include_usage), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    if config.demo:
        from .demo import add_demo_routes
        add_demo_routes(app, config)
    return app
