"""Public, read-only views of each cooperative's chain as a transparency log: its signed
checkpoints (newest and history), consistency proofs between two tree sizes, and the
inclusion proof of one event. Anyone who kept a checkpoint can check with these that the
chain they saw was only extended since. Every lookup costs the client its public rate
limit (COFFEETRACE_PUBLIC_LOOKUPS_PER_S / _BURST)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from coffeetrace import db
from coffeetrace.api import ratelimit
from coffeetrace.api.schemas import error_responses
from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import checkpoints, merkle_store
from coffeetrace.trace import queries as q

router = APIRouter(prefix="/chain", tags=["public"], responses=error_responses(404, 422, 429))
SQL = load_queries("coffeetrace.api", "chain.sql")
MAX_HISTORY = 100

CoopCode = Annotated[
    str, Path(pattern=r"^[a-z0-9][a-z0-9-]{1,39}$", description="cooperative code")
]
TreeSize = Annotated[int, Query(ge=0, le=2**62)]


def _coop(conn: DbConn, code: str) -> Row:
    coop = q.one(conn, SQL["chain_cooperative_by_code"], {"code": code})
    if coop is None:
        raise NotFound(f"no cooperative has the code {code!r}")
    return coop


def _size(conn: DbConn, coop: Row) -> int:
    head = checkpoints.latest(conn, coop["id"])
    return int(head["body"]["tree_size"]) if head else 0


def _checkpoint(cp: Row) -> dict[str, Any]:
    return {"id": cp["id"], "body": cp["body"], "signature": cp["signature"]}


@router.get("/{code}/checkpoint", summary="The newest signed checkpoint of the chain")
def latest_checkpoint(code: CoopCode, request: Request) -> dict[str, Any]:
    ratelimit.check(request)
    with db.transaction(request.app.state.pool) as conn:
        coop = _coop(conn, code)
        cp = checkpoints.latest(conn, coop["id"])
    if cp is None:
        raise NotFound(f"the chain of {code} has no checkpoint yet")
    return _checkpoint(cp)


@router.get("/{code}/checkpoints", summary="Signed checkpoints, newest first")
def checkpoint_history(
    code: CoopCode,
    request: Request,
    before: Annotated[int | None, Query(ge=1, le=2**62, description="older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 20,
) -> dict[str, Any]:
    ratelimit.check(request)
    with db.transaction(request.app.state.pool) as conn:
        coop = _coop(conn, code)
        rows = checkpoints.history(conn, coop["id"], before=before, limit=limit)
    return {
        "checkpoints": [_checkpoint(r) for r in rows],
        "next": f"/chain/{code}/checkpoints?before={rows[-1]['id']}&limit={limit}"
        if len(rows) == limit
        else None,
    }


@router.get(
    "/{code}/consistency",
    summary="Consistency proof between two tree sizes (RFC 9162 2.1.4)",
)
def consistency(
    code: CoopCode, first: TreeSize, second: TreeSize, request: Request
) -> dict[str, Any]:
    ratelimit.check(request)
    with db.transaction(request.app.state.pool) as conn:
        coop = _coop(conn, code)
        size = _size(conn, coop)
        if not 0 < first <= second <= size:
            raise ValidationFailed(
                f"need 0 < first <= second <= {size} (the newest checkpoint's tree size)",
                field="first",
            )
        proof = (
            merkle_store.consistency_proof(conn, coop["id"], first, second)
            if first < second
            else []
        )
    return {"first": first, "second": second, "proof": [p.hex() for p in proof]}


@router.get(
    "/{code}/inclusion",
    summary="Inclusion proof of one event in a tree size (RFC 9162 2.1.3)",
)
def inclusion(
    code: CoopCode,
    seq: Annotated[int, Query(ge=1, le=2**62)],
    tree_size: TreeSize,
    request: Request,
) -> dict[str, Any]:
    ratelimit.check(request)
    with db.transaction(request.app.state.pool) as conn:
        coop = _coop(conn, code)
        size = _size(conn, coop)
        event = q.one(conn, SQL["chain_event_position"], {"cooperative_id": coop["id"], "seq": seq})
        if event is None:
            raise NotFound(f"the chain of {code} has no event {seq}")
        if not event["position"] < tree_size <= size:
            raise ValidationFailed(
                f"tree_size must be above the event's position {event['position']} and at"
                f" most {size} (the newest checkpoint's)",
                field="tree_size",
            )
        proof = merkle_store.inclusion_proof(conn, coop["id"], event["position"], tree_size)
    return {
        "seq": seq,
        "position": event["position"],
        "hash": event["hash"],
        "tree_size": tree_size,
        "proof": [p.hex() for p in proof],
    }
