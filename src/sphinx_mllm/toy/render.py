"""Drawing a :class:`~sphinx_mllm.toy.world.Picture` into pixels (PIL RGB image).

Rendering is deterministic: every random choice comes from the picture's ``texture_seed``.
"""

from __future__ import annotations

import random

import numpy as np
from PIL import Image, ImageDraw

from ..tasks import COCO_KEYPOINTS
from .world import COLOURS, Block, Person, Picture, Thing

WHITE = np.array((255, 255, 255), dtype=np.uint8)
_LIMBS = (("left shoulder", "left elbow"), ("left elbow", "left wrist"),
          ("right shoulder", "right elbow"), ("right elbow", "right wrist"),
          ("left hip", "left knee"), ("left knee", "left ankle"),
          ("right hip", "right knee"), ("right knee", "right ankle"),
          ("left shoulder", "right shoulder"), ("left hip", "right hip"))


def render(picture: Picture) -> Image.Image:
    """The picture as a ``width x height`` RGB image."""
    rng = random.Random(picture.texture_seed)
    pixels = _background(picture, np.random.default_rng(picture.texture_seed))
    for thing in picture.things:
        _draw_thing(pixels, thing)
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    for block in picture.blocks:
        _draw_block(draw, block, rng)
    for person in picture.people:
        _draw_person(draw, person, rng)
    return image


def _background(picture: Picture, gen: np.random.Generator) -> np.ndarray:
    base = np.empty((picture.height, picture.width, 3), dtype=np.int16)
    base[:] = picture.background_rgb
    if picture.background == "textured":
        noise = gen.integers(-16, 17, size=(picture.height, picture.width, 1))
        yy, xx = np.mgrid[:picture.height, :picture.width]
        waves = (8 * np.sin((xx + 2 * yy) / gen.uniform(4, 9))).astype(np.int16)[..., None]
        base = base + noise + waves
    return np.clip(base, 0, 255).astype(np.uint8)


def _shape_mask(thing: Thing, height: int, width: int) -> np.ndarray:
    """Boolean (H, W) mask of the shape, filling its box exactly."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    b = thing.box
    x1, y1, x2, y2 = int(b.x1), int(b.y1), int(b.x2) - 1, int(b.y2) - 1  # PIL: inclusive corners
    if thing.shape == "circle":
        draw.ellipse((x1, y1, x2, y2), fill=255)
    elif thing.shape == "square":
        draw.rectangle((x1, y1, x2, y2), fill=255)
    else:
        draw.polygon(((x1, y2), (x2, y2), ((x1 + x2) / 2, y1)), fill=255)
    return np.asarray(mask) > 0


def _draw_thing(pixels: np.ndarray, thing: Thing) -> None:
    h, w = pixels.shape[:2]
    mask = _shape_mask(thing, h, w)
    yy, xx = np.mgrid[:h, :w]
    if thing.pattern == "striped":
        white = yy % 2 == 1
    elif thing.pattern == "checked":
        white = (xx + yy) % 2 == 1
    else:
        white = np.zeros_like(mask)
    pixels[mask & ~white] = COLOURS[thing.colour]
    pixels[mask & white] = WHITE


# --- pages -------------------------------------------------------------------------------------

INK = (40, 40, 48)
GREY_INK = (110, 110, 120)


def _words(draw: ImageDraw.ImageDraw, x1: float, x2: float, y: float, thick: int, colour,
           rng: random.Random) -> None:
    """One line of "words": dark bars separated by 1-2 px gaps, from x1 to about x2."""
    x = x1
    while x < x2 - 2:
        length = min(rng.randint(3, 9), x2 - x)
        draw.rectangle((x, y, x + length - 1, y + thick - 1), fill=colour)
        x += length + rng.randint(2, 3)


def _draw_block(draw: ImageDraw.ImageDraw, block: Block, rng: random.Random) -> None:
    b = block.box
    x1, y1, x2, y2 = int(b.x1), int(b.y1), int(b.x2), int(b.y2)
    if block.category == "title":
        _words(draw, x1, x2, y1 + 1, max(3, (y2 - y1) // 2), INK, rng)
        draw.rectangle((x1, y1, x1, y2 - 1), fill=INK)  # a left rule marks the title's extent
        return
    if block.category in ("text", "list"):
        indent = 5 if block.category == "list" else 0
        rows = list(range(y1, y2 - 1, 4))
        for k, y in enumerate(rows):
            end = x2 if k < len(rows) - 1 else x1 + indent + (x2 - x1 - indent) * rng.uniform(0.4, 0.9)
            if block.category == "list" and (k == 0 or rng.random() < 0.5):
                draw.rectangle((x1 + 1, y, x1 + 2, y + 1), fill=INK)  # bullet
            _words(draw, x1 + indent, end, y, 2, GREY_INK, rng)
        return
    if block.category == "table":
        draw.rectangle((x1, y1, x2 - 1, y2 - 1), outline=INK)
        step = rng.randint(5, 7)
        for y in range(y1 + step, y2 - 2, step):
            draw.line((x1, y, x2 - 1, y), fill=GREY_INK)
        cols = rng.randint(2, 4)
        for c in range(1, cols):
            x = x1 + (x2 - x1) * c // cols
            draw.line((x, y1, x, y2 - 1), fill=GREY_INK)
        draw.rectangle((x1, y1, x2 - 1, y1 + 2), fill=INK)  # header row
        return
    # figure: a framed light panel with a small plot
    fill = tuple(rng.randint(200, 240) for _ in range(3))
    draw.rectangle((x1, y1, x2 - 1, y2 - 1), fill=fill, outline=GREY_INK)
    colour = rng.choice(tuple(COLOURS.values()))
    if rng.random() < 0.5:
        points = [(x, rng.uniform(y1 + 3, y2 - 4)) for x in range(x1 + 3, x2 - 3, 4)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=1)
    else:
        for x in range(x1 + 3, x2 - 5, 5):
            draw.rectangle((x, rng.randint(y1 + 3, y2 - 5), x + 2, y2 - 3), fill=colour)


# --- people ------------------------------------------------------------------------------------


def _draw_person(draw: ImageDraw.ImageDraw, person: Person, rng: random.Random) -> None:
    p = dict(zip(COCO_KEYPOINTS, person.keypoints))
    ink = rng.choice(((30, 30, 30), (40, 40, 110), (90, 50, 20)))
    neck = ((p["left shoulder"].x + p["right shoulder"].x) / 2, p["left shoulder"].y)
    pelvis = ((p["left hip"].x + p["right hip"].x) / 2, p["left hip"].y)
    draw.line((neck, pelvis), fill=ink, width=2)
    for a, b in _LIMBS:
        draw.line(((p[a].x, p[a].y), (p[b].x, p[b].y)), fill=ink, width=2)
    r = person.head_radius
    cx, cy = p["nose"].x, p["left ear"].y
    draw.line(((cx, cy + r), neck), fill=ink, width=2)
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(238, 200, 170), outline=ink)
    for name in ("left eye", "right eye"):
        draw.rectangle((p[name].x - 0.5, p[name].y - 0.5, p[name].x + 0.5, p[name].y + 0.5), fill=ink)
    draw.point((p["nose"].x, p["nose"].y), fill=(190, 80, 70))
    for name in ("left ear", "right ear"):
        e = p[name]
        draw.ellipse((e.x - 1, e.y - 1.5, e.x + 1, e.y + 1.5), fill=(220, 170, 140))
