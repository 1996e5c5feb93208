"""The API's EPCIS subscription callbacks: every COFFEETRACE_EPCIS_DELIVER_POLL_S, the
due subscriptions' next events are POSTed to their webhooks as EPCISQueryDocuments
signed with GS1-Signature (trace/epcis_subscriptions.py says what is due and in which
order). One API process at a time delivers (a session advisory lock held for the round
on a connection of its own, outside any transaction, so that it holds back no record
horizon); a cursor is committed after each 2xx, so a restart resends at most the
callback in flight.

A webhook `dest` is the subscriber's input: only http and https, only public addresses
unless COFFEETRACE_EPCIS_WEBHOOK_ALLOW_PRIVATE (the call goes to the address that was
checked, not to a second DNS answer), no redirects followed, at most
COFFEETRACE_EPCIS_WEBHOOK_TIMEOUT_S per call, at most COFFEETRACE_EPCIS_WEBHOOK_MAX_BYTES
of events per body, and at most 64 KiB of the answer read.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from coffeetrace import db
from coffeetrace.db import DbConn, Row
from coffeetrace.errors import first_line
from coffeetrace.settings import Settings
from coffeetrace.sql import load_queries
from coffeetrace.trace import epcis_query, epcis_subscriptions
from coffeetrace.trace.epcis_capture import EpcisError

SQL = load_queries("coffeetrace.api", "epcis_deliverer.sql")
log = logging.getLogger(__name__)
ANSWER_READ = 64 * 1024  # bytes of a receiver's answer read (then the call is closed)
DUE_PER_ROUND = 100  # subscriptions looked at per round
CALLS_PER_SUBSCRIPTION = 50  # callbacks per subscription per round, then the next one


@dataclass(frozen=True)
class Limits:
    allow_private: bool
    timeout_s: float
    max_bytes: int
    max_events: int
    retry_base_s: float
    retry_max_s: float
    failing_after: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.epcis_webhook_allow_private,
            settings.epcis_webhook_timeout_s,
            settings.epcis_webhook_max_bytes,
            settings.epcis_webhook_max_events,
            settings.epcis_webhook_retry_base_s,
            settings.epcis_webhook_retry_max_s,
            settings.epcis_webhook_failing_after,
        )


class _Pinned(http.client.HTTPConnection):
    """HTTP to the address that was checked, the URL's host in the Host header."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    """HTTPS to the checked address; the certificate is checked against the URL's host."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(dest: str, body: bytes, headers: dict[str, str], limits: Limits) -> None:
    """POST `body` to `dest`; raises (a one-line reason) unless the answer is a 2xx."""
    host, port, address = epcis_subscriptions.resolve_dest(dest, allow_private=limits.allow_private)
    parts = urlsplit(dest)
    kind = _PinnedTLS if parts.scheme.lower() == "https" else _Pinned
    connection = kind(host, port, address, limits.timeout_s)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        answer = connection.getresponse()
        text = answer.read(ANSWER_READ)
    finally:
        connection.close()
    if not 200 <= answer.status < 300:
        snippet = text[:200].decode("utf-8", "replace").replace("\n", " ")
        raise DeliveryFailed(f"{dest} answered {answer.status} {snippet}".strip())


class DeliveryFailed(Exception):
    pass


def _callback(sub: Row, events: list[Row]) -> bytes:
    doc = epcis_query.query_document(events, query_name=sub["query_name"])
    doc["epcisBody"]["queryResults"]["subscriptionID"] = str(sub["id"])
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _send(sub: Row, events: list[Row], limits: Limits) -> str | None:
    """Send one callback; None on a 2xx, else why not."""
    body = _callback(sub, events)
    headers = {
        "Content-Type": "application/json",
        "GS1-EPCIS-Version": "2.0.0",
        "GS1-CBV-Version": "2.0.0",
        "GS1-Signature": epcis_subscriptions.signature(sub["signature_token"] or "", body),
    }
    try:
        post(sub["dest"], body, headers, limits)
    except EpcisError as exc:  # the dest points where this server does not call
        return exc.message
    except (OSError, http.client.HTTPException, DeliveryFailed) as exc:
        return first_line(exc) or type(exc).__name__
    return None


def deliver_subscription(pool: ConnectionPool[DbConn], sub: Row, limits: Limits) -> int:
    """Deliver what is due of one subscription; the number of callbacks acknowledged."""
    acknowledged = 0
    for _ in range(CALLS_PER_SUBSCRIPTION):
        with db.transaction(pool) as conn:
            below = epcis_subscriptions.horizon(conn)
            events, cursor = epcis_subscriptions.next_batch(
                conn, sub, below, max_events=limits.max_events, max_bytes=limits.max_bytes
            )
        scheduled = not sub["stream"]
        if not events and not (scheduled and sub["report_if_empty"] and acknowledged == 0):
            break
        error = _send(sub, events, limits)
        with db.transaction(pool) as conn:
            if error is not None:
                state = epcis_subscriptions.failed(
                    conn, sub["id"], error, base_s=limits.retry_base_s,
                    max_s=limits.retry_max_s, failing_after=limits.failing_after,
                    attempts=int(sub["attempts"]),
                )  # fmt: skip
                log.warning(
                    "epcis_callback_failed subscription_id=%s attempts=%s status=%s reason=%s",
                    sub["id"], state["attempts"], state["status"], error,
                )  # fmt: skip
                return acknowledged
            epcis_subscriptions.delivered(conn, sub["id"], cursor)
        acknowledged += 1
        log.info("epcis_callback_delivered subscription_id=%s events=%s", sub["id"], len(events))
        if cursor is not None:
            sub = {**sub, "cursor_time": cursor[0], "cursor_id": cursor[1], "attempts": 0}
        if not events:
            break
    with db.transaction(pool) as conn:
        if not sub["stream"]:
            epcis_subscriptions.schedule_next(conn, sub)
        elif acknowledged == 0:
            epcis_subscriptions.looked(conn, sub["id"])
    return acknowledged


def deliver_round(pool: ConnectionPool[DbConn], limits: Limits) -> int | None:
    """One round over the due subscriptions; callbacks acknowledged, or None when another
    process holds the round."""
    with pool.connection() as lock_conn:
        lock_conn.autocommit = True  # idle outside a transaction while it holds the lock
        try:
            got = lock_conn.execute(SQL["epcis_deliverer_try_lock"]).fetchone()
            if not got or not got["locked"]:
                return None
            try:
                with db.transaction(pool) as conn:
                    subs = epcis_subscriptions.due(conn, DUE_PER_ROUND)
                done = 0
                for sub in subs:
                    try:
                        done += deliver_subscription(pool, sub, limits)
                    except psycopg.OperationalError:
                        raise  # the database went away: the round ends
                    except Exception:  # one subscription's bug must not stop the others'
                        log.exception("epcis_subscription_round_failed subscription_id=%s",
                                      sub["id"])  # fmt: skip
                return done
            finally:
                lock_conn.execute(SQL["epcis_deliverer_unlock"])
        finally:
            lock_conn.autocommit = False


async def run_deliverer(pool: ConnectionPool[DbConn], limits: Limits, interval_s: float) -> None:
    """Rounds every `interval_s` until cancelled."""
    while True:
        try:
            await asyncio.to_thread(deliver_round, pool, limits)
        except psycopg.Error as exc:  # the database went away: cursors stay; next round
            log.warning("epcis_deliver_round_failed reason=%s", first_line(exc))
        except Exception:  # a bug must not end the deliverer: log it, try next round
            log.exception("epcis_deliver_round_failed")
        await asyncio.sleep(interval_s)
