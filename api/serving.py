"""The HTTP protocol the API is served with: uvicorn's own (httptools, else h11) with the
two limits on a request's head that uvicorn lacks.

- A header-read timeout: a connection must send a whole request head within
  COFFEETRACE_API_HEADER_TIMEOUT_S of opening, or of its previous response (keep-alive),
  else it gets 408 and is closed. Without it, slowloris clients (half a request each,
  never finished) kept connections open for as long as they liked, and
  COFFEETRACE_API_LIMIT_CONCURRENCY turned every other request into 503.
- A head size limit for httptools too: more than COFFEETRACE_API_MAX_HEADER_BYTES before
  the head ends gets 431 and the connection is closed (uvicorn applies such a limit only
  with h11).

The class is named in uvicorn's `http=` option; it reads its limits from the settings
(uvicorn's worker processes build their own).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.auto import AutoHTTPProtocol

from coffeetrace.settings import Settings, get_settings

TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"connection: close\r\ncontent-length: 39\r\n\r\nthe request head did not arrive in time"
)
TOO_LARGE_ANSWER = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain;"
    b" charset=utf-8\r\nconnection: close\r\ncontent-length: 27\r\n\r\nthe request head is too big"
)
HEAD_END = b"\r\n\r\n"


class GuardedHTTPProtocol(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
    """uvicorn's HTTP protocol with a header-read timeout and a head size limit."""

    settings: Settings | None = None  # set by the server that runs in this process

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = self.settings or get_settings()
        self._head_timeout = settings.api_header_timeout_s
        self._head_limit = settings.api_max_header_bytes
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0

    def _awaiting_head(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm(self) -> None:
        if self._head_timer is None and self._head_timeout > 0:
            self._head_timer = self.loop.call_later(self._head_timeout, self._head_too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _refuse(self, answer: bytes) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._awaiting_head():
            self._refuse(TIMEOUT_ANSWER)

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head():
            self._arm()  # a kept-alive connection's next request starts its clock here
            end = data.find(HEAD_END)
            head = self._head_bytes + (len(data) if end < 0 else end + len(HEAD_END))
            if head > self._head_limit:
                self._refuse(TOO_LARGE_ANSWER)
                return
            self._head_bytes = 0 if end >= 0 else head
        super().data_received(data)
        if not self._awaiting_head():
            self._disarm()
            self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._head_bytes = 0
