"""Per-client rate limits of the public endpoints: a token bucket per client address.

What the limits protect is the database and the lot codes: a Digital Link lookup that
is not remembered, a page rendered on a cache miss and `/l/{id}/verify` take tokens; an
answer from memory (a remembered link, a cached page) takes none, so a popular lot's QR
code is never refused. A lookup that finds nothing (a 404 of the resolver, an unknown
public id) takes `miss_cost` tokens: guessing lot codes runs dry fast, while a client
that scans real codes keeps its full rate. Buckets live in this process (each API worker
counts on its own); at most `max_clients` are tracked, the least recently seen dropped
first (a dropped bucket comes back full, which only ever favours the client).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from fastapi import Request

from coffeetrace.errors import CoffeetraceError
from coffeetrace.settings import Settings


class RateLimited(CoffeetraceError):
    status_code = 429
    code = "rate_limited"


@dataclass
class _Bucket:
    tokens: float
    at: float


class ClientLimiter:
    def __init__(
        self, per_minute: float, burst: int, miss_cost: float, max_clients: int = 10_000
    ) -> None:
        self.rate = per_minute / 60.0  # tokens per second; 0: no limit
        self.burst = float(burst)
        self.miss_cost = miss_cost
        self.max_clients = max(1, max_clients)
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> ClientLimiter:
        return cls(
            settings.public_lookups_per_minute,
            settings.public_lookups_burst,
            settings.public_miss_cost,
            settings.public_rate_clients,
        )

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def __len__(self) -> int:
        return len(self._buckets)

    def _bucket(self, client: str, now: float) -> _Bucket:
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = _Bucket(self.burst, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            self._buckets.move_to_end(client)
        return bucket

    def take(self, client: str, cost: float = 1.0, now: float | None = None) -> float:
        """Take `cost` tokens of `client`'s bucket: 0.0 when granted, else the seconds
        until it would be (nothing is taken then)."""
        if not self.enabled:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._bucket(client, now)
            if bucket.tokens >= cost:
                bucket.tokens -= cost
                return 0.0
            return (cost - bucket.tokens) / self.rate

    def charge(self, client: str, cost: float, now: float | None = None) -> None:
        """Take `cost` more tokens whatever is left (a miss found out after the lookup);
        the debt is bounded by one burst."""
        if not self.enabled or cost <= 0:
            return
        now = time.monotonic() if now is None else now
        with self._lock:
            bucket = self._bucket(client, now)
            bucket.tokens = max(-self.burst, bucket.tokens - cost)


def client_of(request: Request) -> str:
    """The client's address: uvicorn puts the forwarded one here only when the proxy
    headers come from an address it trusts (--forwarded-allow-ips)."""
    return request.client.host if request.client else "unknown"


def limiter_of(request: Request) -> ClientLimiter:
    limiter: ClientLimiter = request.app.state.public_limiter
    return limiter


def check(request: Request, cost: float = 1.0) -> None:
    """RateLimited (429, with the seconds to wait) when the client has no tokens left."""
    wait = limiter_of(request).take(client_of(request), cost)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise RateLimited(
            f"too many lookups from your address; try again in {seconds} s",
            retry_after_s=seconds,
        )


def missed(request: Request) -> None:
    """The lookup just allowed found nothing: it costs `miss_cost` in all."""
    limiter = limiter_of(request)
    limiter.charge(client_of(request), limiter.miss_cost - 1.0)
