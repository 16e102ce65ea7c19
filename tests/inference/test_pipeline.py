import threading

import pytest
import torch

import sphinx_mllm
from sphinx_mllm.inference.pipeline import Pipeline, StopOnSeparator, example_image_path


@pytest.fixture(scope="module")
def pipe():
    torch.manual_seed(0)
    return sphinx_mllm.load("toy-1k")


def test_chat_returns_an_answer_object(pipe):
    ans = pipe.chat(example_image_path(), "What's in the image?", max_new_tokens=6)
    assert isinstance(ans.text, str) and 1 <= len(ans.tokens) <= 6
    assert ans.prompt_tokens > pipe.model.cfg.image_tokens
    assert ans.finish_reason in {"stop", "length"}


def test_history_makes_the_prompt_longer(pipe):
    a = pipe.chat(None, "Q2", max_new_tokens=2)
    b = pipe.chat(None, "Q2", history=[("Q1", "A1")], max_new_tokens=2)
    assert b.prompt_tokens > a.prompt_tokens


def test_stream_concatenates_to_the_chat_text(pipe):
    image = example_image_path()
    text = "".join(pipe.stream(image, "Describe it.", max_new_tokens=12))
    assert text == pipe.chat(image, "Describe it.", max_new_tokens=12).text


def test_batch_chat_matches_single_chats(pipe):
    image = example_image_path()
    qs = ["What's in the image?", "Detect all objects shown in the image."]
    batch = pipe.batch_chat([image, image], qs, max_new_tokens=5)
    assert [a.tokens for a in batch] == [pipe.chat(image, q, max_new_tokens=5).tokens for q in qs]


def test_stop_on_separator(tokenizer):
    stop = StopOnSeparator(tokenizer)
    assert stop(tokenizer.encode("a cat\n###"))
    assert stop([5, tokenizer.eos_id])
    assert not stop(tokenizer.encode("a cat ##"))


def test_load_rejects_unknown_names(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a preset"):
        sphinx_mllm.load(tmp_path / "nothing")


def test_tokenizer_larger_than_the_model_is_rejected(tokenizer):
    model = sphinx_mllm.build("toy")
    model.cfg.llm.vocab_size = 10
    with pytest.raises(ValueError, match="embeddings"):
        Pipeline(model, tokenizer)


def test_chats_from_many_threads_match_single_chats(pipe):
    image = example_image_path()
    qs = ["What's in the image?", "Describe it.", "Count the objects.", "Where is it?"]
    want = [pipe.chat(image, q, max_new_tokens=6).tokens for q in qs]
    got = [None] * len(qs)

    def ask(i):
        got[i] = pipe.chat(image, qs[i], max_new_tokens=6).tokens

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(qs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert got == want


def test_closing_a_stream_early_frees_its_slot(pipe):
    stream = pipe.stream(example_image_path(), "Describe it.", max_new_tokens=200)
    next(stream)
    assert pipe.engine.busy_slots == 1
    stream.close()
    for _ in range(200):  # the slot is freed before the engine's next step
        if pipe.engine.busy_slots == 0:
            break
        threading.Event().wait(0.01)
    assert pipe.engine.busy_slots == 0


@pytest.mark.parametrize("preset", ["toy", "toy-tiny", "toy-world"])
def test_presets_sized_for_the_toy_tokenizer_load_without_a_warning(preset):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the benchmarking-only warning would raise here
        sphinx_mllm.load(preset)


def test_small_checkpoints_run_in_fp32_on_a_cpu(tmp_path):
    """A toy-size checkpoint stored in bf16 (as a GPU run writes it) runs in fp32 on a CPU, like
    the bundled model, unless a dtype is asked for."""
    from sphinx_mllm import build, load
    from sphinx_mllm.checkpoint import ours
    from sphinx_mllm.inference.pipeline import CPU_FP32_BELOW, _parameters, bundled_tokenizer_path

    model = build("toy", dtype=torch.bfloat16)
    assert _parameters(model.cfg) < CPU_FP32_BELOW
    ours.save(model, bundled_tokenizer_path(), tmp_path / "ckpt")
    assert load(tmp_path / "ckpt", device="cpu").model.dtype == torch.float32
    assert load(tmp_path / "ckpt", device="cpu", dtype=torch.bfloat16).model.dtype == torch.bfloat16
    assert _parameters(build("sphinx-1k", device="meta").cfg) > CPU_FP32_BELOW  # stays as stored
