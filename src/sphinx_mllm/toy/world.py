"""The toy world's ground truth: what each picture holds, drawn deterministically per (seed, index).

Three kinds of pictures:

* ``scene``: 1-5 non-overlapping shapes (:data:`SHAPES` x :data:`COLOURS` x :data:`SIZES`, each
  plain or with a 1-pixel :data:`PATTERNS` texture) on a flat or textured background;
* ``page``: a small document page with title / text / list / table / figure blocks (PubLayNet's
  five categories), in one or two columns;
* ``people``: one or two frontal stick figures with the 17 COCO keypoints.

All coordinates here are **pixels of the picture** (continuous, COCO style: the whole picture is
``(0, 0, width, height)``). Picture ``index`` of world ``seed`` depends on nothing else, so a world
of n pictures is the prefix of any larger world with the same seed.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from ..tasks import COCO_KEYPOINTS, Box, Point

SHAPES = ("circle", "square", "triangle")
COLOURS = {  # name -> RGB; far apart in hue and away from the light, low-saturation backgrounds
    "red": (214, 39, 40), "orange": (245, 130, 20), "yellow": (230, 205, 20),
    "green": (44, 160, 44), "blue": (31, 90, 220), "purple": (140, 60, 180),
}
SIZES = {"small": (10, 14), "large": (22, 30)}  # side range in pixels (inclusive)
PATTERNS = ("plain", "striped", "checked")
"""``striped``: alternate 1-px rows of the colour and white; ``checked``: a 1-px checkerboard. At
half resolution both blur to the same pastel (see docs/toy-world.md), so telling them apart needs
the full-resolution sub-image views."""
LAYOUT_CATEGORIES = ("text", "title", "list", "table", "figure")  # PubLayNet category ids 1..5
ARMS = ("down", "out", "up")
KINDS = ("scene", "page", "people")
KIND_WEIGHTS = (0.6, 0.2, 0.2)

SCENE_SIZE = (128, 128)   # (width, height) of scenes and people pictures
PAGE_SIZE = (96, 128)     # portrait pages: the padded square puts 16 px of padding on each side
MAX_THINGS = 5
BACKGROUNDS = ("flat", "textured")


@dataclass(frozen=True)
class Thing:
    """One shape of a scene; ``box`` in pixels."""

    shape: str
    colour: str
    size: str
    pattern: str
    box: Box

    @property
    def category(self) -> str:
        """The COCO category name: colour and shape (``red circle``)."""
        return f"{self.colour} {self.shape}"


@dataclass(frozen=True)
class Block:
    """One layout element of a page; ``box`` in pixels."""

    category: str
    box: Box


@dataclass(frozen=True)
class Person:
    """A stick figure: its box and its 17 COCO keypoints (pixels, COCO order, all visible)."""

    box: Box
    keypoints: tuple[Point, ...]
    arms: str
    head_radius: float


@dataclass(frozen=True)
class Picture:
    """One picture's ground truth and the rendering choices that are not ground truth."""

    seed: int
    index: int
    kind: str
    width: int
    height: int
    background: str                      # flat | textured (pages: always flat)
    background_rgb: tuple[int, int, int]
    things: tuple[Thing, ...] = ()
    blocks: tuple[Block, ...] = ()
    people: tuple[Person, ...] = ()

    @property
    def texture_seed(self) -> int:
        """Seed of the pixel-level randomness (textures, block contents) of this picture."""
        return random.Random(f"texture:{self.seed}:{self.index}").getrandbits(32)


def picture_rng(seed: int, index: int) -> random.Random:
    return random.Random(f"toy-world:{seed}:{index}")


def check_things(min_things: int, max_things: int) -> None:
    """Refuse a range of shapes per scene outside 1 <= min_things <= max_things <= MAX_THINGS."""
    if not 1 <= min_things <= max_things <= MAX_THINGS:
        raise ValueError(f"shapes per scene: need 1 <= min <= max <= {MAX_THINGS}, "
                         f"got min {min_things}, max {max_things}")


def check_colours(colours: int | None) -> None:
    """Refuse a palette size outside 1 .. len(COLOURS) (None: every colour, the default)."""
    if colours is not None and not 1 <= colours <= len(COLOURS):
        raise ValueError(f"colours per scene: need 1 <= colours <= {len(COLOURS)}, got {colours}")


