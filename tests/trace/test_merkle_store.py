"""merkle_store against the real PostgreSQL: leaves appended one by one (and nodes built
for a chain that had none) give the roots and proofs merkle.py computes from all the
leaves; an edited node makes its proofs fail; arguments out of range are refused.

chain.append_event does not call append_leaf yet, so the events here are trace_events
rows inserted directly, with their positions."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import psycopg
import pytest
from psycopg.types.json import Jsonb

from coffeetrace.errors import Conflict, NotFound, ValidationFailed
from coffeetrace.migrate import available_migrations
from coffeetrace.trace import merkle, merkle_store, registry
from tests.conftest import PgServer

SIZE = 40


def _coop(conn: psycopg.Connection) -> UUID:
    code = f"coop-{uuid.uuid4().hex[:8]}"
    coop: dict[str, Any] = registry.create_cooperative(conn, code, f"Cooperative {code}")
    return coop["id"]


def _insert_event(conn: psycopg.Connection, coop: UUID, position: int) -> str:
    """A trace_events row at `position` of the chain; returns its hash (hex)."""
    digest = hashlib.sha256(f"{coop}/{position}".encode()).hexdigest()
    conn.execute(
        "insert into trace_events (cooperative_id, kind, occurred_at, payload, prev_hash, hash,"
        " position) values (%s, 'test', %s, %s, %s, %s, %s)",
        (coop, datetime(2026, 11, 10, tzinfo=UTC), Jsonb({}), "0" * 64, digest, position),
    )
    return digest


def _chain(conn: psycopg.Connection, coop: UUID, size: int, *, append: bool) -> list[bytes]:
    """`size` events, each appended to the tree as it is inserted if `append`; returns
    the leaf hashes."""
    leaves = []
    for position in range(size):
        digest = _insert_event(conn, coop, position)
        if append:
            merkle_store.append_leaf(conn, coop, position, digest)
        leaves.append(merkle.leaf_hash(bytes.fromhex(digest)))
    return leaves


def _nodes(conn: psycopg.Connection, coop: UUID) -> dict[tuple[int, int], bytes]:
    rows = conn.execute(
        "select level, idx, hash from chain_nodes where cooperative_id = %s", (coop,)
    ).fetchall()
    return {(r["level"], r["idx"]): bytes(r["hash"]) for r in rows}


def _assert_tree_matches(conn: psycopg.Connection, coop: UUID, leaves: list[bytes]) -> None:
    """Every root and proof of every size up to len(leaves) is merkle.py's and verifies."""
    roots = [merkle.root(leaves[:n]) for n in range(len(leaves) + 1)]
    assert merkle_store.tree_size(conn, coop) == len(leaves)
    assert merkle_store.root_hash(conn, coop, 0) == merkle.EMPTY_ROOT
    for n in range(1, len(leaves) + 1):
        assert merkle_store.root_hash(conn, coop, n) == roots[n]
        for position in range(n):
            proof = merkle_store.inclusion_proof(conn, coop, position, n)
            assert proof == merkle.inclusion_proof(position, leaves[:n])
            assert merkle.verify_inclusion(position, n, leaves[position], proof, roots[n])
        # all the proofs of one size from one query give the same
        assert merkle_store.inclusion_proofs(conn, coop, list(range(n)), n) == {
            position: merkle.inclusion_proof(position, leaves[:n]) for position in range(n)
        }
        for m in range(1, n + 1):
            proof = merkle_store.consistency_proof(conn, coop, m, n)
            assert proof == merkle.consistency_proof(m, leaves[:n])
            assert merkle.verify_consistency(m, n, roots[m], roots[n], proof)


def test_appended_leaves_give_merkle_roots_and_proofs(conn: psycopg.Connection) -> None:
    coop, other = _coop(conn), _coop(conn)
    leaves: list[bytes] = []
    for position in range(SIZE):
        digest = _insert_event(conn, coop, position)
        merkle_store.append_leaf(conn, coop, position, digest)
        leaves.append(merkle.leaf_hash(bytes.fromhex(digest)))
        assert merkle_store.root_hash(conn, coop, position + 1) == merkle.root(leaves)
    _assert_tree_matches(conn, coop, leaves)
    # every complete subtree stored, nothing else; another cooperative's tree is its own
    assert len(_nodes(conn, coop)) == 2 * SIZE - bin(SIZE).count("1")
    other_leaves = _chain(conn, other, 3, append=True)
    assert merkle_store.root_hash(conn, other, 3) == merkle.root(other_leaves)
    assert merkle_store.tree_size(conn, coop) == SIZE


