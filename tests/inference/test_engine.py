"""The engine's fast paths give the plain path's greedy tokens; slots are shared and freed.
The ``gpu`` tests check the same on CUDA (graph-replayed decode), skipped without one."""

import copy
import threading

import pytest
import torch

from sphinx_mllm.constants import IMAGE_PLACEHOLDER_ID as PH
from sphinx_mllm.inference.engine import Engine, PrefixCache, Prefix
from sphinx_mllm.inference.generate import SamplingParams, generate


@pytest.fixture(scope="module")
def images():
    torch.manual_seed(11)
    return torch.randn(4, 3, 112, 112)


def prompt(cfg, text, image=True):
    return [1] + [PH] * (cfg.image_tokens * image) + list(text)


def plain(model, ids, image, n):
    """The plain path: a one-off engine for this prompt alone, no reuse, eager."""
    return generate(model, [ids], image, SamplingParams(max_new_tokens=n), lambda t: False)[0]


def test_continuous_batching_with_joins_mid_flight_equals_one_by_one(sharp_model, images):
    cfg = sharp_model.cfg
    prompts = [prompt(cfg, [5, 6]), prompt(cfg, [7, 8, 9, 10, 11]), prompt(cfg, [12]),
               prompt(cfg, [13, 14, 15], image=False)]
    budgets = [12, 5, 9, 7]
    pics = [images[0:1], images[1:2], images[2:3], None]
    engine = Engine(sharp_model, max_batch=2, prefix_cache=0)  # 4 sequences through 2 slots
    first = engine.submit(prompts[0], pics[0], SamplingParams(max_new_tokens=budgets[0]))
    early = [next(first) for _ in range(3)]  # the first runs alone for a while, then others join
    rest = [engine.submit(p, im, SamplingParams(max_new_tokens=n))
            for p, im, n in zip(prompts[1:], pics[1:], budgets[1:])]
    got = [early + list(first)] + [s.result() for s in rest]
    want = [plain(sharp_model, p, im, n) for p, im, n in zip(prompts, pics, budgets)]
    assert got == want
    assert [len(g) for g in got] == budgets and len(set(got[0])) > 1
    assert engine.stats["decode_steps"] < sum(budgets) - len(budgets)  # steps were shared
    assert engine.busy_slots == 0


def test_newcomers_share_one_prefill_and_decode_as_one_by_one(sharp_model, images):
    cfg = sharp_model.cfg
    prompts = [prompt(cfg, [5, 6]), prompt(cfg, [7, 8, 9, 10, 11, 12]), prompt(cfg, [13], False)]
    engine = Engine(sharp_model, max_batch=3, prefix_cache=0)
    got = generate(engine, prompts, images[:2], SamplingParams(max_new_tokens=8), lambda t: False)
    assert engine.stats["prefills"] == 1  # three right-padded prompts, two images, one forward
    assert got == [plain(sharp_model, p, im, 8)
                   for p, im in zip(prompts, [images[0:1], images[1:2], None])]


def test_prefix_reuse_gives_the_same_tokens_and_skips_the_image(sharp_model, images):
    cfg = sharp_model.cfg
    engine = Engine(sharp_model, max_batch=2, prefix_cache=2)
    turn1 = prompt(cfg, [20, 21, 22, 23])
    a1 = engine.submit(turn1, images[:1], SamplingParams(max_new_tokens=6)).result()
    turn2 = turn1 + a1 + [24, 25]  # the next turn extends the earlier prompt
    seq = engine.submit(turn2, images[:1], SamplingParams(max_new_tokens=6))
    a2 = seq.result()
    assert seq.reused == len(turn1)
    assert a2 == plain(sharp_model, turn2, images[:1], 6)
    other = prompt(cfg, [20, 21, 30])  # another question about the same image
    seq = engine.submit(other, images[:1], SamplingParams(max_new_tokens=6))
    assert seq.result() == plain(sharp_model, other, images[:1], 6)
    assert seq.reused == 1 + cfg.image_tokens + 2
    seq = engine.submit(other, images[1:2], SamplingParams(max_new_tokens=6))  # a new image
    assert seq.result() == plain(sharp_model, other, images[1:2], 6) and seq.reused == 0


