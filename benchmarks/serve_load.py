"""Serving load: N concurrent streaming clients vs the same N requests one at a time, in one run.

Starts ``sphinx-mllm serve`` as a subprocess on a free loopback port, then sends N streaming chat
requests (each its own image and question, greedy, ``max_tokens`` fixed) from this process: first
one after another (the baseline: serving the same requests one at a time), then all at once.
Reported for both: requests/s, latency p50 / p90 / p99 (request sent -> last byte), time to first
content p50 / p90, completion tokens/s, and the throughput ratio concurrent / one at a time. Every
concurrent answer is also checked against its one-at-a-time answer (greedy: they must be equal).

    python benchmarks/serve_load.py                       # toy-1k, 64 clients, 32 tokens
    python benchmarks/serve_load.py --clients 64 --new-tokens 32 --max-batch 16 --json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import time

import httpx
import numpy as np
from PIL import Image

QUESTIONS = ("What is in the image?", "Describe the image.", "What colour is the box?",
             "Where is the rectangle?", "How many objects are there?",
             "Detect all objects shown in the image.", "Provide a one-sentence caption.",
             "Is there a person?")


def image_url(seed: int) -> str:
    rng = np.random.default_rng(seed)
    w, h = 96 + seed % 5 * 32, 64 + seed % 7 * 24
    image = Image.new("RGB", (w, h), tuple(int(v) for v in rng.integers(0, 256, 3)))
    x, y = int(rng.integers(0, w // 2)), int(rng.integers(0, h // 2))
    image.paste(tuple(int(v) for v in rng.integers(0, 256, 3)), (x, y, x + w // 3, y + h // 3))
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def body(model: str, i: int, new_tokens: int) -> dict:
    return {"model": model, "max_tokens": new_tokens, "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": image_url(i)}},
                {"type": "text", "text": QUESTIONS[i % len(QUESTIONS)]}]}]}


async def one(client: httpx.AsyncClient, url: str, payload: dict) -> dict:
    t0 = time.perf_counter()
    first, text, tokens, status = None, "", 0, None
    async with client.stream("POST", url + "/v1/chat/completions", json=payload) as r:
        status = r.status_code
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
            for choice in chunk.get("choices", []):
                delta = choice.get("delta", {}).get("content")
                if delta:
                    first = first or time.perf_counter()
                    text += delta
    end = time.perf_counter()
    return {"status": status, "latency": end - t0, "ttfc": (first or end) - t0, "text": text,
            "tokens": tokens}


async def run(url: str, payloads: list[dict], concurrent: bool) -> tuple[list[dict], float]:
    limits = httpx.Limits(max_connections=len(payloads), max_keepalive_connections=len(payloads))
    async with httpx.AsyncClient(timeout=600, limits=limits) as client:
        t0 = time.perf_counter()
        if concurrent:
            results = await asyncio.gather(*(one(client, url, p) for p in payloads))
        else:
            results = [await one(client, url, p) for p in payloads]
        return list(results), time.perf_counter() - t0


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def summary(results: list[dict], wall: float) -> dict:
    lat = [r["latency"] for r in results]
    ttfc = [r["ttfc"] for r in results]
    return {"requests_per_s": len(results) / wall, "wall_s": wall,
            "latency_p50_s": pct(lat, 50), "latency_p90_s": pct(lat, 90),
            "latency_p99_s": pct(lat, 99), "ttfc_p50_s": pct(ttfc, 50), "ttfc_p90_s": pct(ttfc, 90),
            "tokens_per_s": sum(r["tokens"] for r in results) / wall,
            "mean_latency_s": statistics.fmean(lat)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="toy-1k")
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--max-batch", type=int, default=16, help="the server's engine slots")
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "sphinx_mllm.cli", "serve", "--model", args.model,
           "--port", str(port), "--max-batch", str(args.max_batch),
           "--max-queue", str(max(64, args.clients)), "--log-level", "warning"]
    cmd += ["--device", args.device] if args.device else []
    cmd += ["--dtype", args.dtype] if args.dtype else []
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                model = httpx.get(url + "/health", timeout=1).json()["model"]
                break
            except httpx.HTTPError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("server did not start:\n" + server.stderr.read().decode())
                time.sleep(0.2)
        payloads = [body(model, i, args.new_tokens) for i in range(args.clients)]
        asyncio.run(run(url, payloads[:2], concurrent=False))  # warm-up
        alone, alone_wall = asyncio.run(run(url, payloads, concurrent=False))
        together, together_wall = asyncio.run(run(url, payloads, concurrent=True))
    finally:
        server.terminate()
        server.wait(30)

    bad = sum(r["status"] != 200 for r in alone + together)
    mismatched = sum(a["text"] != b["text"] for a, b in zip(alone, together))
    seq, conc = summary(alone, alone_wall), summary(together, together_wall)
    out = {"model": args.model, "clients": args.clients, "new_tokens": args.new_tokens,
           "max_batch": args.max_batch, "device": args.device or "default",
           "one_at_a_time": seq, "concurrent": conc,
           "throughput_ratio": conc["requests_per_s"] / seq["requests_per_s"],
           "failed_requests": bad, "answers_differing_from_one_at_a_time": mismatched,
           "cpu_count": os.cpu_count()}
    if args.json:
        print(json.dumps(out))
        return
    print(f"{args.model}: {args.clients} streaming requests, {args.new_tokens} tokens each, "
          f"engine max_batch {args.max_batch}, {os.cpu_count()} CPUs")
    print(f"{'':22}{'one at a time':>16}{'concurrent':>14}")
    for key, label in [("requests_per_s", "requests/s"), ("tokens_per_s", "tokens/s"),
                       ("latency_p50_s", "latency p50 (s)"), ("latency_p90_s", "latency p90 (s)"),
                       ("latency_p99_s", "latency p99 (s)"), ("ttfc_p50_s", "first content p50"),
                       ("ttfc_p90_s", "first content p90"), ("wall_s", "wall (s)")]:
        print(f"{label:22}{seq[key]:16.3f}{conc[key]:14.3f}")
    print(f"throughput ratio (concurrent / one at a time): {out['throughput_ratio']:.2f}x; "
          f"failed requests: {bad}; answers differing: {mismatched}")


if __name__ == "__main__":
    main()
