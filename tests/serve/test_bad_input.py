"""Bad input: every case gets its documented status code, and the server keeps answering.

Also: a full queue answers 503 with Retry-After, a client that disconnects frees its slot, the
remote-media policy holds (allow-list, byte cap, timeout, no redirect to loopback), and no log
line holds image bytes or the API key.
"""

import http.server
import logging
import threading
import time

import httpx
import numpy as np
import pytest
from PIL import Image

from sphinx_mllm.media import ImageLimits
from sphinx_mllm.serve import ServeConfig

from .helpers import MODEL, data_url, encode, live_server, picture, user_message

KEY = "k-9f8e7d6c5b4a"
SLOW_S = 2.0


def png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A PNG whose header claims width x height (900 Mpx) with almost no data."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 9))
            + chunk(b"IEND", b""))


NOISE = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (300, 300, 3),
                                                                 dtype=np.uint8)))  # ~270 kB
SMALL = picture(3)


class MediaHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        if self.path == "/ok.png":
            self._send(200, SMALL)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{self.server.server_port}/ok.png")
            self.end_headers()
        elif self.path == "/big.png":
            self._send(200, NOISE)
        elif self.path == "/slow.png":
            time.sleep(SLOW_S)
            self._send(200, SMALL)
        else:
            self._send(404, b"missing")

    def _send(self, status: int, body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def media_host():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), MediaHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record):
        self.lines.append(self.format(record))


@pytest.fixture(scope="module")
def logs():
    handler = Collect()
    names = ["", "sphinx_mllm", "uvicorn", "uvicorn.error", "uvicorn.access"]
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    yield handler.lines
    for lg, level in zip(loggers, levels):
        lg.removeHandler(handler)
        lg.setLevel(level)


@pytest.fixture(scope="module")
def server(pipe, media_host, tmp_path_factory, logs):
    media = tmp_path_factory.mktemp("media")
    (media / "ok.png").write_bytes(SMALL)
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.png").write_bytes(SMALL)
    config = ServeConfig(model_name=MODEL, api_key=KEY, max_body_bytes=1_000_000,
                         limits=ImageLimits(max_pixels=1_000_000, max_bytes=200_000),
                         local_media=media, remote_hosts=frozenset({media_host}),
                         remote_timeout_s=0.3, max_n=4, max_tokens_cap=64)
    with live_server(pipe, config) as url:
        yield {"url": url, "media": media, "outside": outside, "host": media_host}


def post(server, body=None, *, content=None, key=KEY, headers=None):
    auth = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.post(server["url"] + "/v1/chat/completions", json=body, content=content,
                      headers={**auth, **(headers or {})}, timeout=30)


def image_body(url: str, text: str = "What is it?", **extra) -> dict:
    return {"model": MODEL, "max_tokens": 4, **extra, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": text}]}]}


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (20, 10), (0, 200, 200, 0)), "JPEG")


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:])


def sixteen_bit() -> bytes:
    return encode(Image.fromarray(np.full((6, 9), 40_000, dtype=np.uint16)))


def palette_alpha() -> bytes:
    return encode(Image.new("RGBA", (5, 5), (10, 20, 30, 0)).convert("P"), transparency=0)


def exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8
    return encode(Image.new("RGB", (30, 10), (90, 90, 90)), "JPEG", exif=exif)