def test_prefix_cache_is_least_recently_used():
    lru = PrefixCache(2)
    entry = Prefix([1], torch.zeros(1), torch.zeros(1))
    lru.put(("m", "a"), entry)
    lru.put(("m", "b"), entry)
    assert lru.get(("m", "a")) is entry  # a is now the most recent
    lru.put(("m", "c"), entry)
    assert lru.get(("m", "b")) is None and lru.get(("m", "a")) is entry and len(lru) == 2
    small = PrefixCache(8, max_bytes=3 * 2 * 4)  # room for three 1-float entries (k and v)
    for name in "abcd":
        small.put(("m", name), Prefix([1], torch.zeros(1), torch.zeros(1)))
    assert len(small) == 3 and small.get(("m", "a")) is None and small.nbytes == 24
    small.put(("m", "big"), Prefix([1], torch.zeros(4), torch.zeros(4)))  # larger than the limit
    assert small.get(("m", "big")) is None and len(small) == 3


def test_compiled_decode_gives_the_same_greedy_tokens(sharp_model, images):
    cfg = sharp_model.cfg
    prompts = [prompt(cfg, [5, 6, 7]), prompt(cfg, [8], image=False)]
    engine = Engine(sharp_model, max_batch=2, max_seq_len=256, compile=True, prefix_cache=0)
    seqs = [engine.submit(p, im, SamplingParams(max_new_tokens=8))
            for p, im in zip(prompts, [images[:1], None])]
    got = [s.result() for s in seqs]
    assert got == [plain(sharp_model, p, im, 8) for p, im in zip(prompts, [images[:1], None])]


def test_sampled_sequences_keep_their_own_seeded_stream(sharp_model, images):
    cfg = sharp_model.cfg
    ids = prompt(cfg, [5, 6])
    params = SamplingParams(max_new_tokens=8, temperature=1.5, top_p=0.9, seed=3)
    engine = Engine(sharp_model, max_batch=3, prefix_cache=0)
    greedy = engine.submit(ids, images[:1], SamplingParams(max_new_tokens=8))
    together = engine.submit(ids, images[:1], params)
    greedy.result()
    alone = Engine(sharp_model, max_batch=1).submit(ids, images[:1], params).result()
    assert together.result() == alone


def test_threads_are_batched_together_and_cancel_frees_the_slot(sharp_model):
    engine = Engine(sharp_model, max_batch=4, prefix_cache=0)
    ids = [[1, 5 + i, 9] for i in range(4)]
    want = [plain(sharp_model, p, None, 10) for p in ids]
    got = [None] * 4
    start = threading.Barrier(4)

    def worker(i):
        start.wait()
        got[i] = engine.submit(ids[i], None, SamplingParams(max_new_tokens=10)).result()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert got == want
    assert engine.stats["decode_steps"] < 4 * 9  # at least some steps served several threads

    long = engine.submit(ids[0], None, SamplingParams(max_new_tokens=200))
    next(long)
    assert engine.busy_slots == 1
    long.cancel()
    assert long.done and long.finish_reason == "cancelled" and engine.busy_slots == 0
    assert list(long) == [] or len(long.tokens) < 200


def test_submit_checks_in_the_caller(sharp_model, images):
    engine = Engine(sharp_model, max_batch=1, max_seq_len=200)
    cfg = sharp_model.cfg
    with pytest.raises(ValueError, match="exceeds max_seq_len 200"):
        engine.submit(prompt(cfg, [5] * 60), images[:1], SamplingParams(max_new_tokens=10))
    with pytest.raises(ValueError, match="placeholders"):
        engine.submit(prompt(cfg, [5]), None, SamplingParams(max_new_tokens=4))
    with pytest.raises(ValueError, match="empty"):
        engine.submit([], None)


def test_a_failing_stop_function_ends_only_its_sequence(sharp_model):
    engine = Engine(sharp_model, max_batch=2, prefix_cache=0)

    def broken(tokens):
        raise RuntimeError("stop broke")

    bad = engine.submit([1, 5], None, SamplingParams(max_new_tokens=5), broken)
    good = engine.submit([1, 6], None, SamplingParams(max_new_tokens=5))
    with pytest.raises(RuntimeError, match="stop broke"):
        bad.result()
    assert good.result() == plain(sharp_model, [1, 6], None, 5)


def test_close_cancels_running_and_waiting_sequences(sharp_model):
    engine = Engine(sharp_model, max_batch=1, prefix_cache=0)
    running = engine.submit([1, 5], None, SamplingParams(max_new_tokens=500))
    waiting = engine.submit([1, 6], None, SamplingParams(max_new_tokens=5))
    next(running)
    engine.close()
    assert running.finish_reason == "cancelled" and waiting.finish_reason == "cancelled"
    assert engine.busy_slots == 0 and len(running.tokens) < 500 and waiting.tokens == []
    assert engine.submit([1, 6], None, SamplingParams(max_new_tokens=3)).result()  # usable again


