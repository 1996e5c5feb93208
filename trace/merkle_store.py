"""Each cooperative's Merkle tree over its chain, kept in chain_nodes: appending leaves,
building the nodes of chains older than the table, and roots and proofs read from the
stored complete subtrees (merkle.py's node addresses).

Leaf i is the event at position i of the cooperative's chain (trace_events.position); its
data is the 32 bytes of the event's hash. Appending a leaf stores it and every node it
completes, so the level-0 nodes are always 0..size-1 and the tree's size is
max(idx) + 1 at level 0. Nodes are never changed once stored.

Every function takes a connection with dict rows; the caller owns the transaction.
Leaves are appended under the chain's advisory lock, in the transaction that inserts the
event, in position order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import merkle
from coffeetrace.trace import queries as q
from coffeetrace.trace.merkle import Node

SQL = load_queries("coffeetrace.trace", "merkle.sql")

CATCH_UP_BATCH = 10_000  # event hashes read per query when building an older chain's nodes


def tree_size(conn: DbConn, cooperative_id: UUID) -> int:
    """The number of leaves stored for the cooperative's chain."""
    row = q.one(conn, SQL["merkle_tree_size"], {"cooperative_id": cooperative_id})
    assert row is not None  # an aggregate: always one row
    return int(row["size"])


def append_leaf(conn: DbConn, cooperative_id: UUID, position: int, event_hash_hex: str) -> None:
    """Store the leaf of the event at `position` (hash `event_hash_hex`) and every node it
    completes. Call it in the transaction that inserts the event, under the chain's lock,
    in position order; a chain whose earlier events have no nodes yet is caught up first."""
    if position < 0:
        raise ValidationFailed(f"a chain position cannot be negative (got {position})")
    leaf = merkle.leaf_hash(_hash_bytes(event_hash_hex))
    # the usual case, in two statements: the previous leaf and the nodes the new one
    # combines with are stored (leaves are stored in position order, so all before it are
    # too): the new nodes go in; a node already there (a retry of the same append) is left
    # as it is, and the leaf then checked to be this event's
    needed = merkle.frontier_for_append(position)
    previous = [(0, position - 1)] if position > 0 else []
    frontier = _fetch_nodes(conn, cooperative_id, list(dict.fromkeys(needed + previous)))
    if all(node in frontier for node in needed + previous):
        made = merkle.new_nodes(position, leaf, {n: frontier[n] for n in needed})
        if _insert_new_nodes(conn, cooperative_id, made) < len(made):
            _check_stored_leaf(conn, cooperative_id, position, leaf)
        return
    size = tree_size(conn, cooperative_id)
    if size < position:
        catch_up(conn, cooperative_id)  # events from before chain_nodes, or not yet appended
        size = tree_size(conn, cooperative_id)
    if size > position:  # stored already: by catch_up from this very event, or a retry
        _check_stored_leaf(conn, cooperative_id, position, leaf)
        return
    if size < position:
        raise ValidationFailed(
            f"cannot append position {position}: the chain has no events at positions "
            f"{size} to {position - 1}",
            position=position,
            tree_size=size,
        )
    frontier = _fetch_nodes(conn, cooperative_id, merkle.frontier_for_append(position))
    _insert_nodes(conn, cooperative_id, merkle.new_nodes(position, leaf, frontier))


def catch_up(conn: DbConn, cooperative_id: UUID) -> int:
    """Build the nodes of every event of the chain that has none yet, in position order,
    reading CATCH_UP_BATCH event hashes at a time; returns the number of leaves added.
    Takes the chain's advisory lock (held until the caller's transaction ends)."""
    q.one(conn, SQL["merkle_lock_chain"], {"cooperative_id": str(cooperative_id)})
    start = size = tree_size(conn, cooperative_id)
    # every later append combines with some of the right edge: the subtrees of the root
    frontier = _fetch_nodes(conn, cooperative_id, merkle.nodes_for_root(size))
    while batch := q.rows(
        conn,
        SQL["merkle_chain_hashes"],
        {"cooperative_id": cooperative_id, "position": size, "limit": CATCH_UP_BATCH},
    ):
        made = _nodes_for_batch(cooperative_id, size, batch, frontier)
        _insert_nodes(conn, cooperative_id, made)
        size += len(batch)
        frontier = {node: frontier[node] for node in merkle.nodes_for_root(size)}
    return size - start


def root_hash(conn: DbConn, cooperative_id: UUID, size: int) -> bytes:
    """The root of the cooperative's tree when it had `size` leaves (0 <= size <= tree size)."""
    _check_size(conn, cooperative_id, size)
    nodes = _fetch_nodes(conn, cooperative_id, merkle.nodes_for_root(size))
    return merkle.root_from_nodes(size, nodes)


def inclusion_proof(conn: DbConn, cooperative_id: UUID, position: int, size: int) -> list[bytes]:
    """The proof that the event at `position` is leaf `position` of the tree of `size`
    leaves (RFC 9162 2.1.3); check it with merkle.verify_inclusion."""
    _check_size(conn, cooperative_id, size)
    if not 0 <= position < size:
        raise ValidationFailed(
            f"position {position} is not in a tree of {size} leaves (0 <= position < size)",
            position=position,
            size=size,
        )
    nodes = _fetch_nodes(conn, cooperative_id, merkle.nodes_for_inclusion(position, size))
    return merkle.inclusion_from_nodes(position, size, nodes)