# (case id, request body builder, status, error param or None, error code or None)
CASES = [
    ("invalid json", lambda s: dict(content=b"{not json"), 422, "body", "invalid_json"),
    ("body too large", lambda s: dict(content=b"x" * 1_200_000), 413, None, "body_too_large"),
    ("missing messages", lambda s: {"model": MODEL}, 422, "messages", None),
    ("temperature out of range", lambda s: {"model": MODEL, "temperature": 9,
                                            "messages": [user_message("hi")]}, 422, "temperature",
     None),
    ("top_p zero", lambda s: {"model": MODEL, "top_p": 0, "messages": [user_message("hi")]}, 422,
     "top_p", None),
    ("bad part type", lambda s: {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "audio", "audio": "x"}]}]}, 422, "messages.0.content.0", None),
    ("image part without url", lambda s: {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {}}]}]}, 422, "messages.0.content.0.image_url.url",
     None),
    ("text part without text", lambda s: {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "text"}]}]}, 422, "messages.0.content.0.text", None),
    ("bad role", lambda s: {"model": MODEL, "messages": [{"role": "tool", "content": "x"}]}, 422,
     "messages.0.role", None),
    ("too many stops", lambda s: {"model": MODEL, "stop": list("abcde"),
                                  "messages": [user_message("hi")]}, 422, "stop", None),
    ("n over the cap", lambda s: {"model": MODEL, "n": 5, "messages": [user_message("hi")]}, 422,
     "n", "invalid_value"),
    ("max_tokens over the cap", lambda s: {"model": MODEL, "max_tokens": 65,
                                           "messages": [user_message("hi")]}, 422, "max_tokens",
     "invalid_value"),
    ("unsupported option", lambda s: {"model": MODEL, "logprobs": True,
                                      "messages": [user_message("hi")]}, 422, "logprobs", None),
    ("unknown model", lambda s: {"model": "gpt-4o", "messages": [user_message("hi")]}, 404,
     "model", "model_not_found"),
    ("last message not the user's", lambda s: {"model": MODEL, "messages": [
        user_message("hi"), {"role": "assistant", "content": "yo"}]}, 400, "messages.1",
     "invalid_messages"),
    ("two images", lambda s: {"model": MODEL, "messages": [user_message("a", SMALL),
                                                           user_message("b", SMALL)]}, 400,
     "messages", "invalid_messages"),
    ("bad base64", lambda s: image_body("data:image/png;base64,%%%"), 400,
     "messages.0.content.0.image_url.url", "invalid_image"),
    ("not base64 data url", lambda s: image_body("data:image/png,rawbytes"), 400,
     "messages.0.content.0.image_url.url", "invalid_image"),
    ("empty image", lambda s: image_body("data:image/png;base64,"), 400,
     "messages.0.content.0.image_url.url", "invalid_image"),
    ("truncated image", lambda s: image_body(data_url(NOISE[:5000])), 400,
     "messages.0.content.0.image_url.url", "invalid_image"),
    ("zero-size image", lambda s: image_body(data_url(png_bomb(0, 40))), 400,
     "messages.0.content.0.image_url.url", "invalid_image"),
    ("not an image", lambda s: image_body(data_url(b"hello world")), 415,
     "messages.0.content.0.image_url.url", "unsupported_image"),
    ("format not allowed", lambda s: image_body(data_url(encode(Image.new("RGB", (4, 4)), "PPM"))),
     415, "messages.0.content.0.image_url.url", "unsupported_image"),
    ("float image", lambda s: image_body(data_url(encode(Image.new("F", (4, 4)), "TIFF"))), 415,
     "messages.0.content.0.image_url.url", "unsupported_image"),
    ("decompression bomb", lambda s: image_body(data_url(png_bomb())), 413,
     "messages.0.content.0.image_url.url", "image_too_large"),
    ("image bytes over the limit", lambda s: image_body(data_url(NOISE)), 413,
     "messages.0.content.0.image_url.url", "image_too_large"),
    ("unknown url scheme", lambda s: image_body("ftp://example.org/a.png"), 400,
     "messages.0.content.0.image_url.url", "invalid_image_url"),
    ("file outside the media dir", lambda s: image_body(
        (s["outside"] / "secret.png").as_uri()), 403, "messages.0.content.0.image_url.url",
     "media_not_allowed"),
    ("file escaping by ..", lambda s: image_body(
        "file://" + str(s["media"]) + "/../" + s["outside"].name + "/secret.png"), 403,
     "messages.0.content.0.image_url.url", "media_not_allowed"),
    ("remote host not allowed", lambda s: image_body("http://localhost:9/a.png"), 403,
     "messages.0.content.0.image_url.url", "media_not_allowed"),
    ("remote redirect to loopback", lambda s: image_body(f"http://{s['host']}/redirect"), 403,
     "messages.0.content.0.image_url.url", "media_not_allowed"),
    ("remote over the byte cap", lambda s: image_body(f"http://{s['host']}/big.png"), 413,
     "messages.0.content.0.image_url.url", "image_too_large"),
    ("remote timeout", lambda s: image_body(f"http://{s['host']}/slow.png"), 400,
     "messages.0.content.0.image_url.url", "image_fetch_failed"),
    ("remote 404", lambda s: image_body(f"http://{s['host']}/nope.png"), 400,
     "messages.0.content.0.image_url.url", "image_fetch_failed"),
    ("prompt over the context", lambda s: {"model": MODEL, "messages": [
        user_message("tree house " * 1200)]}, 400, "messages", "context_length_exceeded"),
]

ACCEPTED = [  # modes and sources that must work (200)
    ("cmyk", lambda s: image_body(data_url(cmyk_jpeg(), "image/jpeg"))),
    ("16-bit grey", lambda s: image_body(data_url(sixteen_bit()))),
    ("palette with transparency", lambda s: image_body(data_url(palette_alpha()))),
    ("exif rotated", lambda s: image_body(data_url(exif_rotated(), "image/jpeg"))),
    ("animated gif", lambda s: image_body(data_url(animated_gif(), "image/gif"))),
    ("file inside the media dir", lambda s: image_body((s["media"] / "ok.png").as_uri())),
    ("remote allowed host", lambda s: image_body(f"http://{s['host']}/ok.png")),
]


