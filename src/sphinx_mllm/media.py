"""The one image-loading function: every image that chat, eval, training or the server reads
passes through :func:`load_image`.

It checks before it decodes (byte size, format allow-list, pixel count read from the header, so a
decompression bomb is refused before a single pixel is inflated), then decodes only the first
frame of an animation, applies the EXIF orientation, and turns every mode into 8-bit RGB:

* CMYK, YCbCr, 1-bit and 8-bit grey convert as PIL converts them;
* 16-bit grey (``I;16*``, and ``I`` as 16-bit PNGs open) is rescaled ``v * 255 / 65535``, not
  clipped at 255 as ``Image.convert`` would (which turns most 16-bit images white);
* alpha (RGBA, LA, PA, palette with a transparent index) is composited onto white, as viewers
  show it (our choice: dropping alpha would reveal whatever colour hides under transparent pixels);
* 32-bit float images are refused (no agreed scale).

Errors are typed so that callers can tell the user what is wrong: :class:`InvalidImage`
(corrupt, truncated, empty, zero-size), :class:`ImageTooLarge` (bytes or pixels over the limit),
:class:`UnsupportedImage` (format or mode not accepted). All are ``ValueError``\\s.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")
"""Decoders PIL may try; nothing else is even attempted (fewer decoders, less attack surface)."""

WHITE = (255, 255, 255)

_MAGIC = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",), "GIF": (b"GIF87a", b"GIF89a"),
          "BMP": (b"BM",), "TIFF": (b"II*\x00", b"MM\x00*"), "WEBP": (b"RIFF",)}
"""Leading bytes of the allowed formats: tells a broken header of an accepted format (invalid)
from a format we do not accept (unsupported) when PIL cannot identify the data."""


class ImageError(ValueError):
    """An image that cannot be used; the message says why in words a user understands."""


class InvalidImage(ImageError):
    """Not decodable: empty, zero-size, truncated or corrupt data."""


class ImageTooLarge(ImageError):
    """Over the byte or pixel limit."""


class UnsupportedImage(ImageError):
    """A format outside the allow-list, or a pixel mode with no faithful RGB conversion."""


@dataclass(frozen=True)
class ImageLimits:
    """``max_pixels`` is width x height as the header states it, checked before decoding."""

    max_pixels: int = 40_000_000
    max_bytes: int = 32 * 2**20
    formats: tuple[str, ...] = FORMATS


DEFAULT_LIMITS = ImageLimits()

ImageSource = str | os.PathLike | bytes | Image.Image


def load_image(source: ImageSource, limits: ImageLimits = DEFAULT_LIMITS,
               exif_orientation: bool = True) -> Image.Image:
    """A checked, upright, 8-bit RGB image from a path, encoded bytes or a PIL image.

    The result is fully decoded and detached from any file. Its size is the *oriented* size: the
    frame in which the model's boxes are mapped back to pixels. Raises :class:`ImageError`
    subclasses (see the module docstring). A PIL image is already decoded, so only its size being
    zero is refused, not its pixel count (the caller who decoded it applied its own limits).
    """
    if isinstance(source, Image.Image):
        _check_size(*source.size, None)
        return to_rgb(ImageOps.exif_transpose(source) if exif_orientation else source)
    with _open(source, limits) as img:
        _check_size(*img.size, limits)
        try:
            img.load()  # the current frame: the first one of an animation
        except Image.DecompressionBombError as err:
            raise ImageTooLarge(str(err)) from None
        except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
            raise InvalidImage(f"the image data is truncated or corrupt ({err})") from None
        upright = ImageOps.exif_transpose(img) if exif_orientation else img
        return to_rgb(upright)


def image_size(source: str | os.PathLike | bytes, limits: ImageLimits = DEFAULT_LIMITS,
               exif_orientation: bool = True) -> tuple[int, int]:
    """(width, height) as :func:`load_image` would return it, read from the header only."""
    with _open(source, limits) as img:
        _check_size(*img.size, limits)
        width, height = img.size
        if exif_orientation and img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # 90° turns
            return height, width
        return width, height


def decode_data_url(url: str, limits: ImageLimits = DEFAULT_LIMITS) -> bytes:
    """The bytes of a ``data:[<media type>];base64,<payload>`` URL (size checked before decoding).

    The media type is not trusted; :func:`load_image` sniffs the format from the bytes.
    """
    header, comma, payload = url.partition(",")
    if not header.lower().startswith("data:") or not comma:
        raise InvalidImage("not a data: URL (expected data:image/...;base64,...)")
    if not header.lower().endswith(";base64"):
        raise InvalidImage("data: URLs must be base64-encoded (data:image/...;base64,...)")
    payload = "".join(payload.split())
    if len(payload) // 4 * 3 > limits.max_bytes:
        raise ImageTooLarge(f"the data: URL holds about {len(payload) // 4 * 3} bytes; the limit "
                            f"is {limits.max_bytes}")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as err:
        raise InvalidImage(f"the data: URL is not valid base64 ({err})") from None


def _open(source: str | os.PathLike | bytes, limits: ImageLimits) -> Image.Image:
    """``Image.open`` on the allowed decoders, after the byte checks; reads the header only."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        size, target, name = len(source), io.BytesIO(source), "image data"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {path}")
        size, target, name = path.stat().st_size, path, str(path)
    if size == 0:
        raise InvalidImage(f"{name} is empty (0 bytes)")
    if size > limits.max_bytes:
        raise ImageTooLarge(f"{name} is {size} bytes; the limit is {limits.max_bytes}")
    try:
        return Image.open(target, formats=limits.formats)
    except UnidentifiedImageError:
        looks = _looks_like(source)
        if looks in limits.formats:
            raise InvalidImage(f"{name}: a {looks} header that cannot be read (zero width or "
                               "height, or corrupt)") from None
        raise UnsupportedImage(f"{name} is not an image in an accepted format "
                               f"({', '.join(limits.formats)})") from None
    except Image.DecompressionBombError as err:
        raise ImageTooLarge(str(err)) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as err:
        raise InvalidImage(f"{name}: unreadable image header ({err})") from None