def test_catch_up_rebuilds_an_emptied_tree(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    coop = _coop(conn)
    leaves = _chain(conn, coop, SIZE, append=True)
    stored = _nodes(conn, coop)
    conn.execute("delete from chain_nodes where cooperative_id = %s", (coop,))
    assert merkle_store.tree_size(conn, coop) == 0
    monkeypatch.setattr(merkle_store, "CATCH_UP_BATCH", 7)  # several batches, one partial
    assert merkle_store.catch_up(conn, coop) == SIZE
    assert _nodes(conn, coop) == stored
    assert merkle_store.catch_up(conn, coop) == 0
    _assert_tree_matches(conn, coop, leaves)


def test_appending_to_a_chain_without_nodes_catches_up_first(conn: psycopg.Connection) -> None:
    coop = _coop(conn)
    leaves = _chain(conn, coop, 20, append=False)  # a chain from before chain_nodes
    digest = _insert_event(conn, coop, 20)
    merkle_store.append_leaf(conn, coop, 20, digest)  # catch_up stores this event too
    leaves.append(merkle.leaf_hash(bytes.fromhex(digest)))
    digest = _insert_event(conn, coop, 21)
    merkle_store.append_leaf(conn, coop, 21, digest)
    leaves.append(merkle.leaf_hash(bytes.fromhex(digest)))
    merkle_store.append_leaf(conn, coop, 21, digest)  # a retry of the same leaf: no change
    _assert_tree_matches(conn, coop, leaves)


def test_an_edited_node_makes_its_proofs_fail(conn: psycopg.Connection) -> None:
    """Proofs are checked against tree heads kept from before the edit; a proof that reads
    the edited node no longer verifies against them."""
    coop = _coop(conn)
    leaves = _chain(conn, coop, 21, append=True)
    root_13, root_21 = merkle.root(leaves[:13]), merkle.root(leaves[:21])
    for level, idx in merkle.nodes_for_inclusion(6, 21):
        with _tampered(conn, coop, level, idx):
            proof = merkle_store.inclusion_proof(conn, coop, 6, 21)
            assert not merkle.verify_inclusion(6, 21, leaves[6], proof, root_21)
    for level, idx in merkle.nodes_for_consistency(13, 21):
        with _tampered(conn, coop, level, idx):
            proof = merkle_store.consistency_proof(conn, coop, 13, 21)
            assert not merkle.verify_consistency(13, 21, root_13, root_21, proof)
    for level, idx in merkle.nodes_for_root(21):
        with _tampered(conn, coop, level, idx):
            assert merkle_store.root_hash(conn, coop, 21) != root_21
    # all put back: everything verifies again
    proof = merkle_store.inclusion_proof(conn, coop, 6, 21)
    assert merkle.verify_inclusion(6, 21, leaves[6], proof, root_21)
    proof = merkle_store.consistency_proof(conn, coop, 13, 21)
    assert merkle.verify_consistency(13, 21, root_13, root_21, proof)


@contextmanager
def _tampered(conn: psycopg.Connection, coop: UUID, level: int, idx: int) -> Iterator[None]:
    """The node with the lowest bit of its first byte flipped, as an edit in SQL would,
    then put back."""
    _flip_node(conn, coop, level, idx)
    try:
        yield
    finally:
        _flip_node(conn, coop, level, idx)


def _flip_node(conn: psycopg.Connection, coop: UUID, level: int, idx: int) -> None:
    changed = conn.execute(
        "update chain_nodes set hash = set_byte(hash, 0, get_byte(hash, 0) # 1)"
        " where cooperative_id = %s and level = %s and idx = %s",
        (coop, level, idx),
    ).rowcount
    assert changed == 1


def test_arguments_out_of_range_are_refused(conn: psycopg.Connection) -> None:
    coop = _coop(conn)
    assert merkle_store.tree_size(conn, coop) == 0
    assert merkle_store.root_hash(conn, coop, 0) == merkle.EMPTY_ROOT
    hashes = [_insert_event(conn, coop, p) for p in range(5)]
    for position, digest in enumerate(hashes):
        merkle_store.append_leaf(conn, coop, position, digest)
    refused: list[tuple[type[Exception], Any]] = [
        (NotFound, lambda: merkle_store.root_hash(conn, coop, 6)),
        (ValidationFailed, lambda: merkle_store.root_hash(conn, coop, -1)),
        (NotFound, lambda: merkle_store.inclusion_proof(conn, coop, 0, 6)),
        (ValidationFailed, lambda: merkle_store.inclusion_proof(conn, coop, 5, 5)),
        (ValidationFailed, lambda: merkle_store.inclusion_proof(conn, coop, -1, 5)),
        (ValidationFailed, lambda: merkle_store.inclusion_proof(conn, coop, 0, 0)),
        (ValidationFailed, lambda: merkle_store.consistency_proof(conn, coop, 4, 3)),
        (ValidationFailed, lambda: merkle_store.consistency_proof(conn, coop, 0, 3)),
        (NotFound, lambda: merkle_store.consistency_proof(conn, coop, 3, 6)),
        (Conflict, lambda: merkle_store.append_leaf(conn, coop, 2, hashes[3])),
        (ValidationFailed, lambda: merkle_store.append_leaf(conn, coop, 7, hashes[0])),
        (ValidationFailed, lambda: merkle_store.append_leaf(conn, coop, -1, hashes[0])),
        (ValidationFailed, lambda: merkle_store.append_leaf(conn, coop, 5, "zz" * 32)),
        (ValidationFailed, lambda: merkle_store.append_leaf(conn, coop, 5, "ab" * 31)),
    ]
    for error, call in refused:
        with pytest.raises(error) as caught:
            call()
        assert caught.value.message  # says what is wrong
    assert merkle_store.tree_size(conn, coop) == 5
    assert merkle_store.consistency_proof(conn, coop, 5, 5) == []


def test_a_gap_in_positions_stops_catch_up(conn: psycopg.Connection) -> None:
    coop = _coop(conn)
    _chain(conn, coop, 3, append=False)
    _insert_event(conn, coop, 4)
    with pytest.raises(ValidationFailed, match="position 3"):
        merkle_store.catch_up(conn, coop)


def test_the_migration_numbers_existing_chains(pg_server: PgServer) -> None:
    """0040 on a database that already has chains: positions in seq order per cooperative."""
    name = f"ct_mig_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    try:
        with psycopg.connect(pg_server.url(name), autocommit=True) as conn:
            _check_backfill(conn)
    finally:
        with psycopg.connect(pg_server.admin_url, autocommit=True) as admin:
            admin.execute(f'drop database if exists "{name}" with (force)')


def _check_backfill(conn: psycopg.Connection[Any]) -> None:
    migrations = [m for m in available_migrations() if not m.requires_timescaledb]
    this = next(m for m in migrations if m.name == "chain_merkle")
    for migration in migrations[: migrations.index(this)]:
        conn.execute(migration.sql)
    coops = [
        conn.execute(
            "insert into cooperatives (code, name) values (%s, %s) returning id", (code, code)
        ).fetchone()[0]
        for code in ("coop-a", "coop-b")
    ]
    for i in range(7):  # the two chains interleaved in seq
        conn.execute(
            "insert into trace_events (cooperative_id, kind, occurred_at, payload, prev_hash,"
            " hash) values (%s, 'test', now(), '{}', %s, %s)",
            (coops[i % 2], "0" * 64, f"{i:064x}"),
        )
    conn.execute(this.sql)
    rows = conn.execute("select cooperative_id, position from trace_events order by seq").fetchall()
    assert rows == [(coops[i % 2], i // 2) for i in range(7)]


def test_proofs_from_one_query_leave_out_those_missing_a_node(
    conn: psycopg.Connection,
) -> None:
    coop = _coop(conn)
    leaves = _chain(conn, coop, 8, append=True)
    conn.execute(
        "delete from chain_nodes where cooperative_id = %s and level = 0 and idx = 3", (coop,)
    )
    assert (0, 3) in merkle.nodes_for_inclusion(2, 8)
    assert (0, 3) not in merkle.nodes_for_inclusion(5, 8)
    assert merkle_store.inclusion_proofs(conn, coop, [2, 5], 8) == {
        5: merkle.inclusion_proof(5, leaves)
    }
