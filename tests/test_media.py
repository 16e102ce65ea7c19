"""The one image loader: every check, on images built in memory."""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from sphinx_mllm.media import (ImageLimits, ImageTooLarge, InvalidImage, UnsupportedImage,
                               image_size, load_image)


def encode(image: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **options)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` with almost no pixel data (a bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16))
            + chunk(b"IEND", b""))


def test_rgb_png_round_trips_exactly():
    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = load_image(encode(Image.fromarray(pixels)))
    assert out.mode == "RGB" and out.size == (7, 5)
    assert np.array_equal(np.asarray(out), pixels)


def test_path_and_bytes_agree(tmp_path):
    image = Image.new("RGB", (4, 3), (10, 20, 30))
    path = tmp_path / "a.png"
    image.save(path)
    assert np.array_equal(np.asarray(load_image(path)), np.asarray(load_image(path.read_bytes())))
    assert image_size(path) == (4, 3)


def test_pixel_limit_is_checked_from_the_header_before_decoding():
    bomb = png_header_only(30_000, 30_000)  # 900 Mpx claimed, a few dozen bytes
    assert len(bomb) < 200
    with pytest.raises(ImageTooLarge, match="pixels"):
        load_image(bomb)
    with pytest.raises(ImageTooLarge, match="pixels"):
        load_image(encode(Image.new("RGB", (100, 100))), ImageLimits(max_pixels=9_999))


def test_byte_limit():
    with pytest.raises(ImageTooLarge, match="bytes"):
        load_image(encode(Image.new("RGB", (64, 64))), ImageLimits(max_bytes=10))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file_is_invalid(fmt):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    with pytest.raises(InvalidImage, match="truncated or corrupt"):
        load_image(data[: len(data) // 2])


def test_empty_and_garbage():
    with pytest.raises(InvalidImage, match="empty"):
        load_image(b"")
    with pytest.raises(UnsupportedImage, match="accepted format"):
        load_image(b"definitely not an image")


def test_format_outside_the_allow_list_is_refused():
    ppm = encode(Image.new("RGB", (4, 4)), "PPM")  # PIL can decode it; we do not accept it
    with pytest.raises(UnsupportedImage, match="accepted format"):
        load_image(ppm)
    assert load_image(ppm, ImageLimits(formats=("PPM",))).size == (4, 4)


def test_cmyk_jpeg_becomes_rgb():
    out = load_image(encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG", quality=95))
    assert out.mode == "RGB"
    r, g, b = np.asarray(out).reshape(-1, 3).mean(0)
    assert r > 200 and g < 60 and b < 60  # pure red in CMYK


def test_16_bit_grey_is_rescaled_not_clipped():
    grey = np.array([[0, 257 * 128, 65535]], dtype=np.uint16)
    out = np.asarray(load_image(encode(Image.fromarray(grey))))
    assert out[0, :, 0].tolist() == [0, 128, 255]


def test_palette_with_transparency_and_alpha_composite_onto_white():
    pal = Image.new("P", (2, 1))
    pal.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    out = np.asarray(load_image(encode(pal, transparency=0)))
    assert out[0].tolist() == [[255, 255, 255], [0, 0, 255]]
    rgba = Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    assert np.asarray(load_image(encode(rgba)))[0, 0].tolist() == [255, 255, 255]
    half = Image.new("LA", (1, 1), (0, 128))
    assert np.asarray(load_image(encode(half)))[0, 0].tolist() == [127, 127, 127]


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 10, 20))  # white strip on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 90° clockwise
    data = encode(image, "JPEG", exif=exif, quality=95)
    out = load_image(data)
    assert out.size == (20, 40) and image_size(data) == (20, 40)
    assert np.asarray(out)[:10].mean() > 200 and np.asarray(out)[-10:].mean() < 50  # now on top
    assert load_image(data, exif_orientation=False).size == (40, 20)


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert np.asarray(load_image(data))[0, 0].tolist() == [255, 0, 0]


def test_zero_size_and_float_images():
    with pytest.raises(InvalidImage, match="zero size"):
        load_image(Image.new("RGB", (0, 5)))
    with pytest.raises(UnsupportedImage, match="floating-point"):
        load_image(encode(Image.new("F", (3, 3), 0.5), "TIFF"))


def test_pil_image_input_is_normalised_and_not_held_to_the_pixel_limit():
    out = load_image(Image.new("L", (3, 2), 9), ImageLimits(max_pixels=4))
    assert out.mode == "RGB" and np.asarray(out)[0, 0].tolist() == [9, 9, 9]


def test_zero_size_header_of_an_accepted_format_is_invalid_not_unsupported():
    with pytest.raises(InvalidImage, match="PNG header that cannot be read"):
        load_image(png_header_only(0, 5))
