"""The API's broker rounds (COFFEETRACE_MQTT_BROKER_AUTH=dynsec): every
COFFEETRACE_BROKER_RECONCILE_S the broker's device clients are held to the registry, so
that a device disabled or deleted behind the API's back (psql) is refused by the broker
too, not only dropped by ingest. One API process at a time does it (an advisory lock)."""

from __future__ import annotations

import asyncio
import logging

from fastapi.concurrency import run_in_threadpool
from psycopg_pool import ConnectionPool

from coffeetrace import db
from coffeetrace.broker_control import BrokerControl
from coffeetrace.db import DbConn
from coffeetrace.sql import load_queries

SQL = load_queries("coffeetrace.api", "broker_reconciler.sql")
log = logging.getLogger(__name__)


def reconcile_round(pool: ConnectionPool[DbConn], control: BrokerControl) -> dict[str, list[str]]:
    """One round: what changed on the broker ({} when another process holds the round)."""
    with db.transaction(pool) as conn:
        got = conn.execute(SQL["broker_reconciler_try_lock"]).fetchone()
        if not got or not got["locked"]:
            return {}
        devices = {
            r["id"]: bool(r["active"])
            for r in conn.execute(SQL["broker_reconciler_devices"]).fetchall()
        }
        # under the lock, so two processes never send opposite commands
        done = control.reconcile(devices)
    changed = {k: v for k, v in done.items() if v and k != "missing"}
    if changed:
        log.warning(
            "broker_reconciled %s",
            " ".join(f"{k}={','.join(v[:20])}" for k, v in changed.items()),
        )
    if done["missing"]:
        log.warning(
            "broker_devices_missing count=%d ids=%s (issue a new credential or rerun"
            " coffeetrace broker-config)",
            len(done["missing"]),
            ",".join(done["missing"][:20]),
        )
    return done


async def run_broker_reconciler(
    pool: ConnectionPool[DbConn], control: BrokerControl, interval_s: float
) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await run_in_threadpool(reconcile_round, pool, control)
        except Exception:  # the broker may be down for a while: the next round tries again
            log.exception("broker_reconcile_failed")
