"""The demo's helper routes and the serve/demo command-line checks."""

import pytest
from fastapi.testclient import TestClient

from sphinx_mllm.cli import main
from sphinx_mllm.serve import ServeConfig, create_app
from sphinx_mllm.tasks import get_task

from .helpers import MODEL


@pytest.fixture(scope="module")
def client(pipe):
    with TestClient(create_app(pipe, ServeConfig(model_name=MODEL, demo=True))) as client:
        yield client


def test_quick_prompts_come_from_the_task_registry(client):
    config = client.get("/demo/config").json()
    by_task = {t["task"]: t for t in config["tasks"]}
    assert by_task["rec"]["template"] == get_task("rec").prompts[0]
    assert by_task["rec"]["fields"] == ["phrase"] and by_task["pose"]["fields"] == ["box"]
    assert by_task["detection"]["fields"] == []
    assert ["left shoulder", "right shoulder"] in config["skeleton"]
    assert len(config["keypoints"]) == 17


def test_region_writes_the_box_text_of_the_padded_square(client):
    # docs/tasks.md's worked example: 640x480, COCO box (64, 0)-(320, 480)
    r = client.post("/demo/region", json={"width": 640, "height": 480, "box": [320, 480, 64, 0]})
    assert r.json() == {"text": "[0.10,0.12,0.50,0.88]"}
    bad = client.post("/demo/region", json={"width": 0, "height": 480, "box": [0, 0, 1, 1]})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "body.width"


def test_the_page_is_served_only_with_the_demo(client, pipe):
    assert "sphinx-mllm demo" in client.get("/").text
    with TestClient(create_app(pipe, ServeConfig(model_name=MODEL))) as plain:
        assert plain.get("/").status_code == 404


def test_serve_refuses_a_missing_local_media_dir(tmp_path):
    with pytest.raises(SystemExit, match="not a directory"):
        main(["serve", "--model", MODEL, "--allow-local-media", str(tmp_path / "nope")])