def inclusion_proofs(
    conn: DbConn, cooperative_id: UUID, positions: Sequence[int], size: int
) -> dict[int, list[bytes]]:
    """inclusion_proof of each of `positions` in the tree of `size` leaves, reading the
    nodes of all the proofs in one query: {position: proof}. A position whose proof needs
    a node the stored tree lost is left out (it has no proof)."""
    _check_size(conn, cooperative_id, size)
    wanted = list(dict.fromkeys(positions))
    for position in wanted:
        if not 0 <= position < size:
            raise ValidationFailed(
                f"position {position} is not in a tree of {size} leaves (0 <= position < size)",
                position=position,
                size=size,
            )
    addresses = dict.fromkeys(
        node for position in wanted for node in merkle.nodes_for_inclusion(position, size)
    )
    nodes = _fetch_nodes(conn, cooperative_id, list(addresses))
    proofs: dict[int, list[bytes]] = {}
    for position in wanted:
        try:
            proofs[position] = merkle.inclusion_from_nodes(position, size, nodes)
        except merkle.MissingNode:
            continue
    return proofs


def consistency_proof(conn: DbConn, cooperative_id: UUID, m: int, n: int) -> list[bytes]:
    """The proof that the tree of `m` leaves is a prefix of the tree of `n` leaves
    (RFC 9162 2.1.4; 0 < m <= n, empty when m == n); check it with
    merkle.verify_consistency."""
    if not 0 < m <= n:
        raise ValidationFailed(f"a consistency proof needs 0 < m <= n (got m={m}, n={n})", m=m, n=n)
    _check_size(conn, cooperative_id, n)
    nodes = _fetch_nodes(conn, cooperative_id, merkle.nodes_for_consistency(m, n))
    return merkle.consistency_from_nodes(m, n, nodes)


def _nodes_for_batch(
    cooperative_id: UUID, size: int, batch: Sequence[Row], frontier: dict[Node, bytes]
) -> list[tuple[Node, bytes]]:
    """The nodes that appending the batch's events, from leaf `size` on, completes;
    `frontier` (at least nodes_for_root(size)) gains them."""
    made: list[tuple[Node, bytes]] = []
    for position, row in enumerate(batch, start=size):
        if row["position"] != position:
            raise ValidationFailed(
                f"the chain of cooperative {cooperative_id} has no event at position "
                f"{position} (the next is at {row['position']})",
                position=position,
            )
        nodes = merkle.new_nodes(position, merkle.leaf_hash(_hash_bytes(row["hash"])), frontier)
        frontier.update(nodes)
        made.extend(nodes)
    return made


def _check_size(conn: DbConn, cooperative_id: UUID, size: int) -> None:
    if size < 0:
        raise ValidationFailed(f"a tree size cannot be negative (got {size})", size=size)
    have = tree_size(conn, cooperative_id)
    if size > have:
        raise NotFound(
            f"the cooperative's Merkle tree has {have} leaves; there is no tree of {size}",
            size=size,
            tree_size=have,
        )


def _check_stored_leaf(conn: DbConn, cooperative_id: UUID, position: int, leaf: bytes) -> None:
    stored = _fetch_nodes(conn, cooperative_id, [(0, position)])
    if stored.get((0, position)) != leaf:
        raise Conflict(
            f"position {position} of the chain already has a leaf, of another event hash",
            position=position,
        )


def _fetch_nodes(conn: DbConn, cooperative_id: UUID, nodes: Sequence[Node]) -> dict[Node, bytes]:
    """The stored hashes of the addressed nodes (those that exist), in one query."""
    if not nodes:
        return {}
    rows = q.rows(
        conn,
        SQL["merkle_nodes"],
        {
            "cooperative_id": cooperative_id,
            "levels": [level for level, _ in nodes],
            "idxs": [idx for _, idx in nodes],
        },
    )
    return {(row["level"], row["idx"]): bytes(row["hash"]) for row in rows}


def _node_params(cooperative_id: UUID, nodes: Sequence[tuple[Node, bytes]]) -> dict[str, Any]:
    return {
        "cooperative_id": cooperative_id,
        "levels": [level for (level, _), _ in nodes],
        "idxs": [idx for (_, idx), _ in nodes],
        "hashes": [digest for _, digest in nodes],
    }


def _insert_nodes(conn: DbConn, cooperative_id: UUID, nodes: Sequence[tuple[Node, bytes]]) -> None:
    """Store the nodes in one statement."""
    q.execute(conn, SQL["merkle_insert_nodes"], _node_params(cooperative_id, nodes))


def _insert_new_nodes(
    conn: DbConn, cooperative_id: UUID, nodes: Sequence[tuple[Node, bytes]]
) -> int:
    """Store the nodes that are not stored yet, in one statement; how many were new."""
    return q.execute(conn, SQL["merkle_insert_new_nodes"], _node_params(cooperative_id, nodes))


def _hash_bytes(event_hash_hex: str) -> bytes:
    """The 32 bytes of an event hash given as 64 hexadecimal digits."""
    try:
        data = bytes.fromhex(event_hash_hex)
    except ValueError:
        data = b""
    if len(data) != merkle.HASH_SIZE:
        raise ValidationFailed(
            f"an event hash is 64 hexadecimal digits (got {event_hash_hex[:80]!r})"
        )
    return data
