"""Helpers of the serving tests: a live server on loopback and small request pieces."""

import base64
import contextlib
import io
import socket
import threading
import time

import numpy as np
import uvicorn
from PIL import Image

from sphinx_mllm.serve import ServeConfig, create_app

MODEL = "toy"


@contextlib.contextmanager
def live_server(pipeline, config: ServeConfig):
    """Yield the base URL of ``create_app(pipeline, config)`` served on 127.0.0.1."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(pipeline, config), log_level="warning",
                                           timeout_graceful_shutdown=2))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def picture(seed: int, size: tuple[int, int] = (48, 32)) -> bytes:
    """A distinct small PNG per seed: a coloured background with a rectangle."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", size, tuple(int(v) for v in rng.integers(0, 256, 3)))
    x, y = int(rng.integers(0, size[0] // 2)), int(rng.integers(0, size[1] // 2))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    image.paste(colour, (x, y, x + size[0] // 3, y + size[1] // 3))
    return encode(image)


def user_message(text: str, image: bytes | None = None) -> dict:
    parts = [{"type": "text", "text": text}]
    if image is not None:
        parts.insert(0, {"type": "image_url", "image_url": {"url": data_url(image)}})
    return {"role": "user", "content": parts}
