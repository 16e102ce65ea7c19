"""Load: 64 concurrent streaming clients on loopback, each with its own image and question.

Every response must be complete (a finish chunk and ``[DONE]``), none lost, none crossed: each
streamed answer equals the same request run alone through the pipeline (greedy). The server must
be idle and healthy afterwards. Throughput figures come from benchmarks/serve_load.py, not here.
"""

import asyncio
import json
import time

import httpx
import pytest
import torch

import sphinx_mllm
from sphinx_mllm.serve import DEFAULT_MODEL, ServeConfig

from .helpers import data_url, live_server, picture

CLIENTS = 64
NEW_TOKENS = 16
QUESTIONS = ("What is in the image?", "Describe the image.", "What colour is the box?",
             "Where is the rectangle?", "Is there a person?", "How many objects are there?",
             "Detect all objects shown in the image.", "Provide a one-sentence caption.")
LIMIT_S = 60


@pytest.fixture(scope="module")
def default_pipe():
    """The model ``sphinx-mllm serve`` serves by default."""
    torch.manual_seed(0)
    return sphinx_mllm.load(DEFAULT_MODEL, max_batch=16)


def request(i: int) -> tuple[bytes, str]:
    return picture(100 + i, size=(40 + i % 7 * 8, 30 + i % 5 * 8)), QUESTIONS[i % len(QUESTIONS)]


async def one_client(client: httpx.AsyncClient, url: str, i: int) -> dict:
    image, question = request(i)
    body = {"model": DEFAULT_MODEL, "max_tokens": NEW_TOKENS, "stream": True, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(image)}},
                                     {"type": "text", "text": question}]}]}
    text, finish, done, ids = "", None, False, set()
    async with client.stream("POST", url + "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200, await r.aread()
        async for line in r.aiter_lines():
            if not line:
                continue
            if line == "data: [DONE]":
                done = True
                continue
            chunk = json.loads(line.removeprefix("data: "))
            ids.add(chunk["id"])
            for choice in chunk["choices"]:
                text += choice["delta"].get("content") or ""
                finish = choice["finish_reason"] or finish
    return {"text": text, "finish": finish, "done": done, "ids": ids}


async def all_clients(url: str) -> list[dict]:
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)
    async with httpx.AsyncClient(timeout=LIMIT_S, limits=limits) as client:
        return await asyncio.wait_for(
            asyncio.gather(*(one_client(client, url, i) for i in range(CLIENTS))), LIMIT_S)


def test_64_concurrent_streaming_clients_get_their_own_complete_answers(default_pipe):
    alone = []
    for i in range(CLIENTS):
        image, question = request(i)
        alone.append(default_pipe.chat(image, question, max_new_tokens=NEW_TOKENS))
    assert len({a.text for a in alone}) > CLIENTS // 2  # distinct enough to show a crossing
    config = ServeConfig(model_name=DEFAULT_MODEL, max_batch=16, max_queue=64)
    with live_server(default_pipe, config) as url:
        t0 = time.monotonic()
        results = asyncio.run(all_clients(url))
        assert time.monotonic() - t0 < LIMIT_S
        for i, (got, want) in enumerate(zip(results, alone)):
            assert got["done"] and len(got["ids"]) == 1, i
            assert got["text"] == want.text, i
            assert got["finish"] == want.finish_reason, i
        assert len({r["ids"].pop() for r in results}) == CLIENTS
        health = httpx.get(url + "/health").json()
        assert health == {**health, "status": "ok", "in_flight": 0, "busy_slots": 0}
