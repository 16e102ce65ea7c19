"""The demo page in a real headless browser: Debian's Chromium driven by Playwright.

Upload an image, ask for boxes with a quick button, and check what is drawn on the canvas at the
image's original resolution (boxes, labels, a COCO-17 skeleton); then a two-turn streamed chat with
the real toy model. Screenshots go to ``$TEST_ARTIFACTS`` (default ``test-artifacts/``).
"""

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from sphinx_mllm.inference.pipeline import Generation, Pipeline
from sphinx_mllm.inference.sampling import SamplingParams
from sphinx_mllm.serve import ServeConfig

from .helpers import MODEL, live_server

sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's Chromium is not installed (apt-get install -y chromium); "
    ".ci/run installs it")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))

# What the scripted model says: a labelled box and one person's keypoints (padded-square frame).
SCRIPT = ("<p>red box</p> [0.10,0.30,0.50,0.70] <p>nose</p> [0.70,0.30] <p>left shoulder</p> "
          "[0.65,0.40] <p>right shoulder</p> [0.75,0.40] <p>left hip</p> [0.66,0.58] "
          "<p>right hip</p> [0.74,0.58]")
BOX_RED = (230, 25, 75)  # the page's first colour


class ScriptedSequence:
    """Stands in for an engine sequence: yields the tokens of a fixed answer."""

    def __init__(self, tokens: list[int], params: SamplingParams):
        self.params, self._script = params, tokens
        self.tokens: list[int] = []
        self.finish_reason = None

    def __iter__(self):
        for token in self._script[:self.params.max_new_tokens]:
            self.tokens.append(token)
            yield token
        self.finish_reason = "stop"

    def cancel(self, wait: bool = False) -> None:
        self.finish_reason = self.finish_reason or "cancelled"

    def result(self) -> list[int]:
        for _ in self:
            pass
        return self.tokens


class ScriptedPipeline(Pipeline):
    """The real pipeline (prompts, images, decoding, objects) with a model that says SCRIPT."""

    def start(self, prompt, **sampling) -> Generation:
        tokens = self.tokenizer.encode(SCRIPT + "\n###")
        return Generation(self, prompt, ScriptedSequence(tokens, SamplingParams(**sampling)))


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture()
def photo(tmp_path) -> Path:
    path = tmp_path / "wide.png"
    Image.new("RGB", (320, 200), (40, 160, 40)).save(path)  # padded square: 320, offset (0, 60)
    return path


def pixel(page, x: int, y: int) -> tuple[int, int, int]:
    return tuple(page.evaluate(
        "([x, y]) => Array.from(document.getElementById('canvas').getContext('2d')"
        ".getImageData(x, y, 1, 1).data.slice(0, 3))", [x, y]))


def close_to(a, b, tol=40) -> bool:
    return all(abs(u - v) <= tol for u, v in zip(a, b))


def test_upload_ask_for_boxes_and_see_them_drawn(browser, pipe, photo):
    scripted = ScriptedPipeline(pipe.model, pipe.tokenizer)
    with live_server(scripted, ServeConfig(model_name=MODEL, demo=True)) as url:
        page = browser.new_page(viewport={"width": 1200, "height": 800})
        page.goto(url + "/")
        page.wait_for_selector("#tasks button[data-task='detection']")
        assert page.locator("#tasks button").all_inner_texts() == [
            "Detect", "Ground", "Pose", "Layout", "Caption", "REC"]
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.getElementById('canvas').width === 320")
        assert page.evaluate("document.getElementById('canvas').height") == 200
        page.click("#tasks button[data-task='detection']")
        page.wait_for_selector(".assistant[data-done='1']", timeout=20_000)
        assert page.inner_text(".user") == "Detect all objects shown in the image."
        legend = page.inner_text("#objects")
        assert "red box [32, 36, 160, 164]" in legend and "person: 5 keypoints" in legend
        # the box in original pixels: x 0.10*320 = 32 .. 160, y 0.30*320 - 60 = 36 .. 164
        assert close_to(pixel(page, 96, 164), BOX_RED)  # bottom edge
        assert close_to(pixel(page, 160, 100), BOX_RED)  # right edge
        assert close_to(pixel(page, 96, 100), (40, 160, 40))  # inside: the photo untouched
        # skeleton: the limb between the shoulders, (208, 68) .. (240, 68), in the 2nd colour
        assert close_to(pixel(page, 224, 68), (67, 99, 216))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-boxes.png"), full_page=True)
        # Pose asks for a box: the template goes to the input with {box} selected, and a drag on
        # the image from (32, 36) to (160, 164) writes that region as the model's box text
        page.click("#tasks button[data-task='pose']")
        assert page.input_value("#question").endswith("in the region {box}.")
        rect = page.locator("#canvas").bounding_box()
        scale = rect["width"] / 320
        page.mouse.move(rect["x"] + 32 * scale, rect["y"] + 36 * scale)
        page.mouse.down()
        page.mouse.move(rect["x"] + 160 * scale, rect["y"] + 164 * scale, steps=4)
        page.mouse.up()
        page.wait_for_function("document.getElementById('question').value.includes('[0.')")
        assert page.input_value("#question") == (
            "Detect the key points of the person in the region [0.10,0.30,0.50,0.70].")
        page.close()


def test_two_turn_streaming_chat_with_the_toy_model(browser, pipe, photo):
    with live_server(pipe, ServeConfig(model_name=MODEL, demo=True)) as url:
        page = browser.new_page()
        page.goto(url + "/")
        page.wait_for_selector("#tasks button")
        page.set_input_files("#file", str(photo))
        page.wait_for_function("document.getElementById('canvas').width === 320")
        for turn, question in enumerate(["What is in the image?", "And what colour is it?"]):
            page.fill("#question", question)
            page.press("#question", "Enter")
            page.wait_for_selector(f".assistant:nth-of-type({2 * turn + 2})[data-done='1']",
                                   timeout=20_000)
        assert page.locator(".user").all_inner_texts() == ["What is in the image?",
                                                          "And what colour is it?"]
        assert page.locator(".error").count() == 0
        history = page.evaluate("state.messages.map(m => m.role)")
        assert history == ["user", "assistant", "user", "assistant"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "demo-chat.png"), full_page=True)
        page.close()