def sample_picture(seed: int, index: int, max_things: int = MAX_THINGS,
                   min_things: int = 1, colours: int | None = None) -> Picture:
    """The ground truth of picture ``index`` of world ``seed`` (no pixels; see ``render``).

    Scenes draw ``min_things`` to ``max_things`` shapes, uniformly (fewer when 200 placement
    tries find no free place, which is rare). Narrower than 1-5 makes a curriculum world (one
    shape per scene first; exactly two to teach the choice between them); it changes the world,
    so it is part of the world's identity. ``min_things`` 1 draws exactly what worlds drew before
    it existed. ``colours`` draws each scene's shapes from a palette of that many colours, itself
    drawn per scene (1: every shape of a scene the same colour, so that only the shape, size,
    pattern or place tells them apart); None draws exactly what worlds drew before it existed.
    """
    check_things(min_things, max_things)
    check_colours(colours)
    rng = picture_rng(seed, index)
    kind = rng.choices(KINDS, KIND_WEIGHTS)[0]
    if kind == "page":
        shade = rng.randint(240, 255)
        return Picture(seed, index, kind, *PAGE_SIZE, "flat", (shade, shade, shade - rng.randint(0, 8)),
                       blocks=_sample_blocks(rng))
    background = rng.choice(BACKGROUNDS)
    base = rng.randint(175, 225)
    rgb = tuple(min(255, base + rng.randint(-12, 12)) for _ in range(3))
    if kind == "scene":
        return Picture(seed, index, kind, *SCENE_SIZE, background, rgb,
                       things=_sample_things(rng, min_things, max_things, colours))
    return Picture(seed, index, kind, *SCENE_SIZE, background, rgb, people=_sample_people(rng))


# --- scenes ------------------------------------------------------------------------------------


def _overlaps(box: Box, others: list[Box], gap: float) -> bool:
    return any(box.x1 < o.x2 + gap and o.x1 < box.x2 + gap and box.y1 < o.y2 + gap
               and o.y1 < box.y2 + gap for o in others)


def _sample_things(rng: random.Random, min_things: int, max_things: int,
                   colours: int | None = None) -> tuple[Thing, ...]:
    width, height = SCENE_SIZE
    wanted = rng.randint(min_things, max_things)
    palette = tuple(COLOURS) if colours is None else tuple(rng.sample(tuple(COLOURS), colours))
    things: list[Thing] = []
    for _ in range(200):  # rejection sampling of non-overlapping positions
        if len(things) == wanted:
            break
        size = rng.choice(tuple(SIZES))
        side = rng.randint(*SIZES[size])
        x, y = rng.randint(2, width - 2 - side), rng.randint(2, height - 2 - side)
        box = Box(x, y, x + side, y + side)
        if _overlaps(box, [t.box for t in things], gap=3):
            continue
        things.append(Thing(rng.choice(SHAPES), rng.choice(palette), size,
                            rng.choices(PATTERNS, (0.5, 0.25, 0.25))[0], box))
    return tuple(things)


# --- pages -------------------------------------------------------------------------------------

_BLOCK_HEIGHTS = {"text": (10, 26), "list": (12, 24), "table": (16, 30), "figure": (16, 34)}


def _sample_blocks(rng: random.Random) -> tuple[Block, ...]:
    width, height = PAGE_SIZE
    margin = 6
    blocks: list[Block] = []
    top = margin
    if rng.random() < 0.8:
        title_h = rng.randint(6, 10)
        title_w = rng.randint(int(0.5 * (width - 2 * margin)), width - 2 * margin)
        x = margin + (width - 2 * margin - title_w) // 2 if rng.random() < 0.5 else margin
        blocks.append(Block("title", Box(x, top, x + title_w, top + title_h)))
        top += title_h + rng.randint(4, 7)
    columns = rng.choice((1, 1, 2))
    gap = 4
    col_w = (width - 2 * margin - gap * (columns - 1)) // columns
    for c in range(columns):
        x = margin + c * (col_w + gap)
        y = top
        while True:
            category = rng.choices(("text", "list", "table", "figure"), (0.45, 0.2, 0.15, 0.2))[0]
            h = rng.randint(*_BLOCK_HEIGHTS[category])
            if y + h > height - margin:
                break
            w = col_w if category in ("text", "list") else rng.randint(int(0.6 * col_w), col_w)
            blocks.append(Block(category, Box(x, y, x + w, y + h)))
            y += h + rng.randint(4, 7)
    return tuple(blocks)


