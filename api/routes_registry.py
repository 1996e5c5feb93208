"""Registry endpoints: products, farms (with write-only personal data), plots, trees,
devices (credential issued once) and API keys."""

from __future__ import annotations

from typing import Annotated, Any, LiteralString
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response

from coffeetrace.api import auth, qr
from coffeetrace.api.deps import Admin, Conn, Keys, Limit, Operator, Reader, UuidCursor, page
from coffeetrace.api.resolver import check_gtin
from coffeetrace.api.schemas import (
    DEVICE_ID,
    NO_NUL,
    ApiKey,
    ApiKeyIn,
    Device,
    DeviceCredential,
    DeviceIn,
    Error,
    Farm,
    FarmIn,
    FarmPrivate,
    FarmPrivateOut,
    IssuedApiKey,
    Me,
    Page,
    Plot,
    PlotIn,
    Product,
    ProductIn,
    Tree,
    TreeIn,
    error_responses,
)
from coffeetrace.broker_control import check_device_name
from coffeetrace.credentials import new_device_secret
from coffeetrace.errors import NotFound
from coffeetrace.sql import load_queries
from coffeetrace.trace import registry

SQL = load_queries("coffeetrace.api", "registry.sql")
AUTH_SQL = load_queries("coffeetrace.api", "auth.sql")

router = APIRouter(prefix="/v1", responses=error_responses(401, 403, 404, 409, 422, 503))
# a body above COFFEETRACE_API_MAX_BODY_BYTES is refused before routing (api/hardening.py)
WithBody = error_responses(413)
# a list whose cursor has its own format declares it (UuidCursor, DeviceCursor)
Cursor = Annotated[
    str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
]
DeviceCursor = Annotated[
    str | None,
    Query(pattern=DEVICE_ID, description="`next_cursor` of the previous page, unchanged."),
]


def text_filter(max_length: int) -> Any:
    """A text filter of a list: at most `max_length` characters, no NUL."""
    return Query(max_length=max_length, pattern=NO_NUL)


def _get(conn: Conn, query: LiteralString, kind: str, id_: object, cooperative_id: UUID) -> dict:
    row = conn.execute(query, {"id": id_, "cooperative_id": cooperative_id}).fetchone()
    if row is None:
        raise NotFound(f"{kind} {id_} does not exist in your cooperative", kind=kind)
    return row


@router.get("/me", response_model=Me, tags=["auth"], summary="The API key's cooperative and role")
def me(caller: Reader) -> Me:
    return Me(
        cooperative_id=caller.cooperative_id,
        cooperative_code=caller.cooperative_code,
        role=caller.role,
        key_id=caller.key_id,
    )


# --- products ---------------------------------------------------------------------
@router.get("/products", response_model=Page[Product], tags=["registry"])
def list_products(
    conn: Conn,
    caller: Reader,
    limit: Limit = 50,
    cursor: UuidCursor = None,
    kind: Annotated[str | None, text_filter(20)] = None,
) -> dict:
    return page(
        conn,
        SQL["list_products"],
        {"cooperative_id": caller.cooperative_id, "after": cursor, "kind": kind},
        limit,
    )


@router.post(
    "/products",
    response_model=Product,
    status_code=201,
    tags=["registry"],
    responses={
        **WithBody,
        422: {
            "model": Error,
            "description": "Invalid request; or a GTIN whose check digit is wrong, or one not"
            " from your cooperative's GS1 company prefixes (error `rule_violation`, rule"
            " `gtin_prefix`: only the holder of a prefix allocates its GTINs)",
        },
    },
)
def create_product(body: ProductIn, conn: Conn, caller: Operator, keys: Keys) -> dict:
    if body.gtin is not None:
        check_gtin(body.gtin)
    variants = body.name_i18n.model_dump(exclude_none=True) if body.name_i18n else None
    return registry.create_product(
        conn,
        caller.cooperative_id,
        body.name,
        keys=keys,
        kind=body.kind,
        gtin=body.gtin,
        name_i18n=variants,
    )


@router.get("/products/{product_id}", response_model=Product, tags=["registry"])
def get_product(product_id: UUID, conn: Conn, caller: Reader) -> dict:
    return _get(conn, SQL["get_product"], "product", product_id, caller.cooperative_id)


