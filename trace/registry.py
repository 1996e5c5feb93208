"""Registering cooperatives, products, farms, plots, trees and devices.

Every function takes an open connection (the caller owns the transaction) and the
caller's cooperative id, so that nothing can be attached to another tenant's farm or plot.
Every write of a product, farm (its personal data included), plot or tree records the
row's new version as a signed chain event in the same transaction
(registry_versions.record_versions, with the cooperative's key from `keys`).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, LiteralString
from uuid import UUID

import psycopg
from biip import ParseError
from biip.gtin import Gtin
from psycopg.types.json import Jsonb

from coffeetrace.credentials import DeviceSecret, new_public_id
from coffeetrace.db import DbConn, Row
from coffeetrace.errors import Conflict, NotFound, RuleViolation, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import organisations
from coffeetrace.trace.geometry import geometry_centroid, validate_plot_geometry
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.registry_versions import CHUNK, record_versions
from coffeetrace.trace.variants import name_variants

SQL = load_queries("coffeetrace.trace", "registry.sql")
PREFIX_SQL = load_queries("coffeetrace.trace", "cooperatives.sql")  # cooperative_gs1_prefixes

DEVICE_KINDS = ("soil_node", "weather_station", "harvest_scale", "phone")


def _one(conn: DbConn, query: LiteralString, params: dict[str, Any]) -> Row:
    try:
        row = conn.execute(query, params).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        constraint = exc.diag.constraint_name or "unique key"
        raise Conflict(f"already registered ({constraint})", constraint=constraint) from exc
    except psycopg.errors.CheckViolation as exc:
        constraint = exc.diag.constraint_name or "check"
        raise ValidationFailed(
            f"a value breaks the rule {constraint}; see the field's format in docs/api.md",
            constraint=constraint,
        ) from exc
    if row is None:
        raise NotFound("the farm or plot named does not exist in this cooperative")
    return row


def create_cooperative(
    conn: DbConn,
    code: str,
    name: str,
    *,
    country: str = "VN",
    province: str | None = "Đắk Lắk",
    gs1_company_prefix: str | None = None,
) -> Row:
    """The cooperative's row, with `gs1_company_prefix` among its GS1 prefixes. Without a
    signing key (made on its first signature) or the prefix checks of
    cooperatives.create_cooperative, which the admin API and `coffeetrace coop create` use."""
    row = _one(
        conn,
        SQL["insert_cooperative"],
        dict(
            code=code,
            name=name,
            country=country,
            province=province,
            gs1_company_prefix=gs1_company_prefix,
        ),
    )
    if gs1_company_prefix:
        prefix = {"cooperative_id": row["id"], "prefix": gs1_company_prefix}
        conn.execute(PREFIX_SQL["insert_gs1_prefix"], prefix)
    return row


def get_cooperative_by_code(conn: DbConn, code: str) -> Row | None:
    return conn.execute(SQL["get_cooperative_by_code"], {"code": code}).fetchone()


def gtin_in_prefix(gtin: str, company_prefix: str | None) -> str:
    """`gtin_in_prefixes` with one prefix (or none)."""
    return gtin_in_prefixes(gtin, [company_prefix] if company_prefix else [])


def gtin_in_prefixes(gtin: str, company_prefixes: Sequence[str]) -> str:
    """The GTIN as 14 digits when it was allocated from one of `company_prefixes` (its
    digits after the indicator start with the prefix, as in GS1's General Specifications);
    otherwise RuleViolation "gtin_prefix". Only the holder of a company prefix may allocate
    its GTINs, so that no cooperative can take another's and resolve it to its own lots."""
    try:
        parsed = Gtin.parse(gtin)
    except ParseError as exc:
        raise ValidationFailed(f"invalid GTIN {gtin!r}: {exc}", field="gtin", gtin=gtin) from None
    gtin14 = parsed.as_gtin_14()
    if not company_prefixes:
        raise RuleViolation(
            "gtin_prefix",
            "your cooperative has no GS1 company prefix registered, so it cannot allocate"
            " GTINs; register the prefix GS1 assigned to it first",
            field="gtin",
            gtin=gtin14,
        )
    if any(gtin14[1:].startswith(prefix) for prefix in company_prefixes):
        return gtin14
    if len(company_prefixes) > 1:
        raise RuleViolation(
            "gtin_prefix",
            f"GTIN {gtin14} is not from your GS1 company prefixes"
            f" {', '.join(company_prefixes)}: after the indicator digit it must start with"
            " one of them",
            field="gtin",
            gtin=gtin14,
            company_prefixes=list(company_prefixes),
        )
    (company_prefix,) = company_prefixes
    raise RuleViolation(
        "gtin_prefix",
        f"GTIN {gtin14} is not from your GS1 company prefix {company_prefix}: after the"
        f" indicator digit it must start with {company_prefix}, not"
        f" {gtin14[1 : 1 + len(company_prefix)]}",
        field="gtin",
        gtin=gtin14,
        company_prefix=company_prefix,
    )


def _versioned(conn: DbConn, keys: KeyRing, cooperative_id: UUID, entity: str, row: Row) -> Row:
    """The row, with its facts recorded as its new version (event_seq set)."""
    event = record_versions(conn, keys, cooperative_id, entity, [row["id"]])
    return {**row, "event_seq": event["seq"]}


def create_product(
    conn: DbConn,
    cooperative_id: UUID,
    name: str,
    *,
    keys: KeyRing,
    kind: str = "green",
    gtin: str | None = None,
    name_i18n: Mapping[str, str] | None = None,
) -> Row:
    """A product; a GTIN must come from one of the cooperative's GS1 company prefixes
    (checked before its uniqueness, so a refusal never tells whether another cooperative
    has it). `name_i18n`: its name per language ({"vi": ..., "en": ...}, either or both)
    for the public page."""
    variants = name_variants(name_i18n)
    if gtin is not None:
        # the cooperative exists (its old one-prefix column is no longer read: 0044)
        row = conn.execute(
            SQL["cooperative_gs1_prefix"], {"cooperative_id": cooperative_id}
        ).fetchone()
        if row is None:
            raise NotFound("no such cooperative", cooperative_id=str(cooperative_id))
        held = conn.execute(
            PREFIX_SQL["gs1_prefixes_of_cooperative"], {"cooperative_id": cooperative_id}
        ).fetchall()
        gtin = gtin_in_prefixes(gtin, [r["prefix"] for r in held])
    try:
        with conn.transaction():
            product = _one(
                conn,
                SQL["insert_product"],
                dict(
                    cooperative_id=cooperative_id,
                    name=name,
                    kind=kind,
                    gtin=gtin,
                    name_i18n=Jsonb(variants) if variants else None,
                ),
            )
    except Conflict as exc:
        if exc.details.get("constraint") != "products_gtin_key":
            raise
        own = conn.execute(
            SQL["own_product_by_gtin"], {"gtin": gtin, "cooperative_id": cooperative_id}
        ).fetchone()
        if own is not None:
            raise Conflict(
                f"your product {own['name']!r} ({own['id']}) already has GTIN {gtin}",
                constraint="products_gtin_key",
                product_id=str(own["id"]),
            ) from None
        # only when two cooperatives were given overlapping prefixes: name nobody
        raise Conflict(
            f"GTIN {gtin} cannot be allocated; check your GS1 company prefix with GS1",
            constraint="products_gtin_key",
        ) from None
    return _versioned(conn, keys, cooperative_id, "product", product)


def create_farm(
    conn: DbConn,
    cooperative_id: UUID,
    code: str,
    *,
    keys: KeyRing,
    display_name: str | None = None,
    display_name_consent: bool = False,
    district: str | None = None,
    commune: str | None = None,
    private: dict[str, Any] | None = None,
) -> Row:
    """A farm, and its personal data when `private` is given (the keyword arguments of
    `set_farm_private`); one registry version covers both."""
    # Only producer groups hold farms; plots, trees and harvests need a farm of the
    # organisation, so this one check keeps them all there (RuleViolation role_required).
    organisations.require_role(conn, cooperative_id, organisations.PRODUCER_GROUP, "register farms")
    farm = _one(
        conn,
        SQL["insert_farm"],
        dict(
            cooperative_id=cooperative_id,
            code=code,
            display_name=display_name,
            display_name_consent=display_name_consent,
            district=district,
            commune=commune,
        ),
    )
    if private:
        _upsert_farm_private(conn, farm["id"], **private)
    return _versioned(conn, keys, cooperative_id, "farm", farm)


def set_farm_private(
    conn: DbConn,
    farm_id: UUID,
    *,
    keys: KeyRing,
    owner_name: str | None = None,
    phone: str | None = None,
    national_id: str | None = None,
    address: str | None = None,
    data_consent: bool = False,
    authority_consent: bool = False,
) -> Row:
    """Replace the farm's personal data; the consents and the owner's name are facts of
    the farm, so this records a new version of the farm. Returns the farm_private row.
    `authority_consent`: the owner's name may be given to the EU authorities as the
    producer in due diligence statements (trace/dds.py)."""
    farm = conn.execute(SQL["farm_cooperative"], {"id": farm_id}).fetchone()
    if farm is None:
        raise NotFound(f"farm {farm_id} does not exist", farm_id=str(farm_id))
    row = _upsert_farm_private(
        conn,
        farm_id,
        owner_name=owner_name,
        phone=phone,
        national_id=national_id,
        address=address,
        data_consent=data_consent,
        authority_consent=authority_consent,
    )
    record_versions(conn, keys, farm["cooperative_id"], "farm", [farm_id])
    return row


def _upsert_farm_private(
    conn: DbConn,
    farm_id: UUID,
    *,
    owner_name: str | None = None,
    phone: str | None = None,
    national_id: str | None = None,
    address: str | None = None,
    data_consent: bool = False,
    authority_consent: bool = False,
) -> Row:
    return _one(
        conn,
        SQL["upsert_farm_private"],
        dict(
            farm_id=farm_id,
            owner_name=owner_name,
            phone=phone,
            national_id=national_id,
            address=address,
            data_consent=data_consent,
            authority_consent=authority_consent,
        ),
    )


def create_plot(
    conn: DbConn,
    cooperative_id: UUID,
    farm_id: UUID,
    code: str,
    geometry: dict[str, Any],
    area_ha: float,
    *,
    keys: KeyRing,
    altitude_m: int | None = None,
    growing_area_code: str | None = None,
    district: str | None = None,
) -> Row:
    validate_plot_geometry(geometry, area_ha)
    lon, lat = geometry_centroid(geometry)
    plot = _one(
        conn,
        SQL["insert_plot"],
        dict(
            cooperative_id=cooperative_id,
            farm_id=farm_id,
            code=code,
            geometry=Jsonb(geometry),
            area_ha=area_ha,
            altitude_m=altitude_m,
            growing_area_code=growing_area_code,
            district=district,
            centroid_lon=lon,
            centroid_lat=lat,
        ),
    )
    return _versioned(conn, keys, cooperative_id, "plot", plot)


def _insert_tree(
    conn: DbConn,
    cooperative_id: UUID,
    plot_id: UUID,
    tag_code: str,
    *,
    lon: float | None = None,
    lat: float | None = None,
    species: str = "Coffea canephora",
    cultivar: str | None = None,
    planted_on: date | None = None,
    status: str = "active",
) -> Row:
    return _one(
        conn,
        SQL["insert_tree"],
        dict(
            public_id=new_public_id(),
            tag_code=tag_code,
            cooperative_id=cooperative_id,
            plot_id=plot_id,
            lon=lon,
            lat=lat,
            species=species,
            cultivar=cultivar,
            planted_on=planted_on,
            status=status,
        ),
    )


def create_tree(
    conn: DbConn,
    cooperative_id: UUID,
    plot_id: UUID,
    tag_code: str,
    *,
    keys: KeyRing,
    lon: float | None = None,
    lat: float | None = None,
    species: str = "Coffea canephora",
    cultivar: str | None = None,
    planted_on: date | None = None,
    status: str = "active",
) -> Row:
    tree = _insert_tree(
        conn,
        cooperative_id,
        plot_id,
        tag_code,
        lon=lon,
        lat=lat,
        species=species,
        cultivar=cultivar,
        planted_on=planted_on,
        status=status,
    )
    return _versioned(conn, keys, cooperative_id, "tree", tree)


def create_trees(
    conn: DbConn,
    cooperative_id: UUID,
    plot_id: UUID,
    trees: Sequence[Mapping[str, Any]],
    *,
    keys: KeyRing,
) -> list[Row]:
    """Many trees of one plot, each given as `create_tree`'s arguments ({"tag_code",
    "lon", "lat", ...}); their versions are recorded together, one registry event per
    `registry_versions.CHUNK` trees."""
    rows = [_insert_tree(conn, cooperative_id, plot_id, **tree) for tree in trees]
    seq_of: dict[UUID, int] = {}
    for i in range(0, len(rows), CHUNK):
        part = [r["id"] for r in rows[i : i + CHUNK]]
        event = record_versions(conn, keys, cooperative_id, "tree", part)
        seq_of.update(dict.fromkeys(part, event["seq"]))
    return [{**r, "event_seq": seq_of[r["id"]]} for r in rows]


@dataclass(frozen=True)
class IssuedDevice:
    """A registered device and its credential: the secret is shown once, never stored."""

    device: Row
    username: str
    password: str


# A device's id is "{cooperative code}.{its own id}": the cooperative chooses the part after
# the dot, and two cooperatives may choose the same one; the whole id is the broker
# username and the topic segment, unique platform-wide, so nothing a cooperative chooses
# can collide with (or reveal) another's devices. Ids registered before migration 0049
# have no cooperative part and keep working.
DEVICE_LOCAL_ID = re.compile(r"^[A-Za-z0-9_-]{3,64}$")


def new_device_id(kind: str) -> str:
    """A random device id of the cooperative's own (the part after the dot)."""
    return f"{kind.replace('_', '-')}-{secrets.token_hex(6)}"


def cooperative_code(conn: DbConn, cooperative_id: UUID) -> str:
    row = conn.execute(SQL["cooperative_code"], {"cooperative_id": cooperative_id}).fetchone()
    if row is None:
        raise NotFound("no such cooperative", cooperative_id=str(cooperative_id))
    return str(row["code"])


def qualified_device_id(code: str, device_id: str) -> str:
    """The platform-wide id of a device the cooperative `code` names `device_id`: its own
    id (qualified with the code), or a whole id already of that cooperative. A whole id
    of another cooperative is refused."""
    prefix, dot, local = device_id.rpartition(".")
    if dot and prefix != code:
        raise ValidationFailed(
            f"device id {device_id!r} is not of this cooperative: give the part after"
            f" the dot, or an id starting with {code}.",
            field="device_id",
        )
    if not DEVICE_LOCAL_ID.fullmatch(local):
        raise ValidationFailed(
            "a device id is 3 to 64 letters, digits, '_' or '-'", field="device_id"
        )
    return f"{code}.{local}"


def register_device(
    conn: DbConn,
    cooperative_id: UUID,
    kind: str,
    *,
    secret: DeviceSecret,
    plot_id: UUID | None = None,
    tree_id: UUID | None = None,
    device_id: str | None = None,
) -> IssuedDevice:
    """Register a device with `secret` (made by the caller: the broker's hash format is
    not the domain's business). `device_id`: the cooperative's own id for it (see
    qualified_device_id; random when None); the device's id and broker username is
    "{cooperative code}.{device_id}"."""
    if kind not in DEVICE_KINDS:
        raise ValidationFailed(
            f"device kind must be one of {', '.join(DEVICE_KINDS)}", field="kind"
        )
    if plot_id is None and tree_id is None and kind in ("soil_node", "weather_station"):
        raise ValidationFailed(f"a {kind} must be bound to a plot (plot_id)", field="plot_id")
    _check_owned(conn, cooperative_id, plot_id=plot_id, tree_id=tree_id)
    device_id = qualified_device_id(
        cooperative_code(conn, cooperative_id), device_id or new_device_id(kind)
    )
    device = _one(
        conn,
        SQL["insert_device"],
        dict(
            id=device_id,
            cooperative_id=cooperative_id,
            kind=kind,
            plot_id=plot_id,
            tree_id=tree_id,
            credential_hash=secret.hash,
        ),
    )
    return IssuedDevice(device=device, username=device_id, password=secret.password)


def device_id_of(conn: DbConn, cooperative_id: UUID, given: str) -> str:
    """The id of the cooperative's device that a caller names `given`: a whole id as it
    is, else a device of the cooperative registered under that id before ids were
    qualified, else the cooperative's own id qualified (which may name no device)."""
    if "." in given:
        return given
    row = conn.execute(SQL["registered_device"], {"id": given}).fetchone()
    if row is not None and row["cooperative_id"] == cooperative_id:
        return given
    return f"{cooperative_code(conn, cooperative_id)}.{given}"


def rotate_device_credential(
    conn: DbConn, cooperative_id: UUID, device_id: str, *, secret: DeviceSecret
) -> IssuedDevice:
    row = conn.execute(
        SQL["update_device_credential"],
        dict(id=device_id, cooperative_id=cooperative_id, credential_hash=secret.hash),
    ).fetchone()
    if row is None:
        raise NotFound(f"device {device_id!r} does not exist in this cooperative")
    device = conn.execute(SQL["registered_device"], {"id": device_id}).fetchone()
    return IssuedDevice(device=device, username=device_id, password=secret.password)  # type: ignore[arg-type]


def set_device_active(conn: DbConn, cooperative_id: UUID, device_id: str, active: bool) -> Row:
    """Disable or enable a device of this cooperative (its credential is kept)."""
    row = conn.execute(
        SQL["set_device_active"], dict(id=device_id, cooperative_id=cooperative_id, active=active)
    ).fetchone()
    if row is None:
        raise NotFound(f"device {device_id!r} does not exist in this cooperative")
    return row


def get_device_cooperative(conn: DbConn, device_id: str) -> Row:
    """The device's cooperative (id and code) and state, whichever cooperative it is in."""
    row = conn.execute(SQL["get_device_cooperative"], {"id": device_id}).fetchone()
    if row is None:
        raise NotFound(f"no device has the id {device_id!r}")
    return row


def _check_owned(
    conn: DbConn, cooperative_id: UUID, *, plot_id: UUID | None, tree_id: UUID | None
) -> None:
    if (
        plot_id is not None
        and conn.execute(
            SQL["plot_is_of_cooperative"], {"id": plot_id, "cooperative_id": cooperative_id}
        ).fetchone()
        is None
    ):
        raise NotFound("plot_id does not name a plot of this cooperative", field="plot_id")
    if (
        tree_id is not None
        and conn.execute(
            SQL["tree_is_of_cooperative"], {"id": tree_id, "cooperative_id": cooperative_id}
        ).fetchone()
        is None
    ):
        raise NotFound("tree_id does not name a tree of this cooperative", field="tree_id")
