"""The client-side limiter that keeps coffeetrace within the EU's rate limit (5 calls per second
per IP address, Operator API Reference 2.3.2).

A call holds one of `slots` slots from its start until `window_s` after its answer arrived, so
the EU server, whatever the network adds in between, never sees more than `slots` requests
within `window_s`: of any slots+1 requests, two used the same slot, and the later one left
after the earlier one's answer plus the window. Calls wait, they are never refused. It counts
the calls of one process (shared by every client built with it); processes that run on one
machine at once share the EU's allowance and are not coordinated.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class CallLimiter:
    """At most `calls_per_s` calls per second, counted as described above."""

    def __init__(self, calls_per_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if calls_per_s <= 0:
            raise ValueError("calls_per_s must be positive")
        self.slots = max(1, math.floor(calls_per_s))
        self.window_s = self.slots / calls_per_s
        self._clock = clock
        self._free_at = [0.0] * self.slots  # math.inf while a call holds the slot
        self._cond = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold a slot for one call (waiting until one is free)."""
        with self._cond:
            while True:
                now = self._clock()
                index = next((i for i, t in enumerate(self._free_at) if t <= now), None)
                if index is not None:
                    self._free_at[index] = math.inf
                    break
                soonest = min(self._free_at)
                self._cond.wait(None if soonest == math.inf else soonest - now)
        try:
            yield
        finally:
            with self._cond:
                self._free_at[index] = self._clock() + self.window_s
                self._cond.notify_all()
