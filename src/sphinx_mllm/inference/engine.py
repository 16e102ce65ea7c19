"""The generation engine: owns the static KV cache and its slots, the prefix LRU and the decode step,
and runs many sequences at once (continuous batching).

    engine = Engine(model, max_batch=8)
    with engine.submit(prompt_ids, images, SamplingParams(max_new_tokens=64), stop) as seq:
        for token in seq:          # blocks for each new token id
            ...

Cache. One :class:`~sphinx_mllm.model.llm.KVCache` of ``max_batch`` rows x ``max_seq_len``
positions, allocated on first use and kept for the engine's life. Each running sequence holds one
row (its slot) from admission to its end; the model is handed windows of that cache and keeps
nothing between calls.

Threads. :meth:`Engine.submit` may be called from any number of threads at once. One worker thread
(started on demand; gone when nothing is left to do, or, with ``keep_worker``, the default on a
GPU, waiting for the next request until :meth:`Engine.close`) makes every model call. Between two
decode steps it drops cancelled sequences, admits waiting ones into free slots (prefill: newcomers
on consecutive slots with nothing to reuse in one batch) and then decodes one token for every
running sequence in one batch: sequences join and leave between steps. Tokens reach each
:class:`Sequence` through its own queue; ``cancel()`` (also closing a ``with`` block) frees the
slot before the next step. Only the worker touches the cache, so no lock is held during a model
call.

Prefix reuse. After a prefill the engine keeps a copy of the prompt's keys and values in an LRU
keyed by (model, image content). A later prompt with the same image (or none, for text) reuses the
longest common token prefix with that entry and prefills only the rest: at least BOS + the visual
tokens + the system prompt for a new question about the image, the whole earlier prompt for the
next turn of a conversation. The entries are computed with the weights of the time: call
:meth:`Engine.clear_prefixes` after changing them.

Compiled decode (``compile=True``). The decode step always runs on all ``max_batch`` rows over the
whole cache, so its shapes never change and ``torch.compile`` captures it once (on a GPU then
replayed as one CUDA graph, :class:`CudaGraphStep`; on a CPU with inductor's C++ wrapper). Eager
decode instead runs on rows ``[0, last busy slot]`` over the positions in use (rounded up to
``span_step``). Compiling pays where per-kernel overhead is much of a step (small models, GPUs at
small batch); it is opt-in because it costs seconds of compilation (docs/benchmarks.md).
"""

from __future__ import annotations

import atexit
import hashlib
import heapq
import queue
import threading
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable, Sequence as Seq

import torch

from ..constants import IMAGE_PLACEHOLDER_ID
from ..model.llm import KVCache
from ..model.sphinx import SphinxModel
from .sampling import SamplingParams, sample
from .steps import decode_one_token, new_cache, prefill

StopFn = Callable[[list[int]], bool]
_END = object()
_WORKING: weakref.WeakSet = weakref.WeakSet()  # engines whose worker thread has been started


@atexit.register
def _close_engines() -> None:
    """At interpreter exit, end every engine's worker before torch's thread pools are torn down
    (a worker still inside a kernel then aborts the process)."""
    for engine in list(_WORKING):
        engine.close()


def _never(tokens: list[int]) -> bool:
    return False


def image_digest(images: torch.Tensor | None) -> str | None:
    """Content hash of an image tensor (shape, dtype and bytes); None for no image."""
    if images is None:
        return None
    data = images.detach().to("cpu").contiguous()
    h = hashlib.blake2b(f"{tuple(data.shape)} {data.dtype}".encode(), digest_size=16)
    h.update(data.flatten().view(torch.uint8).numpy())
    return h.hexdigest()


def check_fits(prompt_len: int, max_new_tokens: int, limit: int) -> None:
    need = prompt_len + max_new_tokens
    if need > limit:
        raise ValueError(
            f"prompt of {prompt_len} tokens (visual tokens included) + max_new_tokens "
            f"{max_new_tokens} = {need} exceeds max_seq_len {limit}; shorten the prompt or "
            f"history, or lower max_new_tokens")


