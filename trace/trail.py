"""One trail across organisations, as one organisation may see it.

The genealogy (genealogy.py) walks lots of every organisation alike: a shipment's receipt
makes the receiver's lot of the sender's by a receiving step. What an organisation is
shown of the other organisations' rows on that walk is decided here:

- Backward (`backward_for`): the viewer's own rows as the genealogy gives them; an
  upstream organisation's rows as it granted them to the partner it shipped the lots to
  (partners.py's scopes of that partnership, which travel with the lots downstream):
  `public_provenance` shows its lots by public id, its steps, its trees by public id, its
  plots and farms by code and district and its external lots' origin claims (what the
  public page shows); `eudr_geolocation` shows the plots' geolocation and area, as an EU
  operator's due diligence needs it. Never a farm's private data, nor the internal ids
  of another organisation's records. What is not shown is summed per organisation under
  "withheld", so the shares still add up to 1.
- Forward (`forward_for`): the downstream lots of other organisations by public id, with
  their organisation's public name, the kg of them that come from the source and the
  viewer's own shipments those kg left by; nothing else of theirs.

`attribute` names the organisation of each problem a verification found.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal
from uuid import UUID

from coffeetrace.db import DbConn, Row
from coffeetrace.sql import load_queries
from coffeetrace.trace import genealogy, partners
from coffeetrace.trace import queries as q

SQL = load_queries("coffeetrace.trace", "trail.sql")

PUBLIC = partners.PUBLIC_PROVENANCE
GEO = partners.EUDR_GEOLOCATION


def names(conn: DbConn, ids: Iterable[UUID]) -> dict[UUID, Row]:
    """{id: {"code", "name"}} of the organisations (the name: the public one)."""
    wanted = list({i for i in ids if i is not None})
    if not wanted:
        return {}
    rows = q.rows(conn, SQL["organisation_names"], {"ids": wanted})
    return {r["id"]: {"code": r["code"], "name": r["public_name"]} for r in rows}


# --- verification ---------------------------------------------------------------------
def attribute(conn: DbConn, problems: Sequence[Row]) -> list[Row]:
    """The problems, each naming its organisation ("organisation": {"id", "code",
    "name"}): the one whose chain holds the event named, or whose record (lot, external
    lot) is concerned; a problem that already names its organisation keeps it."""
    seqs = [p["seq"] for p in problems if p.get("seq") is not None]
    by_seq = (
        {r["seq"]: r["cooperative_id"] for r in q.rows(conn, SQL["event_owners"], {"seqs": seqs})}
        if seqs
        else {}
    )
    lot_ids = []
    for p in problems:
        record = p.get("record") or {}
        if record.get("type") in ("lot", "external_lot"):
            try:
                lot_ids.append(UUID(str(record["id"])))
            except ValueError:
                continue
    by_lot = (
        {r["id"]: r["cooperative_id"] for r in q.rows(conn, SQL["lot_owners"], {"ids": lot_ids})}
        if lot_ids
        else {}
    )
    owners: list[UUID | None] = []
    for p in problems:
        given = (p.get("organisation") or {}).get("id")
        owner: UUID | None = UUID(str(given)) if given else by_seq.get(p.get("seq"))
        if owner is None:
            record = p.get("record") or {}
            try:
                owner = by_lot.get(UUID(str(record.get("id"))))
            except ValueError:
                owner = None
        owners.append(owner)
    known = names(conn, [o for o in owners if o is not None])
    out = []
    for p, owner in zip(problems, owners, strict=True):
        if owner is None:
            out.append(p)
            continue
        who = known.get(owner, {"code": None, "name": None})
        out.append({**p, "organisation": {"id": str(owner), **who}})
    return out


# --- backward ---------------------------------------------------------------------------
def grants(conn: DbConn, viewer: UUID, lot_ids: Sequence[UUID]) -> dict[UUID, set[str]]:
    """What `viewer` may see of each organisation upstream on the trail of `lot_ids`: its
    own data wholly; another's, the scopes it granted the partners it shipped these lots
    to (their active partnerships: an ended one grants nothing)."""
    out: dict[UUID, set[str]] = {viewer: set(partners.SCOPES)}
    seen: set[tuple[UUID, UUID]] = set()
    for line in q.rows(conn, SQL["shipments_into_lots"], {"lot_ids": list(lot_ids)}):
        pair = (line["sender_id"], line["receiver_id"])
        if pair[0] == viewer or pair in seen:
            continue
        seen.add(pair)
        out.setdefault(pair[0], set()).update(partners.scopes(conn, pair[1], pair[0]))
    return out


def backward_for(conn: DbConn, viewer: UUID, lot_id: UUID) -> Row:
    """genealogy.trace_backward of a lot of `viewer`, with what it may see of upstream
    organisations (module docstring); adds "organisations": [{"code", "name", "scopes"}]
    of the trail and "withheld": {"trees"|"plots"|"farms"|"external": [{"organisation",
    "share", "kg"}]}. Shares of trees (plots, farms) plus external lots plus what is
    withheld of them sum to 1."""
    back = genealogy.trace_backward(conn, lot_id)
    owner_of_lot = {r["lot_id"]: r["cooperative_id"] for r in back["lots"]}
    granted = grants(conn, viewer, list(owner_of_lot))
    registry = {
        (r["type"], r["id"]): r
        for r in q.rows(
            conn,
            SQL["registry_of_trace"],
            {
                "trees": [t["tree_id"] for t in back["trees"]],
                "plots": [p["plot_id"] for p in back["plots"]],
                "farms": [f["farm_id"] for f in back["farms"]],
            },
        )
    }
    who = names(conn, {*owner_of_lot.values(), *(r["cooperative_id"] for r in registry.values())})
    total = back["lot"]["quantity_kg"]
    withheld: dict[str, dict[UUID, Decimal]] = {}

    def org(owner: UUID) -> Row:
        return who.get(owner, {"code": None, "name": None})

    def may(owner: UUID, scope: str) -> bool:
        return scope in granted.get(owner, set())

    def hide(level: str, owner: UUID, share: float) -> None:
        acc = withheld.setdefault(level, {})
        acc[owner] = acc.get(owner, Decimal(0)) + Decimal(str(share))

    lots = []
    for r in back["lots"]:
        owner = r["cooperative_id"]
        if owner == viewer:
            lots.append({**r, "organisation": org(owner)})
        else:
            lots.append(
                {k: r[k] for k in ("public_id", "kind", "quantity_kg", "depth", "share")}
                | {"organisation": org(owner)}
            )
    step_owner = {r["produced_by"]: r["cooperative_id"] for r in back["lots"] if r["produced_by"]}
    steps = []
    for t in back["transformations"]:
        owner = step_owner.get(t["id"], viewer)
        if owner == viewer:
            steps.append({**t, "organisation": org(owner)})
        else:
            step: Row = {"step": t["step"], "occurred_at": t["occurred_at"]}
            if may(owner, PUBLIC):
                step["place"] = t["place"]
            steps.append({**step, "organisation": org(owner)})
    trees = []
    for t in back["trees"]:
        owner = registry.get(("tree", t["tree_id"]), {}).get("cooperative_id", viewer)
        if owner == viewer:
            trees.append(t)
        elif may(owner, PUBLIC):
            trees.append(
                {"public_id": t["public_id"], "share": t["share"], "kg": t["kg"]}
                | {"organisation": org(owner)}
            )
        else:
            hide("trees", owner, t["share"])
    plots = []
    for p in back["plots"]:
        row = registry.get(("plot", p["plot_id"]), {})
        owner = row.get("cooperative_id", viewer)
        if owner == viewer:
            plots.append(p)
            continue
        shown: Row = {}
        if may(owner, PUBLIC):
            shown.update(code=p["code"], district=row.get("district"))
        if may(owner, GEO):
            shown.update(geometry=row.get("geometry"))
        if not shown:
            hide("plots", owner, p["share"])
            continue
        plots.append(
            shown
            | {"area_ha": p["area_ha"], "share": p["share"], "kg": p["kg"]}
            | {"organisation": org(owner)}
        )
    farms = []
    for f in back["farms"]:
        row = registry.get(("farm", f["farm_id"]), {})
        owner = row.get("cooperative_id", viewer)
        if owner == viewer:
            farms.append(f)
        elif may(owner, PUBLIC):
            farms.append(
                {"code": f["code"], "district": row.get("district"), "share": f["share"]}
                | {"kg": f["kg"], "organisation": org(owner)}
            )
        else:
            hide("farms", owner, f["share"])
    external = []
    for e in back["external"]:
        owner = e["cooperative_id"]
        if owner == viewer:
            external.append({**e, "organisation": org(owner)})
        elif may(owner, PUBLIC):
            external.append(
                {k: e[k] for k in ("public_id", "kind", "origin_country", "producer", "share")}
                | {"kg": e["kg"], "organisation": org(owner)}
            )
        else:
            hide("external", owner, e["share"])
    own_harvests = {r["lot_id"] for r in back["lots"] if r["cooperative_id"] == viewer}
    return {
        "lot": back["lot"],
        "lots": lots,
        "transformations": steps,
        "harvests": [h for h in back["harvests"] if h["lot_id"] in own_harvests],
        "trees": trees,
        "plots": plots,
        "farms": farms,
        "external": external,
        "withheld": {
            level: [
                {"organisation": org(o), "share": float(s), "kg": float(s * total)}
                for o, s in by_org.items()
            ]
            for level, by_org in withheld.items()
        },
        "organisations": [
            {**org(o), "scopes": sorted(granted.get(o, set()))}
            for o in sorted(set(owner_of_lot.values()), key=str)
        ],
    }


# --- forward ----------------------------------------------------------------------------
def forward_for(conn: DbConn, viewer: UUID, result: Row) -> Row:
    """genealogy.trace_forward's answer as `viewer` (which owns the source) may see it:
    its own lots as they are; another organisation's by {"public_id", "kind",
    "organisation": {"code", "name"}, "kg" (of it from the source), "share", "depth",
    "terminal", "shipments": [ids of the viewer's shipments the kg left by]}."""
    found = result.get("lots", [])
    foreign = [r for r in found if r["cooperative_id"] != viewer]
    if not foreign:
        return result
    ids = [r["lot_id"] for r in found]
    via: dict[UUID, set[str]] = {}
    for line in q.rows(conn, SQL["shipments_into_lots"], {"lot_ids": ids}):
        if line["sender_id"] == viewer:
            via.setdefault(line["receiver_lot_id"], set()).add(str(line["shipment_id"]))
    edges = q.rows(conn, SQL["edges_between_lots"], {"lot_ids": ids})
    changed = True
    while changed:  # the set of shipments flows down every edge (the answer is small)
        changed = False
        for e in edges:
            came = via.get(e["from_lot"])
            if not came:
                continue
            went = via.setdefault(e["to_lot"], set())
            if not came <= went:
                went |= came
                changed = True
    who = names(conn, [r["cooperative_id"] for r in foreign])
    lots: list[Row] = []
    for r in found:
        if r["cooperative_id"] == viewer:
            lots.append(r)
            continue
        lots.append(
            {
                "public_id": r["public_id"],
                "kind": r["kind"],
                "organisation": who.get(r["cooperative_id"], {"code": None, "name": None}),
                "kg": float(Decimal(str(r["share"])) * r["quantity_kg"]),
                "share": r["share"],
                "depth": r["depth"],
                "terminal": r["terminal"],
                "shipments": sorted(via.get(r["lot_id"], set())),
            }
        )
    return {**result, "lots": lots}
