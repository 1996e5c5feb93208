"""In-process cache of rendered public pages, for repeated scans of the same lot.

A lot page is served from memory for `recheck_s`; after that one cheap query reads the
lot's chain head, and a changed head (a new trace event about the lot) means a new
render. Every entry also expires after `ttl_s`, since the weather charts move on
without chain events. Thread-safe: the event loop reads, worker threads write.

Single flight: when an entry is due for a check, one request checks (or re-renders)
while concurrent requests for the same page are served the entry they would have got a
moment earlier, so a popular lot never sends a burst of identical queries or renders.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    body: bytes
    media_type: str
    head: Any  # what the entry was rendered from: the chain head hash for lot pages
    headers: dict[str, str] = field(default_factory=dict)
    rendered_at: float = field(default_factory=time.monotonic)
    checked_at: float = field(default_factory=time.monotonic)
    etag: str = ""
    refreshing: bool = False

    def __post_init__(self) -> None:
        if not self.etag:
            self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:32] + '"'


class PageCache:
    def __init__(self, entries: int, recheck_s: float, ttl_s: float) -> None:
        self.max_entries = entries
        self.recheck_s = recheck_s
        self.ttl_s = ttl_s
        self._data: OrderedDict[tuple[str, ...], Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[tuple[str, ...], threading.Lock] = {}
        self.hits = 0
        self.misses = 0

    def lookup(self, key: tuple[str, ...]) -> tuple[Entry | None, bool]:
        """(entry to serve or None, whether this caller must check it against the database).

        A fresh entry is served as is; a due one is checked by exactly one caller while
        the others are served it unchanged."""
        entry = self._data.get(key)
        if entry is None:
            return None, True
        now = time.monotonic()
        if now - entry.checked_at < self.recheck_s and now - entry.rendered_at < self.ttl_s:
            self.hits += 1
            return entry, False
        with self._lock:
            if entry.refreshing:
                self.hits += 1
                return entry, False
            entry.refreshing = True
        return entry, True

    def done(self, entry: Entry | None) -> None:
        """The check of `entry` started by lookup() is over (whatever its outcome)."""
        if entry is not None:
            entry.refreshing = False

    def key_lock(self, key: tuple[str, ...]) -> AbstractContextManager[Any]:
        """One lock per page, so a cold page is rendered once, not by every waiting request.
        Without a cache there is nothing to share, so requests do not wait for each other."""
        if self.max_entries <= 0:
            return nullcontext()
        with self._lock:
            lock = self._inflight.get(key)
            if lock is None:
                if len(self._inflight) > 4 * max(self.max_entries, 64):
                    self._inflight.clear()  # bounded; a lost lock only costs a duplicate render
                lock = self._inflight[key] = threading.Lock()
            return lock

    def revalidate(self, key: tuple[str, ...], head: Any) -> Entry | None:
        """The entry when it was rendered from `head` and has not expired; refreshes its check."""
        with self._lock:
            entry = self._data.get(key)
            now = time.monotonic()
            if entry is None or entry.head != head or now - entry.rendered_at >= self.ttl_s:
                self.misses += 1
                return None
            entry.checked_at = now
            self._data.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[str, ...], entry: Entry) -> Entry:
        if self.max_entries <= 0:
            return entry
        with self._lock:
            self._data[key] = entry
            self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
        return entry

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class Memo:
    """A small bounded map for immutable lookups (Digital Link -> lot public id)."""

    def __init__(self, entries: int = 10000) -> None:
        self.max_entries = entries
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            self._data[key] = value
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)