@pytest.mark.parametrize("name, build, status, param, code", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_its_status(server, name, build, status, param, code):
    built = build(server)
    r = post(server, content=built["content"]) if "content" in built else post(server, built)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["param"] == param and error["message"]
    if code is not None:
        assert error["code"] == code
    assert len(r.content) < 2000  # never echoes the request (images) back


@pytest.mark.parametrize("name, build", ACCEPTED, ids=[c[0] for c in ACCEPTED])
def test_accepted_images_get_answers(server, name, build):
    r = post(server, build(server))
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["finish_reason"] in ("stop", "length")


def test_api_key(server):
    assert post(server, image_body(data_url(SMALL)), key=None).status_code == 401
    wrong = post(server, image_body(data_url(SMALL)), key="nope")
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(server["url"] + "/v1/models").status_code == 401
    assert httpx.get(server["url"] + "/health").status_code == 200  # for load balancers


def test_max_tokens_over_the_remaining_context(server, pipe):
    def length(words: int) -> int:
        return len(pipe.prepare(messages=[user_message("tree " * words)]).ids)

    low, high = 0, pipe.max_seq_len  # the most words whose prompt leaves < 64 tokens free
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if length(mid) <= pipe.max_seq_len - 10 else (low, mid - 1)
    text = "tree " * low
    assert pipe.max_seq_len - 64 < length(low) <= pipe.max_seq_len - 10
    r = post(server, {"model": MODEL, "max_tokens": 64, "messages": [user_message(text)]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
    assert r.json()["error"]["code"] == "context_length_exceeded"


def test_server_still_healthy_and_logs_hold_no_secrets(server, logs):
    health = httpx.get(server["url"] + "/health").json()
    assert health["status"] == "ok" and health["in_flight"] == 0
    r = post(server, image_body(data_url(SMALL)))
    assert r.status_code == 200
    text = "\n".join(logs)
    assert "chatcmpl-" in text  # the request log is there...
    assert KEY not in text  # ...without the key
    for blob in (SMALL, NOISE, cmyk_jpeg()):
        assert data_url(blob)[30:90] not in text  # ...and without image bytes


def test_full_queue_answers_503_with_retry_after(slow_pipe):
    with live_server(slow_pipe, ServeConfig(model_name=MODEL, max_batch=1, max_queue=0,
                                            max_tokens_cap=1000, retry_after_s=2)) as url:
        body = {"model": MODEL, "max_tokens": 900, "stream": True, "messages": [user_message("go")]}
        with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as first:
            lines = first.iter_lines()
            next(lines), next(lines), next(lines)  # role chunk, then tokens: it is decoding
            busy = httpx.post(url + "/v1/chat/completions", timeout=30, json={
                "model": MODEL, "max_tokens": 2, "messages": [user_message("hi")]})
            assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
            assert busy.json()["error"]["code"] == "server_busy"
        wait_idle(url)  # closing the first stream freed its slot
        ok = httpx.post(url + "/v1/chat/completions", timeout=30, json={
            "model": MODEL, "max_tokens": 2, "messages": [user_message("hi")]})
        assert ok.status_code == 200


def wait_idle(url: str, within_s: float = 3.0) -> dict:
    deadline = time.monotonic() + within_s
    while True:
        health = httpx.get(url + "/health").json()
        if health["in_flight"] == 0 and health["busy_slots"] == 0:
            return health
        assert time.monotonic() < deadline, f"not idle after {within_s} s: {health}"
        time.sleep(0.02)


@pytest.mark.parametrize("stream", [True, False])
def test_disconnect_cancels_and_frees_the_slot(slow_pipe, logs, stream):
    with live_server(slow_pipe, ServeConfig(model_name=MODEL, max_tokens_cap=1000)) as url:
        body = {"model": MODEL, "max_tokens": 950, "stream": stream,
                "messages": [user_message("go on")]}
        seen = len(logs)
        if stream:
            with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=30) as r:
                lines = r.iter_lines()
                next(lines), next(lines), next(lines)
        else:
            with pytest.raises(httpx.ReadTimeout):
                httpx.post(url + "/v1/chat/completions", json=body, timeout=0.5)
        t0 = time.monotonic()
        wait_idle(url, within_s=2.0)  # 950 tokens would take about 7 s
        assert time.monotonic() - t0 < 2.0
        [line] = {x for x in logs[seen:] if "chatcmpl-" in x}  # (root and package handlers)
        assert " disconnected " in line
        assert int(line.split("completion_tokens=")[1].split()[0]) < 950



def test_a_second_image_is_refused_before_any_is_fetched_or_decoded(server):
    """Each image is over the pixel limit (413 if decoded): the count is checked first."""
    big = encode(Image.new("RGB", (1500, 1500), (9, 9, 9)))
    body = {"model": MODEL, "messages": [user_message("a", big), user_message("b", big)]}
    r = post(server, body)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_messages", r.text


def test_out_of_range_seed_and_vanishing_temperature(server):
    assert post(server, image_body(data_url(SMALL), seed=2**64)).status_code == 422
    r = post(server, image_body(data_url(SMALL), temperature=1e-45))
    assert r.status_code == 200, r.text  # greedy, not NaN probabilities


def test_file_urls_that_cannot_name_a_readable_file(server):
    link = server["media"] / "link.png"
    if not link.exists():
        link.symlink_to(server["outside"] / "secret.png")
    assert post(server, image_body(link.as_uri())).status_code == 403  # symlink out of the dir
    nul = "file://" + str(server["media"]) + "/a%00b.png"
    assert post(server, image_body(nul)).status_code == 400
    long = (server["media"] / ("x" * 5000)).as_uri()
    assert post(server, image_body(long)).status_code == 400
    assert post(server, image_body(data_url(SMALL))).status_code == 200  # still healthy