def _looks_like(source: str | os.PathLike | bytes) -> str | None:
    """The allowed format whose signature the data starts with, if any."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        head = bytes(source[:12])
    else:
        with open(source, "rb") as f:
            head = f.read(12)
    return next((fmt for fmt, marks in _MAGIC.items() if head.startswith(marks)), None)


def _check_size(width: int, height: int, limits: ImageLimits | None) -> None:
    """Zero size is invalid; over ``limits.max_pixels`` too large (None: no pixel limit)."""
    if width <= 0 or height <= 0:
        raise InvalidImage(f"the image has zero size ({width}x{height})")
    if limits is not None and width * height > limits.max_pixels:
        raise ImageTooLarge(f"the image has {width}x{height} = {width * height} pixels; the limit "
                            f"is {limits.max_pixels}")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any accepted mode -> 8-bit RGB (see the module docstring for each mode's rule)."""
    mode = image.mode
    if mode == "RGB":
        return image.copy()
    if mode.startswith("I;16") or mode == "I":
        grey = np.asarray(image).astype(np.int64)
        grey = (np.clip(grey, 0, 65535) * 255 + 32767) // 65535
        return Image.fromarray(grey.astype(np.uint8)).convert("RGB")
    if mode == "F":
        raise UnsupportedImage("32-bit floating-point images are not supported")
    if mode == "P" and "transparency" in image.info or mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, WHITE + (255,))
        return Image.alpha_composite(canvas, rgba).convert("RGB")
    try:
        return image.convert("RGB")
    except (ValueError, OSError) as err:
        raise UnsupportedImage(f"image mode {mode} cannot be converted to RGB ({err})") from None


__all__ = ["DEFAULT_LIMITS", "FORMATS", "ImageError", "ImageLimits", "ImageTooLarge",
           "InvalidImage", "UnsupportedImage", "decode_data_url", "image_size", "load_image",
           "to_rgb"]