def common_prefix(a: Seq[int], b: Seq[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass
class Prefix:
    """A prompt's tokens and their keys/values, (n_layers, n_kv_heads, len(tokens), head_dim)."""

    tokens: list[int]
    k: torch.Tensor
    v: torch.Tensor


class PrefixCache:
    """Least-recently-used map of prefix keys to :class:`Prefix`: at most ``capacity`` entries and
    ``max_bytes`` of keys/values (None: no byte limit; a larger entry is not kept). Thread-safe
    (the engine's worker reads and writes it, any thread may clear it)."""

    def __init__(self, capacity: int, max_bytes: int | None = None):
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, Prefix] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def _size(entry: Prefix) -> int:
        return 2 * entry.k.numel() * entry.k.element_size()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return sum(self._size(e) for e in self._entries.values())

    def get(self, key: tuple) -> Prefix | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
            return entry

    def put(self, key: tuple, entry: Prefix) -> None:
        if self.capacity <= 0 or (self.max_bytes is not None and self._size(entry) > self.max_bytes):
            return
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            total = sum(self._size(e) for e in self._entries.values())
            while len(self._entries) > self.capacity or (
                    self.max_bytes is not None and total > self.max_bytes):
                total -= self._size(self._entries.popitem(last=False)[1])

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


class Sequence:
    """Handle on one submitted sequence. Iterate it for its new token ids (each ``next`` blocks
    until the engine has produced one); ``cancel()`` ends it early and frees its cache slot.

    After the end: ``tokens`` (all new ids, the stopping one included), ``finish_reason`` ("stop":
    the stop function said so, "length": ``max_new_tokens`` reached, "cancelled", "error").
    ``reused`` is how many prompt tokens came from the prefix cache.
    """

    def __init__(self, engine: Engine, prompt: list[int], images: torch.Tensor | None,
                 params: SamplingParams, stop: StopFn):
        self.prompt, self.images, self.params, self.stop = prompt, images, params, stop
        self.key = (id(engine.model), image_digest(images))
        self.tokens: list[int] = []
        self.finish_reason: str | None = None
        self.reused = 0
        self.slot: int | None = None
        self.pos = 0  # position of the next token fed to the model
        self.generator = None
        if params.seed is not None:
            self.generator = torch.Generator(device=engine.model.device).manual_seed(params.seed)
        self._engine = engine
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._released = threading.Event()
        self._cancelled = False
        self._ended = False

    def __iter__(self) -> Sequence:
        return self

    def __next__(self) -> int:
        if self._ended:
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._ended = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._ended = True
            raise item
        return item

    def result(self) -> list[int]:
        """Block until the end; all new token ids. Waits for the end itself rather than for each
        token, so that a caller who does not stream does not wake (and take the GIL) per token."""
        self._released.wait()
        for _ in self:  # drains the queue (the end marker is in it), raising a queued error
            pass
        return self.tokens

    @property
    def done(self) -> bool:
        """True once the sequence has ended and its slot is free."""
        return self._released.is_set()

    def cancel(self, wait: bool = True, timeout: float | None = None) -> None:
        """End the sequence; with ``wait``, return once its cache slot is free (at the latest
        after the decode step in flight)."""
        self._engine._cancel(self)
        if wait:
            self._released.wait(timeout)

    def __enter__(self) -> Sequence:
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()


class CudaGraphStep:
    """A compiled decode step replayed as one CUDA graph: recorded at the first call (with that
    call's tokens and positions), replayed with new ones copied into the recorded inputs.

    Recorded by hand rather than by ``torch.compile(mode="reduce-overhead")``, whose graph trees
    live in thread-local state: a second engine's worker thread, or HF's own compiled step in
    the main thread, then failed an assertion in ``cudagraph_trees.get_obj`` (torch 2.11, H200).
    The returned logits are the graph's output buffer, overwritten by the next replay. A replay
    reads the tensors that were there at recording and checks no guard: after the model's
    weights are replaced (not copied into in place), :meth:`reset` so that the next call records
    again (:meth:`Engine.clear_prefixes` does).
    """

    _capturing = threading.Lock()  # one capture at a time in a process (CUDA's rule)

    def __init__(self, step: Callable):
        self.step = step
        self.reset()

    def reset(self) -> None:
        self.graph: torch.cuda.CUDAGraph | None = None

    def __call__(self, tokens: torch.Tensor, pos: torch.Tensor, span: int) -> torch.Tensor:
        with torch.cuda.device(tokens.device):  # a new thread's current device is cuda:0
            if self.graph is None:
                self._record(tokens, pos, span)
            elif span != self.span:
                raise ValueError(f"a recorded step attends over {self.span} positions, not {span}")
            else:
                self.tokens.copy_(tokens)
                self.pos.copy_(pos)
            self.graph.replay()
        return self.logits

    def _record(self, tokens: torch.Tensor, pos: torch.Tensor, span: int) -> None:
        tokens, pos = tokens.clone(), pos.clone()
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # compile, then one warm run; both write the same keys
            for _ in range(2):           # and values at the same positions
                self.step(tokens, pos, span)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with self._capturing, torch.cuda.graph(graph, stream=stream,
                                               capture_error_mode="thread_local"):
            logits = self.step(tokens, pos, span)
        # kept only once recorded: a failed capture leaves the next call to record again
        self.tokens, self.pos, self.span, self.logits, self.graph = tokens, pos, span, logits, graph


class Engine:
    """Runs generation for one model: see the module docstring for cache, threads and reuse.

    max_batch: cache rows, i.e. sequences decoded together; more wait for a free slot.
    max_seq_len: positions per row (default the model's); prompt + max_new_tokens must fit.
    compile: compile the decode step (static shapes; CUDA graphs on a GPU).
    keep_worker: keep the worker thread waiting when idle instead of ending it; such an engine
    lives until :meth:`close`. Default: on a GPU. There sphinx-1k's TTFT on an H200 was 1.1-1.4 s
    with a new worker per request and 141 ms with a kept one (two runs that differ in more than
    this); the likely cause is PyTorch's cuDNN plan cache, which is per thread, so a new worker
    rebuilds the plans of every encoder convolution (docs/benchmarks.md).
    prefix_cache: LRU capacity in prompts (0 disables reuse); prefix_bytes: its memory limit
    (default: half the KV cache's bytes, so it scales with what the caller allocated).
    """

    def __init__(self, model: SphinxModel, max_batch: int = 4, max_seq_len: int | None = None,
                 compile: bool = False, prefix_cache: int = 8, prefix_bytes: int | None = None,
                 span_step: int = 64, keep_worker: bool | None = None):
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.model = model
        self.max_batch = max_batch
        self.max_seq_len = max_seq_len or model.cfg.llm.max_seq_len
        limit = model.llm.rope_positions(model.cfg.llm)
        if self.max_seq_len > limit:
            raise ValueError(f"max_seq_len {self.max_seq_len} exceeds the RoPE table ({limit})")
        self.compiled = compile
        self.span_step = span_step
        self.prefixes = PrefixCache(prefix_cache, prefix_bytes if prefix_bytes is not None
                                    else self.cache_bytes() // 2)
        self.stats = {"prefills": 0, "prefix_hits": 0, "reused_tokens": 0, "decode_steps": 0}
        self._cache: KVCache | None = None
        self._decode = self._compile_decode() if compile else self._decode_rows
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)  # an idle kept worker waits on it
        self._keep_worker = model.device.type == "cuda" if keep_worker is None else keep_worker
        self._closing = False
        self._waiting: deque[Sequence] = deque()
        self._running: dict[int, Sequence] = {}
        self._free = list(range(max_batch))  # a heap: the lowest free slot first
        self._worker: threading.Thread | None = None

    # --- public --------------------------------------------------------------------------------
    def submit(self, prompt: Seq[int], images: torch.Tensor | None = None,
               params: SamplingParams | None = None, stop: StopFn | None = None) -> Sequence:
        """Queue one sequence; returns its handle at once. Thread-safe.

        prompt: token ids with ``image_tokens`` placeholders per image; images: (N, 3, S, S) for
        those placeholders, or None. ``stop(tokens_so_far)`` ends the sequence after a token.
        Raises ValueError here, in the caller, when the prompt is empty, does not fit
        ``max_seq_len`` with ``max_new_tokens``, or disagrees with ``images``.
        """
        return self.submit_many([prompt], [images], params, stop)[0]

    def submit_many(self, prompts: Seq[Seq[int]], images: Seq[torch.Tensor | None],
                    params: SamplingParams | None = None,
                    stop: StopFn | None = None) -> list[Sequence]:
        """Queue several sequences at once (so that they can share one prefill); see
        :meth:`submit`. Nothing is queued when one of them fails the checks."""
        params = params or SamplingParams()
        seqs = []
        for prompt, image in zip(prompts, images, strict=True):
            prompt = [int(t) for t in prompt]
            self._check(prompt, image, params)
            seqs.append(Sequence(self, prompt, image, params, stop or _never))
        with self._lock:
            self._waiting.extend(seqs)
            self._wake.notify()
            if self._worker is None:
                self._worker = threading.Thread(target=self._run, name="sphinx-engine", daemon=True)
                self._worker.start()
                _WORKING.add(self)
        return seqs

    def close(self, timeout: float = 10.0) -> None:
        """Cancel every sequence and wait (up to ``timeout`` s) for the worker to stop. The engine
        stays usable: a later submit starts a new worker."""
        with self._lock:
            for seq in list(self._waiting):
                self._finish(seq, "cancelled")
            self._waiting.clear()
            for seq in self._running.values():
                seq._cancelled = True
            worker = self._worker
            self._closing = True
            self._wake.notify()
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout)
        with self._lock:
            self._closing = False

    def clear_prefixes(self) -> None:
        """Forget every cached prefix, and a recorded CUDA graph of the decode step (needed after
        the model's weights change)."""
        self.prefixes.clear()
        if isinstance(self._decode, CudaGraphStep):
            self._decode.reset()

    @property
    def busy_slots(self) -> int:
        with self._lock:
            return len(self._running)

    def cache_bytes(self) -> int:
        """Bytes the KV cache takes (allocated or not yet)."""
        cfg = self.model.cfg.llm
        per = 2 * cfg.n_layers * cfg.n_kv_heads * cfg.head_dim * self.model.dtype.itemsize
        return per * self.max_batch * self.max_seq_len

    # --- submission checks -----------------------------------------------------------------------
    def _check(self, prompt: list[int], images: torch.Tensor | None,
               params: SamplingParams) -> None:
        if not prompt:
            raise ValueError("empty prompt")
        check_fits(len(prompt), params.max_new_tokens, self.max_seq_len)
        found = sum(t == IMAGE_PLACEHOLDER_ID for t in prompt)
        n_images = 0 if images is None else images.shape[0]
        if found != n_images * self.model.cfg.image_tokens:
            raise ValueError(f"prompt has {found} image placeholders but {n_images} image(s) need "
                             f"{n_images * self.model.cfg.image_tokens}")

    # --- the worker ----------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            with torch.inference_mode():
                while self._schedule():
                    self._decode_step()
        except BaseException as exc:  # a failed decode step fails every sequence, not the caller
            with self._lock:
                for seq in list(self._running.values()) + list(self._waiting):
                    seq._queue.put(exc)
                    self._finish(seq, "error")
                self._waiting.clear()
                self._worker = None

    def _schedule(self) -> bool:
        """Between steps: drop cancelled sequences, prefill newcomers into free slots. When
        nothing is left to run: False (and the worker gone), or, for a kept worker, wait for a
        submit (False once the engine closes)."""
        with self._lock:
            for seq in [s for s in self._running.values() if s._cancelled]:
                self._finish(seq, "cancelled")
            while not self._running and not self._waiting:
                if not self._keep_worker or self._closing:
                    self._worker = None
                    return False
                self._wake.wait()
            joining = []
            while self._waiting and self._free:
                seq = self._waiting.popleft()
                seq.slot = heapq.heappop(self._free)
                self._running[seq.slot] = seq
                joining.append(seq)
        self._join_all(joining)
        return True

    def _finish(self, seq: Sequence, reason: str) -> None:
        """End ``seq`` and free its slot; the caller holds the lock."""
        if seq.done:
            return
        seq.finish_reason = reason
        if seq.slot is not None:
            del self._running[seq.slot]
            heapq.heappush(self._free, seq.slot)
            seq.slot = None
        seq._queue.put(_END)
        seq._released.set()

    def _cancel(self, seq: Sequence) -> None:
        with self._lock:
            seq._cancelled = True
            if seq in self._waiting:
                self._waiting.remove(seq)
                self._finish(seq, "cancelled")

    def _kv(self) -> KVCache:
        if self._cache is None:
            self._cache = new_cache(self.model, self.max_batch, self.max_seq_len)
            if self.compiled and self.model.device.type == "cuda":
                # CUDA graphs replay fixed addresses: the cache must be one (as HF's StaticCache)
                for tensor in self._cache.k + self._cache.v:
                    torch._dynamo.mark_static_address(tensor)
        return self._cache

    def _span(self, positions: int) -> int:
        """Cache positions a step attends over: the ones in use, rounded up to ``span_step``
        (prefill always; decode when eager, the compiled step keeps the whole cache)."""
        return min(self.max_seq_len, -(-positions // self.span_step) * self.span_step)

    # --- prefill ---------------------------------------------------------------------------------
    def _join_all(self, joining: list[Sequence]) -> None:
        """Prefill the newcomers: those on consecutive slots with nothing to reuse in one batch
        (encoders included), the others one by one after their cached prefix."""
        groups: list[tuple[list[Sequence], int, Prefix | None]] = []
        for seq in sorted(joining, key=lambda s: s.slot):
            reuse, entry = self._reusable(seq)
            last = groups[-1] if groups else None
            if not reuse and last and not last[1] and last[0][-1].slot + 1 == seq.slot:
                last[0].append(seq)
            else:
                groups.append(([seq], reuse, entry))
        for seqs, reuse, entry in groups:
            try:
                logits = self._prefill(seqs, reuse, entry)
            except Exception as exc:  # e.g. a bad image: these sequences fail, the others go on
                with self._lock:
                    for seq in seqs:
                        seq._queue.put(exc)
                        self._finish(seq, "error")
                continue
            for seq, token in zip(seqs, self._pick(logits, seqs)):
                self._emit(seq, token)

    def _reusable(self, seq: Sequence) -> tuple[int, Prefix | None]:
        """Prompt tokens to take from the prefix cache (and the entry): the longest common prefix
        with the entry for this image, leaving at least one token to prefill and no placeholder
        behind (visual tokens come from the cache entirely or not at all)."""
        entry = self.prefixes.get(seq.key)
        if entry is None:
            return 0, None
        n = min(common_prefix(entry.tokens, seq.prompt), len(seq.prompt) - 1)
        if n <= 0 or IMAGE_PLACEHOLDER_ID in seq.prompt[n:]:
            return 0, None
        return n, entry

    def _prefill(self, seqs: list[Sequence], reuse: int, entry: Prefix | None) -> torch.Tensor:
        """Prefill sequences on consecutive slots (right-padded; ``reuse`` > 0 only for one
        sequence, whose first ``reuse`` positions are copied from ``entry``). Logits (B, V)."""
        cache, device, first = self._kv(), self.model.device, seqs[0].slot
        lengths = [len(seq.prompt) for seq in seqs]
        if entry is not None:
            cache.write(first, entry.k[:, :, :reuse], entry.v[:, :, :reuse])
        ids = torch.zeros((len(seqs), max(lengths) - reuse), dtype=torch.long)
        for row, seq in enumerate(seqs):
            ids[row, :lengths[row] - reuse] = torch.tensor(seq.prompt[reuse:])
        pics = [seq.images for seq in seqs if seq.images is not None and not reuse]
        images = torch.cat(pics).to(device) if pics else None
        window = cache.window(slice(first, first + len(seqs)), self._span(max(lengths)))
        logits = prefill(self.model, window, ids.to(device), images,
                         torch.tensor(lengths, device=device), reuse)
        for row, seq in enumerate(seqs):
            if self.prefixes.capacity:
                k, v = cache.read(first + row, lengths[row])
                self.prefixes.put(seq.key, Prefix(seq.prompt, k, v))
            seq.reused, seq.pos = reuse, lengths[row]
        self.stats["prefills"] += 1
        self.stats["prefix_hits"] += bool(reuse)
        self.stats["reused_tokens"] += reuse
        return logits

    # --- decode ----------------------------------------------------------------------------------
    def _decode_rows(self, tokens: torch.Tensor, pos: torch.Tensor, span: int) -> torch.Tensor:
        """One token for cache rows ``[0, len(tokens))`` over positions ``[0, span)``: (rows, V)."""
        window = self._kv().window(slice(0, tokens.shape[0]), span)
        return decode_one_token(self.model, window, tokens, pos)

    def _compile_decode(self):
        if self.model.device.type == "cuda":
            return CudaGraphStep(torch.compile(self._decode_rows, fullgraph=True, dynamic=False))
        # On a CPU, inductor's C++ wrapper calls the step's kernels without Python in between:
        # that per-kernel overhead is most of a small model's step (docs/benchmarks.md).
        return torch.compile(self._decode_rows, fullgraph=True, dynamic=False,
                             options={"cpp_wrapper": True})

    def _decode_step(self) -> None:
        seqs = sorted(self._running.values(), key=lambda s: s.slot)
        if not seqs:
            return
        rows = self.max_batch if self.compiled else seqs[-1].slot + 1
        tokens, pos = [0] * rows, [0] * rows  # idle rows decode token 0 at position 0
        for seq in seqs:
            tokens[seq.slot], pos[seq.slot] = seq.tokens[-1], seq.pos
        device = self.model.device
        logits = self._decode(torch.tensor(tokens, device=device), torch.tensor(pos, device=device),
                              self.max_seq_len if self.compiled else self._span(max(pos) + 1))
        if rows != len(seqs):
            logits = logits[[seq.slot for seq in seqs]]
        picked = self._pick(logits, seqs)
        self.stats["decode_steps"] += 1
        for seq, token in zip(seqs, picked):
            seq.pos += 1
            self._emit(seq, token)

    @staticmethod
    def _pick(logits: torch.Tensor, seqs: list[Sequence]) -> list[int]:
        """Next token per row of ``logits`` (len(seqs), V), each with its own sampling params."""
        picked = logits.argmax(-1).tolist()
        for i, seq in enumerate(seqs):
            if seq.params.temperature > 0:
                picked[i] = int(sample(logits[i:i + 1], seq.params, seq.generator)[0])
        return picked

    def _emit(self, seq: Sequence, token: int) -> None:
        seq.tokens.append(token)
        seq._queue.put(token)
        try:
            stopped = seq.stop(seq.tokens)
        except Exception as exc:  # the caller's stop function failed: end only its sequence
            seq._queue.put(exc)
            stopped = None
        reason = ("error" if stopped is None else "stop" if stopped
                  else "length" if len(seq.tokens) >= seq.params.max_new_tokens else None)
        if reason:
            with self._lock:
                self._finish(seq, reason)
