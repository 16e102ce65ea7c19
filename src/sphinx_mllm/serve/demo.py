"""The demo page (``sphinx-mllm demo``): one static page of our own on the same app.

It speaks the public API (``/v1/chat/completions`` with ``stream: true``) and draws each answer's
``objects`` (already in original pixels) on a canvas the size of the original image. What it needs
from the library comes from here, so the page holds no copy of a prompt or a format:

* ``GET /demo/config``: the quick-button prompts, straight from the tasks registry, and the COCO-17
  skeleton;
* ``POST /demo/region``: a rectangle dragged on the image (original pixels) -> the box text the
  model reads (normalised padded square), written by the tasks module.
"""

from __future__ import annotations

import string
from importlib import resources

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from ..tasks import COCO_KEYPOINTS, COCO_SKELETON, Box, ImageFrame, format_box, get_task
from .config import ServeConfig
from .errors import APIError

QUICK_TASKS = (("Detect", "detection"), ("Ground", "grounded_caption"), ("Pose", "pose"),
               ("Layout", "layout"), ("Caption", "detailed_caption"), ("REC", "rec"))
"""(button title, task name) of the quick buttons; the prompt is the task's first template."""


class Region(BaseModel):
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    box: list[float] = Field(min_length=4, max_length=4)


def quick_prompts() -> list[dict]:
    out = []
    for title, name in QUICK_TASKS:
        template = get_task(name).prompts[0]
        fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
        out.append({"title": title, "task": name, "template": template, "fields": fields})
    return out


def add_demo_routes(app: FastAPI, config: ServeConfig) -> None:
    page = (resources.files("sphinx_mllm.serve") / "static" / "demo.html").read_text("utf-8")

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/demo/config")
    async def demo_config() -> dict:
        return {"model": config.model_name, "tasks": quick_prompts(),
                "keypoints": list(COCO_KEYPOINTS), "skeleton": [list(p) for p in COCO_SKELETON]}

    @app.post("/demo/region")
    async def region(body: Region) -> dict:
        if body.width * body.height > config.limits.max_pixels:
            raise APIError(413, "image over the pixel limit", "width", "image_too_large")
        frame = ImageFrame(body.width, body.height)
        return {"text": format_box(frame.box_to_square(Box(*body.box).ordered()))}