# --- farms ------------------------------------------------------------------------
@router.get("/farms", response_model=Page[Farm], tags=["registry"])
def list_farms(
    conn: Conn,
    caller: Reader,
    limit: Limit = 50,
    cursor: UuidCursor = None,
    district: Annotated[str | None, text_filter(100)] = None,
    commune: Annotated[str | None, text_filter(100)] = None,
    code: Annotated[str | None, text_filter(40)] = None,
) -> dict:
    return page(
        conn,
        SQL["list_farms"],
        {
            "cooperative_id": caller.cooperative_id,
            "after": cursor,
            "district": district,
            "commune": commune,
            "code": code,
        },
        limit,
    )


@router.post(
    "/farms",
    response_model=Farm,
    status_code=201,
    tags=["registry"],
    responses=WithBody,
    summary="Register a farm; its personal data is stored but never returned here",
)
def create_farm(body: FarmIn, conn: Conn, caller: Operator, keys: Keys) -> dict:
    farm = registry.create_farm(
        conn,
        caller.cooperative_id,
        body.code,
        keys=keys,
        display_name=body.display_name,
        display_name_consent=body.display_name_consent,
        district=body.district,
        commune=body.commune,
        private=body.private.model_dump() if body.private else None,
    )
    return farm


@router.get("/farms/{farm_id}", response_model=Farm, tags=["registry"])
def get_farm(farm_id: UUID, conn: Conn, caller: Reader) -> dict:
    return _get(conn, SQL["get_farm"], "farm", farm_id, caller.cooperative_id)


@router.put(
    "/farms/{farm_id}/private",
    status_code=204,
    tags=["registry"],
    responses=WithBody,
    summary="Replace the farm's personal data (write-only for operators)",
    description="The consent and the owner's name are facts of the farm that exports state:"
    " the change is recorded as a new registry version of the farm (a signed chain event).",
)
def put_farm_private(
    farm_id: UUID, body: FarmPrivate, conn: Conn, caller: Operator, keys: Keys
) -> Response:
    _get(conn, SQL["get_farm"], "farm", farm_id, caller.cooperative_id)
    registry.set_farm_private(conn, farm_id, keys=keys, **body.model_dump())
    return Response(status_code=204)


@router.get(
    "/farms/{farm_id}/private",
    response_model=FarmPrivateOut,
    tags=["registry"],
    summary="The farm's personal data (admins only)",
)
def get_farm_private(farm_id: UUID, conn: Conn, caller: Admin) -> dict:
    _get(conn, SQL["get_farm"], "farm", farm_id, caller.cooperative_id)
    return _get(conn, SQL["get_farm_private"], "farm personal data", farm_id, caller.cooperative_id)


# --- plots ------------------------------------------------------------------------
@router.get("/plots", response_model=Page[Plot], tags=["registry"])
def list_plots(
    conn: Conn,
    caller: Reader,
    limit: Limit = 50,
    cursor: UuidCursor = None,
    farm_id: UUID | None = None,
    district: Annotated[str | None, text_filter(100)] = None,
    growing_area_code: Annotated[str | None, text_filter(60)] = None,
) -> dict:
    return page(
        conn,
        SQL["list_plots"],
        {
            "cooperative_id": caller.cooperative_id,
            "after": cursor,
            "farm_id": farm_id,
            "district": district,
            "growing_area_code": growing_area_code,
        },
        limit,
    )


@router.post(
    "/plots",
    response_model=Plot,
    status_code=201,
    tags=["registry"],
    responses={
        **WithBody,
        422: {
            "model": Error,
            "description": "Invalid request; or a geometry the EUDR rules refuse (error"
            " `rule_violation`, the rule named): a ring not closed or crossing itself,"
            " enclosing no area, a hole outside its ring, a plot spanning more than 0.5"
            " degrees, [0, 0], or a Point for a plot above 4 ha",
        },
    },
)
def create_plot(body: PlotIn, conn: Conn, caller: Operator, keys: Keys) -> dict:
    _get(conn, SQL["get_farm"], "farm", body.farm_id, caller.cooperative_id)
    row = registry.create_plot(
        conn,
        caller.cooperative_id,
        body.farm_id,
        body.code,
        body.geometry.model_dump(mode="json"),
        body.area_ha,
        keys=keys,
        altitude_m=body.altitude_m,
        growing_area_code=body.growing_area_code,
        district=body.district,
    )
    return _get(conn, SQL["get_plot"], "plot", row["id"], caller.cooperative_id)


