"""The API's ``stop`` strings applied to streamed text: nothing past a stop string ever leaves."""

from __future__ import annotations


class StopText:
    """Feed text deltas; get back what may be shown now and whether a stop string was hit.

    A tail that could still grow into a stop string is held back until the next delta settles it
    (as the pipeline holds back a partial ``###``). ``text`` is the answer so far, cut before the
    stop string once one is hit.
    """

    def __init__(self, stops: list[str]):
        self.stops = [s for s in stops if s]
        self.text = ""
        self._seen = ""
        self._shown = 0

    def feed(self, delta: str) -> tuple[str, bool]:
        self._seen += delta
        hits = [i for i in (self._seen.find(s) for s in self.stops) if i >= 0]
        if hits:
            self.text = self._seen[:min(hits)]
            return self._release(len(self.text)), True
        hold = max((k for s in self.stops for k in range(1, len(s))
                    if self._seen.endswith(s[:k])), default=0)
        self.text = self._seen
        return self._release(len(self._seen) - hold), False

    def flush(self) -> str:
        """At the end of the answer: the held-back tail (it never became a stop string)."""
        return self._release(len(self._seen))

    def _release(self, upto: int) -> str:
        out = self._seen[self._shown:upto]
        self._shown = max(self._shown, upto)
        return out
