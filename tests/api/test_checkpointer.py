"""The API's periodic checkpoints: a chain that grew without one (ingest batches are not
checkpointed as they are written) gets a signed checkpoint, and the witness sees it."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
from psycopg_pool import ConnectionPool

from coffeetrace.api.checkpointer import checkpoint_round
from coffeetrace.trace import chain, checkpoints
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world


def test_a_round_checkpoints_grown_chains_and_feeds_the_witness(
    conn: psycopg.Connection, pool: ConnectionPool, keys: KeyRing
) -> None:
    world = make_world(conn, keys=keys, trees=1)
    coop = world.coop["id"]
    chain.append_event(conn, coop, "note", [], datetime.now(UTC), {"n": 1}, keys=keys)
    conn.commit()
    size = conn.execute(
        "select count(*) as n from trace_events where cooperative_id = %s", (coop,)
    ).fetchone()["n"]  # type: ignore[index]
    assert checkpoints.latest(conn, coop) is None
    assert checkpoint_round(pool, keys) == 1
    conn.rollback()  # a fresh snapshot
    latest = checkpoints.latest(conn, coop)
    assert latest is not None and latest["body"]["tree_size"] == size
    assert checkpoints.signature_problem(keys, latest) is None
    held = checkpoints.witnessed(keys, coop)
    assert held is not None and held["body"] == latest["body"]
    assert checkpoint_round(pool, keys) == 0  # nothing grew since
