"""Helpers that write tiny dataset fixtures in the public releases' file layouts."""

import json
import logging

import pytest
from PIL import Image


@pytest.fixture
def write_json():
    def write(path, data):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data))
        return path
    return write


@pytest.fixture
def write_image():
    def write(path, size):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (10, 20, 30)).save(path)
        return path
    return write


@pytest.fixture
def skip_warnings(caplog):
    """The skip warnings logged by the adapters, as strings."""
    caplog.set_level(logging.WARNING, logger="sphinx_mllm.data.sample")
    return lambda: [r.getMessage() for r in caplog.records if "skipped record" in r.getMessage()]
