import sys
import types
from dataclasses import dataclass

import pytest

from sphinx_mllm.eval.harness import lmms_eval_model, vlmeval_model


@dataclass
class FakeAnswer:
    text: str


class FakePipeline:
    """Records every batch_chat / chat call and answers with a fixed text."""

    def __init__(self, text=" yes###more"):
        self.calls, self.text = [], text

    def batch_chat(self, images, questions, histories=None, **sampling):
        self.calls.append((list(images), list(questions), sampling))
        return [FakeAnswer(self.text) for _ in questions]

    def chat(self, image, question, history=None, **sampling):
        return self.batch_chat([image], [question], **sampling)[0]


@dataclass
class Request:
    args: tuple


def test_lmms_core_turns_requests_into_batched_pipeline_calls():
    pipe = FakePipeline(" Yes. STOP and more")
    model = lmms_eval_model.SphinxLmmsCore(pipeline=pipe, batch_size=2)
    model.task_dict = {"pope": {"test": {0: "img0", 1: "img1", 2: "img2"}}}
    visual = lambda doc: [f"{doc}.png"]  # noqa: E731
    greedy = {"until": ["STOP"], "max_new_tokens": 8, "temperature": 0, "do_sample": False}
    requests = [Request(("<image>\nIs there a dog?", greedy, visual, i, "pope", "test")) for i in range(3)]
    requests.append(Request(("Sample this", {"temperature": 0.7, "top_p": 0.9}, visual, 0, "pope", "test")))
    # the last request names no stop string: only our separator stops it
    assert model.generate_until(requests) == ["Yes."] * 3 + ["Yes. STOP and more"]
    greedy_calls = [c for c in pipe.calls if c[2]["temperature"] == 0.0]
    assert [len(c[0]) for c in greedy_calls] == [2, 1]  # batch_size 2
    assert greedy_calls[0][0] == ["img0.png", "img1.png"]
    assert greedy_calls[0][1] == ["Is there a dog?"] * 2  # <image> tag removed
    assert greedy_calls[0][2] == {"max_new_tokens": 8, "temperature": 0.0, "top_p": 1.0, "top_k": 0}
    [sampled] = [c for c in pipe.calls if c[2]["temperature"] == 0.7]
    assert sampled[2] == {"max_new_tokens": 128, "temperature": 0.7, "top_p": 0.9, "top_k": 0}
    with pytest.raises(NotImplementedError):
        model.loglikelihood(requests)


def test_lmms_class_is_built_lazily_on_the_harness_base(monkeypatch):
    base = type("lmms", (), {"__init__": lambda self: setattr(self, "task_dict", {"kept": 1})})
    registry: dict = {}
    modules = {"lmms_eval": types.ModuleType("lmms_eval"), "lmms_eval.api": types.ModuleType("lmms_eval.api"),
               "lmms_eval.api.model": types.ModuleType("lmms_eval.api.model"),
               "lmms_eval.api.registry": types.ModuleType("lmms_eval.api.registry")}
    modules["lmms_eval.api.model"].lmms = base
    modules["lmms_eval.api.registry"].register_model = lambda name: lambda cls: registry.setdefault(name, cls)
    for key, module in modules.items():
        monkeypatch.setitem(sys.modules, key, module)
    monkeypatch.delitem(lmms_eval_model.__dict__, "SphinxLMMs", raising=False)
    cls = lmms_eval_model.register("sphinx")
    assert registry["sphinx"] is cls and issubclass(cls, base)
    model = cls(pipeline=FakePipeline(), batch_size="4")
    assert model.batch_size == 4 and model.task_dict == {"kept": 1}
    monkeypatch.delitem(lmms_eval_model.__dict__, "SphinxLMMs")


def test_harness_modules_import_without_the_harnesses():
    if "lmms_eval" not in sys.modules:
        with pytest.raises(ImportError, match="needs lmms-eval"):
            lmms_eval_model.lmms_eval_class()
    if "vlmeval" not in sys.modules:
        with pytest.raises(ImportError, match="needs VLMEvalKit"):
            vlmeval_model.SphinxVLM  # noqa: B018


def test_vlmeval_core_turns_a_message_into_one_chat():
    pipe = FakePipeline("B\n")
    model = vlmeval_model.SphinxVLMCore(pipeline=pipe, max_new_tokens=10)
    message = [{"type": "image", "value": "/data/q1.jpg"}, {"type": "text", "value": "Question?"},
               {"type": "text", "value": "A. x\nB. y"}]
    assert model.generate_inner(message, dataset="MMBench_DEV_EN") == "B"
    [(images, questions, sampling)] = pipe.calls
    assert images == ["/data/q1.jpg"] and questions == ["Question?\nA. x\nB. y"]
    assert sampling == {"max_new_tokens": 10, "temperature": 0.0, "top_p": 1.0}


def test_lmms_core_loads_by_dtype_name_and_refuses_an_unknown_one(monkeypatch):
    import torch

    from sphinx_mllm.inference import pipeline as pipeline_module

    loaded = []
    monkeypatch.setattr(pipeline_module, "load",
                        lambda name, device=None, dtype=None: loaded.append(dtype) or "pipe")
    assert lmms_eval_model.SphinxLmmsCore(pretrained="toy", dtype="bfloat16").pipeline == "pipe"
    lmms_eval_model.SphinxLmmsCore(pretrained="toy")
    assert loaded == [torch.bfloat16, None]
    with pytest.raises(ValueError, match="float32"):
        lmms_eval_model.SphinxLmmsCore(pretrained="toy", dtype="half")
