"""The official ``openai`` client against a live server: text + image answers, streamed or not."""

import openai
import pytest

from sphinx_mllm.serve import ServeConfig

from .helpers import MODEL, data_url, live_server, picture, user_message


@pytest.fixture(scope="module")
def client(pipe):
    with live_server(pipe, ServeConfig(model_name=MODEL)) as url:
        yield openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)


def image_request(question: str = "What is in the image?") -> list[dict]:
    return [user_message(question, picture(1))]


def test_models_lists_the_served_model(client):
    assert [m.id for m in client.models.list().data] == [MODEL]


def test_text_and_image_answer_equals_the_pipeline(client, pipe):
    out = client.chat.completions.create(model=MODEL, messages=image_request(), max_tokens=10)
    [choice] = out.choices
    alone = pipe.chat(messages=[{"role": "user", "content": [
        {"type": "image", "image": picture(1)},
        {"type": "text", "text": "What is in the image?"}]}], max_new_tokens=10)
    assert choice.message.role == "assistant" and choice.message.content == alone.text
    assert choice.finish_reason == {"stop": "stop", "length": "length"}[alone.finish_reason]
    assert out.usage.prompt_tokens == alone.prompt_tokens > pipe.model.cfg.image_tokens
    assert out.usage.completion_tokens == len(alone.tokens)
    assert out.usage.total_tokens == out.usage.prompt_tokens + out.usage.completion_tokens
    assert choice.objects == []  # the extra field, parsed from the answer (none in random text)


def test_streaming_concatenates_to_the_same_answer(client):
    whole = client.chat.completions.create(model=MODEL, messages=image_request(), max_tokens=12)
    stream = client.chat.completions.create(model=MODEL, messages=image_request(), max_tokens=12,
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finals = [c.choices[0] for c in chunks if c.choices and c.choices[0].finish_reason]
    assert text == whole.choices[0].message.content
    assert len(finals) == 1 and finals[0].finish_reason == whole.choices[0].finish_reason
    assert finals[0].objects == []
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


def test_text_only_multi_turn_with_system(client):
    out = client.chat.completions.create(model=MODEL, max_tokens=5, messages=[
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi"},
        {"role": "user", "content": "How are you?"}])
    assert out.choices[0].message.content is not None and out.usage.completion_tokens <= 5


def test_n_seed_and_sampling(client):
    kwargs = dict(model=MODEL, messages=image_request(), max_tokens=8, n=3, temperature=1.0,
                  top_p=0.9, seed=7)
    a = client.chat.completions.create(**kwargs)
    b = client.chat.completions.create(**kwargs)
    assert [c.index for c in a.choices] == [0, 1, 2]
    assert [c.message.content for c in a.choices] == [c.message.content for c in b.choices]
    assert len({c.message.content for c in a.choices}) > 1  # seeds 7, 8, 9 differ
    assert 0 < a.usage.completion_tokens <= 3 * 8


def test_stop_strings_cut_the_answer(client):
    full = client.chat.completions.create(model=MODEL, messages=image_request(), max_tokens=16)
    text = full.choices[0].message.content
    stop = next(text[i:i + 2] for i in range(3, len(text) - 1) if text[i:i + 2].isalnum())
    cut = client.chat.completions.create(model=MODEL, messages=image_request(), max_tokens=16,
                                         stop=[stop])
    assert cut.choices[0].message.content == text[:text.find(stop)]
    assert cut.choices[0].finish_reason == "stop"
    streamed = client.chat.completions.create(model=MODEL, messages=image_request(),
                                              max_tokens=16, stop=stop, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed
                   if c.choices) == text[:text.find(stop)]


def test_api_key_is_enforced(pipe):
    with live_server(pipe, ServeConfig(model_name=MODEL, api_key="s3cret")) as url:
        good = openai.OpenAI(base_url=url + "/v1", api_key="s3cret", max_retries=0)
        bad = openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
        assert good.models.list().data[0].id == MODEL
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        with pytest.raises(openai.AuthenticationError):
            bad.chat.completions.create(model=MODEL, messages=image_request(), max_tokens=2)
        out = good.chat.completions.create(model=MODEL, max_tokens=2, messages=[
            {"role": "user", "content": [{"type": "image_url",
                                          "image_url": {"url": data_url(picture(2))}},
                                         {"type": "text", "text": "Hi"}]}])
        assert out.choices[0].finish_reason in ("stop", "length")


def test_streaming_several_choices(client):
    kwargs = dict(model=MODEL, messages=image_request(), max_tokens=8, n=2, temperature=1.0,
                  seed=3)
    whole = client.chat.completions.create(**kwargs)
    texts, finished = ["", ""], set()
    for chunk in client.chat.completions.create(**kwargs, stream=True):
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished.add(choice.index)
    assert texts == [c.message.content for c in whole.choices] and finished == {0, 1}
