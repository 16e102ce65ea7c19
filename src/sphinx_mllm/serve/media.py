"""Where the server may read an ``image_url`` from: its media policy.

* ``data:`` URLs: always (size checked before the base64 is decoded);
* ``file://`` URLs: only with ``--allow-local-media DIR``, and only files under DIR after every
  symlink is resolved;
* ``http(s)://`` URLs: only with ``--allow-remote-media HOST ...``, only those hosts (``host`` or
  ``host:port``), with a timeout, a byte cap read as the body streams in, and redirects followed by
  hand (at most :data:`MAX_REDIRECTS`), each hop checked again: a redirect must stay on the
  allow-list and must not lead to a private, loopback, link-local or otherwise non-global address.

The bytes go on to :func:`sphinx_mllm.media.load_image`, which does every image check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from ..media import ImageLimits, ImageTooLarge, decode_data_url
from .errors import APIError

MAX_REDIRECTS = 3


@dataclass(frozen=True)
class MediaPolicy:
    local_root: Path | None = None
    remote_hosts: frozenset[str] = field(default_factory=frozenset)
    timeout_s: float = 10.0
    limits: ImageLimits = ImageLimits()


def _host_key(url: httpx.URL) -> tuple[str, str]:
    host = url.host.lower()
    default = 443 if url.scheme == "https" else 80
    return host, f"{host}:{url.port or default}"


async def _is_global(host: str) -> bool:
    """Every address the host resolves to is a global (public) one."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_global for info in infos)


class MediaFetcher:
    """Resolves one ``image_url`` to bytes under a :class:`MediaPolicy`.

    Raises :class:`APIError` for policy and fetch failures, :class:`~sphinx_mllm.media.ImageError`
    for bad or oversized data."""

    def __init__(self, policy: MediaPolicy):
        self.policy = policy

    async def fetch(self, url: str, param: str) -> bytes:
        scheme = url.split(":", 1)[0].lower() if ":" in url else ""
        # decoding megabytes of base64 or reading a file would stall the event loop: threads
        if scheme == "data":
            return await asyncio.to_thread(decode_data_url, url, self.policy.limits)
        if scheme == "file":
            return await asyncio.to_thread(self._local, url, param)
        if scheme in ("http", "https"):
            return await self._remote(url, param)
        raise APIError(400, f"unsupported image URL scheme {scheme or '(none)'!r}; use data:, "
                       "file: or http(s):", param, "invalid_image_url")

    def _local(self, url: str, param: str) -> bytes:
        root = self.policy.local_root
        if root is None:
            raise APIError(403, "file: URLs are off (start the server with "
                           "--allow-local-media DIR)", param, "media_not_allowed")
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise APIError(400, "file: URLs must name a local path (file:///...)", param,
                           "invalid_image_url")
        name = unquote(parts.path)
        if "\x00" in name:
            raise APIError(400, "file: URL with a NUL byte", param, "invalid_image_url")
        try:
            path = Path(name).resolve()
            if not path.is_relative_to(root.resolve()):
                raise APIError(403, "file: URL outside the allowed media directory", param,
                               "media_not_allowed")
            with open(path, "rb") as f:  # one descriptor: the size checked is the file read
                size = os.fstat(f.fileno()).st_size
                if size > self.policy.limits.max_bytes:
                    raise ImageTooLarge(f"the file is {size} bytes; the limit is "
                                        f"{self.policy.limits.max_bytes}")
                return f.read()
        except PermissionError:
            raise APIError(403, "file: URL not readable", param, "media_not_allowed") from None
        except (OSError, ValueError):  # no such file, a directory, a name too long ...
            raise APIError(400, "file: URL names no readable file", param,
                           "invalid_image_url") from None

    def _allowed(self, url: httpx.URL) -> bool:
        host, host_port = _host_key(url)
        return host in self.policy.remote_hosts or host_port in self.policy.remote_hosts

    async def _remote(self, url: str, param: str) -> bytes:
        if not self.policy.remote_hosts:
            raise APIError(403, "http(s) image URLs are off (start the server with "
                           "--allow-remote-media HOST ...)", param, "media_not_allowed")
        timeout = httpx.Timeout(self.policy.timeout_s)
        async with httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                                     trust_env=False) as client:
            try:
                current = httpx.URL(url)
            except httpx.InvalidURL:
                raise APIError(400, "malformed image URL", param, "invalid_image_url") from None
            for hop in range(MAX_REDIRECTS + 1):
                if not self._allowed(current):
                    raise APIError(403, f"host {current.host!r} is not on the remote media "
                                   "allow-list", param, "media_not_allowed")
                if hop and not await _is_global(current.host):
                    raise APIError(403, "redirect to a private or loopback address refused",
                                   param, "media_not_allowed")
                try:
                    got = await asyncio.wait_for(self._get(client, current, param),
                                                 self.policy.timeout_s)
                except (asyncio.TimeoutError, httpx.TimeoutException):
                    raise APIError(400, f"fetching the image timed out after "
                                   f"{self.policy.timeout_s:g} s", param,
                                   "image_fetch_failed") from None
                except httpx.HTTPError as err:
                    raise APIError(400, f"fetching the image failed ({type(err).__name__})",
                                   param, "image_fetch_failed") from None
                if isinstance(got, bytes):
                    return got
                current = got
        raise APIError(400, f"more than {MAX_REDIRECTS} redirects", param, "image_fetch_failed")

    async def _get(self, client: httpx.AsyncClient, url: httpx.URL,
                   param: str) -> bytes | httpx.URL:
        """The body (at most the byte cap), or where a redirect points."""
        cap = self.policy.limits.max_bytes
        async with client.stream("GET", url) as response:
            if response.is_redirect:
                return httpx.URL(urljoin(str(url), response.headers.get("location", "")))
            if response.status_code != 200:
                raise APIError(400, f"fetching the image gave HTTP {response.status_code}", param,
                               "image_fetch_failed")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise ImageTooLarge(f"the remote image is {declared} bytes; the limit is {cap}")
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > cap:
                    raise ImageTooLarge(f"the remote image exceeds {cap} bytes")
            return bytes(body)
