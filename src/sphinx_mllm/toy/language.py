"""What the toy world says about a picture: captions (two domains), questions, referring expressions.

* **synthetic** captions are complete, clean and templated: every object with all its attributes
  and its position, in raster order (the paper's synthetic, GPT-4V-style data);
* **web** captions are short, noisy and partial: a subset of the objects, synonyms, dropped
  attributes, random casing, missing punctuation, the odd typo (the paper's web-crawled pairs).

Questions come in families (:data:`QUESTION_FAMILIES`); ``highres`` questions ask for a shape's
1-pixel pattern, which only the full-resolution sub-image views can resolve. :func:`where_questions`
are not among the world's VQA questions: the world writes them apart (``where/``), a diagnostic
(``toy eval --tasks where``) and training data that a mixture names.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from .world import COLOURS, Picture, Thing, position_word

NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
QUESTION_FAMILIES = ("colour", "shape", "count", "highres")
_SYNONYMS = {"circle": ("circle", "ball", "dot", "round thing", "disc"),
             "square": ("square", "box", "block", "tile"),
             "triangle": ("triangle", "wedge", "pyramid")}
_BLOCK_NAMES = {"text": "text block", "title": "title", "list": "list", "table": "table",
                "figure": "figure"}


def _count(n: int, noun: str) -> str:
    word = NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)
    return f"{word} {noun}" + ("s" if n != 1 else "")


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def describe_thing(thing: Thing) -> str:
    """``large striped red circle`` (``plain`` is left out)."""
    pattern = "" if thing.pattern == "plain" else thing.pattern + " "
    return f"{thing.size} {pattern}{thing.colour} {thing.shape}"


def _raster(items, key):
    return sorted(items, key=lambda i: (key(i).y1, key(i).x1))


# --- captions ----------------------------------------------------------------------------------


def synthetic_caption(picture: Picture) -> str:
    """The one complete, templated description of a picture."""
    w, h = picture.width, picture.height
    if picture.kind == "scene":
        things = _raster(picture.things, lambda t: t.box)
        parts = [f"{_article(describe_thing(t))} at the {position_word(t.box, w, h)}" for t in things]
        return (f"{_count(len(things), 'object').capitalize()} on a {picture.background} "
                f"background: {_join(parts)}.")
    if picture.kind == "page":
        counts = Counter(b.category for b in picture.blocks)
        parts = [_count(counts[c], _BLOCK_NAMES[c]) for c in ("title", "text", "list", "table",
                                                                "figure") if counts[c]]
        return f"A document page with {_join(parts)}."
    people = picture.people
    if len(people) == 1:
        p = people[0]
        return (f"One stick figure on a {picture.background} background, with arms {p.arms} at "
                f"the {position_word(p.box, w, h)}.")
    parts = [f"one with arms {p.arms} at the {position_word(p.box, w, h)}" for p in people]
    return (f"{NUMBER_WORDS[len(people)].capitalize()} stick figures on a {picture.background} "
            f"background, {_join(parts)}.")


def _typo(text: str, rng: random.Random) -> str:
    letters = [i for i in range(len(text) - 1) if text[i].isalpha() and text[i + 1].isalpha()]
    if not letters:
        return text
    i = rng.choice(letters)
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def _noisy(text: str, rng: random.Random) -> str:
    style = rng.random()
    if style < 0.4:
        text = text.lower()
    elif style < 0.55:
        text = text.upper() if len(text) < 25 else text.capitalize()
    else:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.15:
        text = _typo(text, rng)
    if rng.random() < 0.3:
        text += rng.choice((".", "!", " :)", " #shapes", "..."))
    return text


def web_caption(picture: Picture, rng: random.Random) -> str:
    """One short, partial, noisy caption (a different one per ``rng`` draw)."""
    if picture.kind == "scene":
        things = list(picture.things)
        rng.shuffle(things)
        shown = things[:rng.randint(1, min(2, len(things)))]
        names = []
        for t in shown:
            noun = rng.choice(_SYNONYMS[t.shape])
            words = [t.colour] if rng.random() < 0.8 else []
            if rng.random() < 0.3:
                words.insert(0, rng.choice(("big", "large")) if t.size == "large" else
                             rng.choice(("small", "tiny", "little")))
            names.append(" ".join(words + [noun]))
        template = rng.choice(("{x}", "{x}", "a {x}", "pic of {x}", "{x} on {bg}", "my {x}",
                               "{x} drawing", "shapes: {x}", "{x}, simple"))
        bg = rng.choice(("grey", "gray", "a background", "paper", "the wall"))
        return _noisy(template.format(x=" and ".join(names), bg=bg), rng)
    if picture.kind == "page":
        counts = Counter(b.category for b in picture.blocks)
        extra = [c for c in ("table", "figure", "list") if counts[c]]
        thing = rng.choice(("document", "page", "paper", "report page", "doc", "scan"))
        text = rng.choice(("a {t}", "{t} with text", "{t} scan", "old {t}", "{t}"))
        text = text.format(t=thing)
        if extra and rng.random() < 0.6:
            text += f" with a {rng.choice(extra)}"
        return _noisy(text, rng)
    n = len(picture.people)
    who = rng.choice(("stick man", "stick figure", "person", "guy", "stickman", "drawing of a man"))
    if n > 1:
        who = rng.choice(("two stick men", "2 people", "stick figures", "two friends", "a couple"))
    pose = {"up": ("waving", "arms up", "cheering", "hands in the air"),
            "out": ("arms out", "t pose", "balancing"),
            "down": ("standing", "just standing", "waiting")}[picture.people[0].arms]
    template = rng.choice(("{w}", "{w} {p}", "{p} {w}", "a {w}", "{w}, {p}"))
    return _noisy(template.format(w=who, p=rng.choice(pose)), rng)


# --- questions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Question:
    family: str          # one of QUESTION_FAMILIES, or "where" (where_questions)
    question: str
    answer: str
    answer_type: str     # VQAv2's: "yes/no", "number" or "other"


def _unique(things, key) -> list[Thing]:
    counts = Counter(key(t) for t in things)
    return [t for t in things if counts[key(t)] == 1]


def questions(picture: Picture, rng: random.Random) -> list[Question]:
    """At most one question per family the picture can answer unambiguously."""
    out: list[Question] = []
    if picture.kind == "people":
        n = len(picture.people)
        return [Question("count", "How many people are there?", str(n), "number")]
    if picture.kind == "page":
        category = rng.choice(("table", "figure", "list", "text"))
        n = sum(b.category == category for b in picture.blocks)
        noun = {"text": "text blocks", "table": "tables", "figure": "figures", "list": "lists"}
        return [Question("count", f"How many {noun[category]} are on the page?", str(n), "number")]
    things = picture.things
    by_shape = _unique(things, lambda t: t.shape)
    if by_shape:
        t = rng.choice(by_shape)
        out.append(Question("colour", f"What color is the {t.shape}?", t.colour, "other"))
    by_colour = _unique(things, lambda t: t.colour)
    if by_colour:
        t = rng.choice(by_colour)
        out.append(Question("shape", f"What shape is the {t.colour} object?", t.shape, "other"))
    kind = rng.choice(("all", "colour", "shape"))
    if kind == "all":
        out.append(Question("count", "How many objects are there?", str(len(things)), "number"))
    elif kind == "colour":
        colour = rng.choice([t.colour for t in things] + [rng.choice(tuple(COLOURS))])
        n = sum(t.colour == colour for t in things)
        out.append(Question("count", f"How many {colour} objects are there?", str(n), "number"))
    else:
        shape = rng.choice(list(_SYNONYMS))
        n = sum(t.shape == shape for t in things)
        out.append(Question("count", f"How many {shape}s are there?", str(n), "number"))
    by_name = _unique(things, lambda t: t.category)
    if by_name:
        t = rng.choice(by_name)
        out.append(Question("highres", f"What pattern does the {t.colour} {t.shape} have?",
                            t.pattern, "other"))
    return out


def where_questions(picture: Picture) -> list[Question]:
    """"Where is the circle?" about each shape of a scene that its shape alone names and whose
    place (:func:`~.world.position_word`, as the synthetic caption says it) no other shape of the
    scene shares; answered by that place. Among shapes of one colour only the shape word tells
    which place is asked for (docs/toy-world-runs.md, twenty-ninth run)."""
    if picture.kind != "scene":
        return []
    places = [position_word(t.box, picture.width, picture.height) for t in picture.things]
    named = {id(t) for t in _unique(picture.things, lambda t: t.shape)}
    return [Question("where", f"Where is the {t.shape}?", place, "other")
            for t, place in zip(picture.things, places)
            if id(t) in named and places.count(place) == 1]


# --- referring expressions ---------------------------------------------------------------------


def referring_expressions(picture: Picture, rng: random.Random) -> list[tuple[int, list[str]]]:
    """(index of a thing, 1-2 lower-case sentences naming it unambiguously) for every thing
    that can be singled out by its attributes or, between two of a kind, left/right or top/bottom."""
    things = picture.things
    refs = []
    for i, t in enumerate(things):
        same = [u for u in things if u.category == t.category]
        if len(same) == 1:
            bases = [f"{t.colour} {t.shape}", f"{t.colour} {rng.choice(_SYNONYMS[t.shape])}"]
        elif sum(u.size == t.size for u in same) == 1:
            bases = [f"{t.size} {t.colour} {t.shape}"]
        elif sum(u.pattern == t.pattern for u in same) == 1 and t.pattern != "plain":
            bases = [f"{t.pattern} {t.colour} {t.shape}"]
        elif len(same) == 2:
            other = same[1] if same[0] is t else same[0]
            dx = (t.box.x1 + t.box.x2 - other.box.x1 - other.box.x2) / 2
            dy = (t.box.y1 + t.box.y2 - other.box.y1 - other.box.y2) / 2
            where = (("right" if dx > 0 else "left") if abs(dx) >= abs(dy)
                     else ("bottom" if dy > 0 else "top"))
            bases = [f"{t.colour} {t.shape} on the {where}", f"{where} {t.colour} {t.shape}"]
        else:
            continue
        sentences = [rng.choice(("the ", "")) + bases[0]]
        if rng.random() < 0.5:
            sentences.append(rng.choice(bases[1:] or bases) if len(bases) > 1 else "the " + bases[0])
        refs.append((i, list(dict.fromkeys(sentences))))
    return refs