@router.get("/plots/{plot_id:uuid}", response_model=Plot, tags=["registry"])
def get_plot(plot_id: UUID, conn: Conn, caller: Reader) -> dict:
    return _get(conn, SQL["get_plot"], "plot", plot_id, caller.cooperative_id)


# --- trees ------------------------------------------------------------------------
@router.get("/trees", response_model=Page[Tree], tags=["registry"])
def list_trees(
    conn: Conn,
    caller: Reader,
    limit: Limit = 50,
    cursor: UuidCursor = None,
    plot_id: UUID | None = None,
    cultivar: Annotated[str | None, text_filter(100)] = None,
    status: Annotated[str | None, text_filter(20)] = None,
    tag_code: Annotated[str | None, text_filter(40)] = None,
) -> dict:
    return page(
        conn,
        SQL["list_trees"],
        {
            "cooperative_id": caller.cooperative_id,
            "after": cursor,
            "plot_id": plot_id,
            "cultivar": cultivar,
            "status": status,
            "tag_code": tag_code,
        },
        limit,
    )


@router.post("/trees", response_model=Tree, status_code=201, tags=["registry"], responses=WithBody)
def create_tree(body: TreeIn, conn: Conn, caller: Operator, keys: Keys) -> dict:
    _get(conn, SQL["get_plot"], "plot", body.plot_id, caller.cooperative_id)
    return registry.create_tree(
        conn,
        caller.cooperative_id,
        body.plot_id,
        body.tag_code,
        keys=keys,
        lon=body.lon,
        lat=body.lat,
        species=body.species,
        cultivar=body.cultivar,
        planted_on=body.planted_on,
        status=body.status,
    )


@router.get("/trees/{tree_id}", response_model=Tree, tags=["registry"])
def get_tree(tree_id: UUID, conn: Conn, caller: Reader) -> dict:
    return _get(conn, SQL["get_tree"], "tree", tree_id, caller.cooperative_id)


@router.get(
    "/trees/{tree_id}/qr.{fmt}",
    tags=["qr"],
    summary="QR code of the tree's tag",
    responses={200: {"content": {"image/png": {}, "image/svg+xml": {}}}},
    response_class=Response,
)
def tree_qr(
    tree_id: UUID,
    fmt: qr.Format,
    request: Request,
    conn: Conn,
    caller: Reader,
    scale: Annotated[int, Query(ge=1, le=40)] = 8,
) -> Response:
    tree = _get(conn, SQL["get_tree"], "tree", tree_id, caller.cooperative_id)
    uri = qr.tree_uri(request.app.state.settings.public_base_url, tree["public_id"])
    return Response(
        qr.render(uri, fmt, scale=scale),
        media_type=qr.MEDIA_TYPES[fmt],
        headers={"X-Encoded-URI": uri},
    )


# --- devices ----------------------------------------------------------------------
@router.get("/devices", response_model=Page[Device], tags=["registry"])
def list_devices(
    conn: Conn,
    caller: Reader,
    limit: Limit = 50,
    cursor: DeviceCursor = None,
    kind: Annotated[str | None, text_filter(20)] = None,
    plot_id: UUID | None = None,
    active: bool | None = None,
) -> dict:
    return page(
        conn,
        SQL["list_devices"],
        {
            "cooperative_id": caller.cooperative_id,
            "after": cursor,
            "kind": kind,
            "plot_id": plot_id,
            "active": active,
        },
        limit,
    )


def _credential(issued: registry.IssuedDevice, request: Request) -> DeviceCredential:
    return DeviceCredential(
        device=Device.model_validate(issued.device),
        mqtt_username=issued.username,
        mqtt_password=issued.password,
        topic_prefix=request.app.state.settings.topic_prefix,
    )


# Device changes reach the broker inside the request's transaction: when the broker does
# not confirm (COFFEETRACE_MQTT_BROKER_AUTH=dynsec), the error (503) rolls the change back.
BrokerRefusal = error_responses(503)
DEVICE_REFUSALS = {
    **WithBody,
    **BrokerRefusal,
    422: {
        "model": Error,
        "description": "Invalid request; or a device_id that is a whole id of another"
        " cooperative (its part before the dot is not your cooperative's code), or one the"
        " platform keeps for its own broker clients (COFFEETRACE_MQTT_CLIENT_ID and the"
        " platform's prefix; reason `reserved_name`)",
    },
}


