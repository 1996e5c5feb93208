"""The API's periodic checkpoints: every COFFEETRACE_CHECKPOINT_INTERVAL_S, each
cooperative chain that grew since its newest checkpoint (ingest batches, for instance, are
not checkpointed as they are written) gets a signed one, and the witness sees it once it is
committed. One API process at a time does it (an advisory lock); the others skip the round."""

from __future__ import annotations

import asyncio
import logging

from fastapi.concurrency import run_in_threadpool
from psycopg_pool import ConnectionPool

from coffeetrace import db
from coffeetrace.db import DbConn
from coffeetrace.sql import load_queries
from coffeetrace.trace import checkpoints
from coffeetrace.trace.keys import KeyRing

SQL = load_queries("coffeetrace.api", "checkpointer.sql")
log = logging.getLogger(__name__)


def checkpoint_round(pool: ConnectionPool[DbConn], keys: KeyRing) -> int:
    """Issue the checkpoints that are due; how many were issued."""
    with db.transaction(pool) as conn:
        got = conn.execute(SQL["checkpointer_try_lock"]).fetchone()
        if not got or not got["locked"]:
            return 0
        due = checkpoints.due(conn)
        for coop_id in due:
            checkpoints.issue(conn, keys, coop_id)
    with db.transaction(pool) as conn:  # committed: now the witness may see them
        for coop_id in due:
            problem = checkpoints.observe(conn, keys, coop_id)
            if problem is not None:
                log.error("witness_refused cooperative_id=%s %s", coop_id, problem["detail"])
    return len(due)


async def run_checkpointer(pool: ConnectionPool[DbConn], keys: KeyRing, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            issued = await run_in_threadpool(checkpoint_round, pool, keys)
            if issued:
                log.info("checkpoints_issued count=%s", issued)
        except Exception:  # the next round tries again; the API keeps serving
            log.exception("checkpoint_round_failed")