# --- people ------------------------------------------------------------------------------------

_ARM_ANGLES = {"down": (10, 30), "out": (75, 105), "up": (140, 170)}  # degrees from straight down


def _limb(start: Point, length: float, angle: float, side: int) -> Point:
    """End of a limb of ``length`` px from ``start`` at ``angle`` degrees from straight down,
    swung to the person's ``side`` (+1: the person's left, which is the picture's right)."""
    a = math.radians(angle)
    return Point(start.x + side * math.sin(a) * length, start.y + math.cos(a) * length)


def stick_figure(cx: float, top: float, height: float, arms: str, rng: random.Random) -> Person:
    """A frontal figure ``height`` px tall whose head top is at ``(cx, top)``; the person's left
    side is on the picture's right, as for anyone facing the camera."""
    r = 0.09 * height
    head = Point(cx, top + r)
    eye_y, ear_y = top + 0.8 * r, top + r
    points = {
        "nose": Point(cx, top + 1.15 * r),
        "left eye": Point(cx + 0.4 * r, eye_y), "right eye": Point(cx - 0.4 * r, eye_y),
        "left ear": Point(cx + r, ear_y), "right ear": Point(cx - r, ear_y),
    }
    shoulder_y, hip_y = top + 0.27 * height, top + 0.58 * height
    for side, name in ((1, "left"), (-1, "right")):
        shoulder = Point(cx + side * 0.17 * height, shoulder_y)
        angle = rng.uniform(*_ARM_ANGLES[arms])
        elbow = _limb(shoulder, 0.17 * height, angle, side)
        wrist = _limb(elbow, 0.16 * height, angle + rng.uniform(-20, 20), side)
        hip = Point(cx + side * 0.08 * height, hip_y)
        knee = _limb(hip, 0.21 * height, rng.uniform(0, 20), side)
        ankle = _limb(knee, 0.2 * height, rng.uniform(-5, 12), side)
        points.update({f"{name} shoulder": shoulder, f"{name} elbow": elbow,
                       f"{name} wrist": wrist, f"{name} hip": hip, f"{name} knee": knee,
                       f"{name} ankle": ankle})
    keypoints = tuple(points[name] for name in COCO_KEYPOINTS)
    xs = [p.x for p in keypoints] + [head.x - r, head.x + r]
    ys = [p.y for p in keypoints] + [top]
    box = Box(math.floor(min(xs)) - 1, math.floor(min(ys)), math.ceil(max(xs)) + 1,
              math.ceil(max(ys)) + 1)
    return Person(box, keypoints, arms, r)


def _sample_people(rng: random.Random) -> tuple[Person, ...]:
    width, height = SCENE_SIZE
    count = rng.choice((1, 1, 2))
    people: list[Person] = []
    for _ in range(200):
        if len(people) == count:
            break
        tall = rng.uniform(70, 100) if count == 1 else rng.uniform(50, 70)
        person = stick_figure(rng.uniform(0, width), rng.uniform(2, height - tall - 2), tall,
                              rng.choice(ARMS), rng)
        b = person.box
        if b.x1 < 1 or b.y1 < 1 or b.x2 > width - 1 or b.y2 > height - 1:
            continue
        if _overlaps(b, [p.box for p in people], gap=2):
            continue
        people.append(person)
    return tuple(sorted(people, key=lambda p: p.box.x1))


def position_word(box: Box, width: int, height: int) -> str:
    """Where a box's centre lies on a 3x3 grid: ``top left`` .. ``center`` .. ``bottom right``."""
    cx, cy = (box.x1 + box.x2) / 2 / width, (box.y1 + box.y2) / 2 / height
    col = ("left", "", "right")[min(int(cx * 3), 2)]
    row = ("top", "", "bottom")[min(int(cy * 3), 2)]
    return " ".join(w for w in (row, col) if w) or "center"