@router.post(
    "/devices",
    response_model=DeviceCredential,
    status_code=201,
    tags=["registry"],
    summary="Register a device; its MQTT password is returned once",
    responses=DEVICE_REFUSALS,
)
def create_device(
    body: DeviceIn, request: Request, conn: Conn, caller: Operator
) -> DeviceCredential:
    check_device_name(request.app.state.settings, body.device_id)
    issued = registry.register_device(
        conn,
        caller.cooperative_id,
        body.kind,
        plot_id=body.plot_id,
        tree_id=body.tree_id,
        device_id=body.device_id,
        secret=new_device_secret(),
    )
    request.app.state.broker_control.upsert_device(issued.username, issued.password)
    return _credential(issued, request)


@router.get("/devices/{device_id}", response_model=Device, tags=["registry"])
def get_device(device_id: str, conn: Conn, caller: Reader) -> dict:
    device_id = registry.device_id_of(conn, caller.cooperative_id, device_id)
    return _get(conn, SQL["get_device"], "device", device_id, caller.cooperative_id)


@router.post(
    "/devices/{device_id}/credential",
    response_model=DeviceCredential,
    tags=["registry"],
    summary="Issue a new MQTT password (the old one stops working)",
    responses=BrokerRefusal,
)
def rotate_device(
    device_id: str, request: Request, conn: Conn, caller: Operator
) -> DeviceCredential:
    device_id = registry.device_id_of(conn, caller.cooperative_id, device_id)
    _get(conn, SQL["get_device"], "device", device_id, caller.cooperative_id)
    issued = registry.rotate_device_credential(
        conn, caller.cooperative_id, device_id, secret=new_device_secret()
    )
    request.app.state.broker_control.upsert_device(
        issued.username, issued.password, active=issued.device["active"]
    )
    return _credential(issued, request)


@router.post(
    "/devices/{device_id}/disable",
    response_model=Device,
    tags=["registry"],
    summary="Disable a device: the broker refuses it, ingest drops its messages",
    responses=BrokerRefusal,
)
def disable_device(device_id: str, request: Request, conn: Conn, caller: Operator) -> dict:
    device_id = registry.device_id_of(conn, caller.cooperative_id, device_id)
    row = registry.set_device_active(conn, caller.cooperative_id, device_id, False)
    request.app.state.broker_control.set_device_active(device_id, False)
    return row


@router.post(
    "/devices/{device_id}/enable",
    response_model=Device,
    tags=["registry"],
    summary="Enable a disabled device again, with its current credential",
    responses=BrokerRefusal,
)
def enable_device(device_id: str, request: Request, conn: Conn, caller: Operator) -> dict:
    device_id = registry.device_id_of(conn, caller.cooperative_id, device_id)
    row = registry.set_device_active(conn, caller.cooperative_id, device_id, True)
    request.app.state.broker_control.set_device_active(device_id, True)
    return row


# --- API keys ---------------------------------------------------------------------
@router.get("/api-keys", response_model=Page[ApiKey], tags=["auth"])
def list_api_keys(conn: Conn, caller: Admin, limit: Limit = 50, cursor: UuidCursor = None) -> dict:
    rows = conn.execute(
        AUTH_SQL["list_api_keys"],
        {
            "cooperative_id": caller.cooperative_id,
            "after": cursor,
            "limit": limit + 1,
        },
    ).fetchall()
    more = len(rows) > limit
    rows = rows[:limit]
    return {"items": rows, "next_cursor": str(rows[-1]["id"]) if more and rows else None}


@router.post(
    "/api-keys",
    response_model=IssuedApiKey,
    status_code=201,
    tags=["auth"],
    responses=WithBody,
    summary="Issue an API key for your cooperative; the token is shown once",
)
def create_api_key(body: ApiKeyIn, conn: Conn, caller: Admin) -> IssuedApiKey:
    issued = auth.create_api_key(conn, caller.cooperative_id, body.role, body.name)
    return IssuedApiKey(key=ApiKey.model_validate(issued.row), token=issued.token)


@router.delete("/api-keys/{key_id}", response_model=ApiKey, tags=["auth"])
def revoke_api_key(key_id: UUID, conn: Conn, caller: Admin) -> dict:
    row = conn.execute(
        AUTH_SQL["revoke_api_key"], {"id": key_id, "cooperative_id": caller.cooperative_id}
    ).fetchone()
    if row is None:
        raise NotFound(f"API key {key_id} does not exist in your cooperative")
    return row