def test_a_kept_worker_serves_later_requests_and_stops_on_close(sharp_model):
    # CUDA graph trees are per thread: a compiled GPU engine keeps its one worker (here forced on CPU)
    engine = Engine(sharp_model, max_batch=1, prefix_cache=0, keep_worker=True)
    first = engine.submit([1, 5], None, SamplingParams(max_new_tokens=3)).result()
    worker = engine._worker
    assert worker is not None and worker.is_alive()  # idle, waiting, not gone
    assert engine.submit([1, 5], None, SamplingParams(max_new_tokens=3)).result() == first
    assert engine._worker is worker  # the same thread served the second request
    engine.close()
    assert not worker.is_alive() and engine._worker is None
    assert engine.submit([1, 5], None, SamplingParams(max_new_tokens=3)).result() == first
    engine.close()


def test_a_plain_engine_worker_ends_when_idle(sharp_model):
    engine = Engine(sharp_model, max_batch=1, prefix_cache=0)
    engine.submit([1, 5], None, SamplingParams(max_new_tokens=3)).result()
    worker = engine._worker
    if worker is not None:  # the worker may still be between its last token and its exit
        worker.join(5)
    assert engine._worker is None


# --- on a GPU: CUDA-graph decode, continuous batching, prefix reuse, a kept worker -------------


@pytest.fixture(scope="module")
def cuda_model(sharp_model):
    return copy.deepcopy(sharp_model).to("cuda")


@pytest.fixture(scope="module")
def cuda_images():
    torch.manual_seed(11)
    return torch.randn(3, 3, 112, 112).cuda()


@pytest.mark.gpu
def test_cuda_graph_decode_with_joins_and_reuse_equals_the_plain_path(cuda_model, cuda_images):
    cfg, pics = cuda_model.cfg, cuda_images
    prompts = [prompt(cfg, [5, 6, 7]), prompt(cfg, [8, 9]), prompt(cfg, [10], image=False)]
    images = [pics[0:1], pics[1:2], None]
    want = [plain(cuda_model, p, im, 10) for p, im in zip(prompts, images)]
    engine = Engine(cuda_model, max_batch=2, max_seq_len=256, compile=True, prefix_cache=4)
    try:
        first = engine.submit(prompts[0], images[0], SamplingParams(max_new_tokens=10))
        early = [next(first) for _ in range(3)]  # the others join mid-flight; 3 through 2 slots
        rest = [engine.submit(p, im, SamplingParams(max_new_tokens=10))
                for p, im in zip(prompts[1:], images[1:])]
        assert [early + list(first)] + [s.result() for s in rest] == want
        again = engine.submit(prompts[1], images[1], SamplingParams(max_new_tokens=10))
        assert again.result() == want[1]  # the kept worker replays its graphs; prefix reused
        assert again.reused == len(prompts[1]) - 1
    finally:
        engine.close()


@pytest.mark.gpu
def test_bf16_cuda_graph_decode_equals_bf16_eager(cuda_model, cuda_images):
    model = copy.deepcopy(cuda_model).to(torch.bfloat16)
    ids, image = prompt(model.cfg, [5, 6, 7]), cuda_images[:1].to(torch.bfloat16)
    engine = Engine(model, max_batch=1, max_seq_len=256, compile=True, prefix_cache=0)
    try:
        got = engine.submit(ids, image, SamplingParams(max_new_tokens=12)).result()
    finally:
        engine.close()
    assert got == plain(model, ids, image, 12)


@pytest.mark.gpu
def test_two_cuda_graph_engines_in_two_threads_then_a_new_worker(cuda_model, cuda_images):
    ids, image = prompt(cuda_model.cfg, [5, 6, 7]), cuda_images[:1]
    want = plain(cuda_model, ids, image, 8)
    engines = [Engine(cuda_model, max_batch=1, max_seq_len=256, compile=True, prefix_cache=0)
               for _ in range(2)]
    got = [None, None]

    def ask(i):
        got[i] = engines[i].submit(ids, image, SamplingParams(max_new_tokens=8)).result()

    try:
        threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert got == [want, want]  # each recorded its own graph, in its own worker thread
        engines[0].close()  # the next request starts a new worker, which replays the graph
        assert engines[0].submit(ids, image, SamplingParams(max_new_tokens=8)).result() == want
    finally:
        for engine in engines:
            engine.close()
