"""The page cache's single flight: one caller checks a due entry, the others are served."""

from __future__ import annotations

import time

from coffeetrace.api.cache import Entry, PageCache


def test_fresh_due_and_single_flight() -> None:
    cache = PageCache(entries=10, recheck_s=0.05, ttl_s=60)
    key = ("lot", "abc", "html", "vi")
    assert cache.lookup(key) == (None, True)
    entry = cache.put(key, Entry(body=b"<p>1</p>", media_type="text/html", head="h1"))
    assert cache.lookup(key) == (entry, False)
    time.sleep(0.06)
    first = cache.lookup(key)
    assert first == (entry, True)  # this caller checks
    assert cache.lookup(key) == (entry, False)  # the others are served meanwhile
    assert cache.revalidate(key, "h1") is entry  # same chain head: kept, check refreshed
    cache.done(entry)
    assert cache.lookup(key) == (entry, False)
    time.sleep(0.06)
    assert cache.lookup(key)[1] is True
    assert cache.revalidate(key, "h2") is None  # the chain moved on: render again
    cache.done(entry)


def test_bounded_and_ttl() -> None:
    cache = PageCache(entries=2, recheck_s=10, ttl_s=0.05)
    for i in range(3):
        cache.put(("k", str(i)), Entry(body=str(i).encode(), media_type="text/plain", head=i))
    assert cache.lookup(("k", "0")) == (None, True)  # evicted, least recently used
    entry = cache._data[("k", "2")]
    assert entry.etag.startswith('"') and len(entry.etag) == 34
    time.sleep(0.06)
    assert cache.lookup(("k", "2")) == (entry, True)  # expired: checked again
    assert cache.revalidate(("k", "2"), 2) is None  # and past its TTL it is re-rendered
    off = PageCache(entries=0, recheck_s=10, ttl_s=10)
    off.put(("k",), Entry(body=b"x", media_type="text/plain", head=None))
    assert off.lookup(("k",)) == (None, True)
