import json
import resource

import pytest

from sphinx_mllm.cli import main
from sphinx_mllm.inference.pipeline import example_image_path


def test_info_sphinx_1k_on_meta(capsys):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    assert main(["info", "sphinx-1k", "--json"]) == 0
    peak_growth_gib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 2**20
    info = json.loads(capsys.readouterr().out)
    assert info["image_tokens"] == 1455
    params = info["params"]
    assert abs(params["llm"] - 13.0e9) / 13.0e9 <= 0.005
    vision = sum(params["vision"].values())
    assert abs(vision - 3.4e9) / 3.4e9 < 0.02  # spec 6.6: 0.30 + 0.85 + 1.14 + 0.99 + 0.11 B
    assert set(params["vision"]) == {"clip", "convnext", "dinov2", "qformer"}
    assert params["total"] == params["llm"] + params["projector"] + vision
    assert peak_growth_gib < 1.0  # 30 GiB of bf16 weights were never allocated


def test_info_text_output(capsys):
    assert main(["info", "sphinx-tiny"]) == 0
    out = capsys.readouterr().out
    assert "259 visual tokens" in out and "vision: convnext" in out


def test_chat_end_to_end_on_a_toy_preset(capsys):
    code = main(["chat", "--model", "toy-1k", "--image", str(example_image_path()), "--json",
                 "--max-new-tokens", "5", "What's in the image?"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"answer", "tokens", "prompt_tokens", "finish_reason"}
    assert 1 <= len(out["tokens"]) <= 5


def test_chat_stream_prints_text(capsys):
    assert main(["chat", "--model", "toy", "--stream", "--max-new-tokens", "4", "hello"]) == 0
    assert capsys.readouterr().out.endswith("\n")


@pytest.mark.parametrize("argv,message", [
    (["chat", "--model", "toy", "--image", "missing.png", "q"], "image not found"),
    (["chat", "--model", "no-such-model", "q"], "neither a preset"),
    (["info", "no-such-model"], "is not a preset"),
    (["chat", "--model", "toy", "--max-new-tokens", "5000", "q"], "exceeds max_seq_len"),
])
def test_clear_errors(argv, message):
    with pytest.raises(SystemExit, match=message):
        main(argv)
