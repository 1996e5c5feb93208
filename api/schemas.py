"""Request and response bodies of the cooperative API.

A request model states its limits in the OpenAPI document, and pydantic enforces the
same limits before the domain sees a value, so that a body the schema allows is one the
database can store: booleans and numbers are strict (no `0` for false, no `"5"` for 5),
free text holds no NUL character (PostgreSQL text cannot store one), kilograms and
hectares start at the database's resolution (numeric(14, 3) and numeric(10, 4)) and end
at a realistic maximum, and fields that must come together are required together.
What no schema can state (a GTIN's company prefix, ids of another cooperative, a harvest
already in a lot) is a documented 4xx with its reason; docs/api.md lists the limits.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, Self, TypeVar, Union
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType

from coffeetrace.trace.geometry import POINT_MAX_AREA_HA

T = TypeVar("T")

Code = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold U+0000
GTIN_FORMAT = {"format": "gtin"}  # 14 digits whose last is the GS1 mod-10 check digit


def text(max_length: int, *, min_length: int | None = None, default: Any = None) -> Any:
    """A free-text field: at most `max_length` characters, none of them NUL (`default`
    `...`: required)."""
    return Field(default, min_length=min_length, max_length=max_length, pattern=NO_NUL)


# Free-form objects (a step's measurements, a receipt's, evidence) take any JSON value, but
# only what jsonb can store, and the schema says so, recursively: no NUL in a key or a
# string (PostgreSQL would refuse it later, as a 500) and, as every pattern-checked string,
# no lone UTF-16 surrogate; at most FREE_FORM_MAX_DEPTH levels of arrays and objects (which
# a JSON schema cannot state: the description does).
FREE_FORM_MAX_DEPTH = 8
StorableText = Annotated[str, Field(pattern=NO_NUL)]
_CLOSED = {"additionalProperties": False}  # keys outside the pattern are not allowed either
if TYPE_CHECKING:  # mypy cannot follow a recursive TypeAliasType: to it, any JSON value
    FreeValue = Any
else:
    FreeValue = TypeAliasType(
        "FreeValue",
        Union[  # noqa: UP007 (a recursive alias needs the Union form)
            StorableText,
            bool,
            int,
            float,
            None,
            list["FreeValue"],
            Annotated[dict[StorableText, "FreeValue"], Field(json_schema_extra=_CLOSED)],
        ],
    )


def _within_depth(value: dict[str, Any]) -> dict[str, Any]:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:  # iterative: no recursion on hostile depth
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > FREE_FORM_MAX_DEPTH:
                raise PydanticCustomError(
                    "too_deep",
                    "more than {limit} levels of nested arrays and objects",
                    {"limit": FREE_FORM_MAX_DEPTH},
                )
            inner = item.values() if isinstance(item, dict) else item
            stack.extend((v, depth + 1) for v in inner)
    return value


FreeObject = Annotated[
    dict[StorableText, FreeValue],
    AfterValidator(_within_depth),
    Field(
        json_schema_extra=_CLOSED,
        description="Any JSON object: no NUL in its keys and strings, at most"
        f" {FREE_FORM_MAX_DEPTH} levels of arrays and objects deep.",
    ),
]


StrictBool = Annotated[bool, Field(strict=True)]
# numeric(14, 3): the gram is the smallest amount; 100 000 t per line keeps a step's
# 500 lines inside the column (a country's yearly crop is a few million tonnes)
Kilograms = Annotated[
    float,
    Field(strict=True, ge=0.001, le=100_000_000, description="Kilograms, to the gram."),
]
Longitude = Annotated[float, Field(strict=True, ge=-180, le=180)]
Latitude = Annotated[float, Field(strict=True, ge=-90, le=90)]
Altitude = Annotated[float, Field(strict=True)]
# GeoJSON position: [longitude, latitude] or [longitude, latitude, altitude]
Position = tuple[Longitude, Latitude] | tuple[Longitude, Latitude, Altitude]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` for the next page.")


class Error(BaseModel):
    error: str = Field(description="Machine-readable kind: not_found, invalid, forbidden...")
    message: str = Field(description="What went wrong and what to fix.")
    details: dict[str, Any] | None = None


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- products ---------------------------------------------------------------
class NameVariants(Strict):
    """A name per language, either or both; the page picks the reader's."""

    vi: str | None = text(200, min_length=1)
    en: str | None = text(200, min_length=1)


class ProductIn(Strict):
    name: str = text(200, min_length=1, default=...)
    name_i18n: NameVariants | None = Field(
        None,
        description='The name per language for the public page ({"vi": ..., "en": ...},'
        " either or both); `name` stays the product's name on labels and in exports.",
    )
    kind: Literal["cherry", "dried_cherry", "green", "roasted", "packed"] = "green"
    gtin: Annotated[str, Field(pattern=r"^[0-9]{14}$", json_schema_extra=GTIN_FORMAT)] | None = (
        Field(
            None,
            description="GTIN-14 printed in Digital Link QR codes: a valid GS1 check digit,"
            " allocated from one of your cooperative's GS1 company prefixes.",
        )
    )


class Product(BaseModel):
    id: UUID
    name: str
    name_i18n: dict[str, str] | None = None
    kind: str
    gtin: str | None
    created_at: datetime


# --- farms ------------------------------------------------------------------
class FarmPrivate(Strict):
    """Personal data: write-only for operators, readable by admins only, never public."""

    owner_name: str | None = text(200)
    phone: str | None = text(40)
    national_id: str | None = text(40)
    address: str | None = text(400)
    data_consent: StrictBool = False
    authority_consent: StrictBool = Field(
        False,
        description="The owner agreed that their name be given to the EU authorities as the"
        " producer in EUDR due diligence statements; otherwise the cooperative is named as the"
        " producer group. Never shown on public pages.",
    )


class FarmPrivateOut(BaseModel):
    owner_name: str | None
    phone: str | None
    national_id: str | None
    address: str | None
    data_consent: bool
    consent_at: datetime | None
    consent_withdrawn_at: datetime | None


class FarmIn(Strict):
    code: str = Code
    display_name: str | None = text(200)
    display_name_consent: StrictBool = Field(
        False, description="Show display_name on public pages (the farmer agreed)."
    )
    district: str | None = text(100)
    commune: str | None = text(100)
    private: FarmPrivate | None = None


class Farm(BaseModel):
    id: UUID
    code: str
    display_name: str | None
    display_name_consent: bool
    district: str | None
    commune: str | None
    created_at: datetime


# --- plots ------------------------------------------------------------------
class PointGeometry(Strict):
    type: Literal["Point"]
    coordinates: Position


class PolygonGeometry(Strict):
    type: Literal["Polygon"]
    coordinates: list[Annotated[list[Position], Field(min_length=4)]] = Field(
        min_length=1,
        description="The outer ring, then any holes; each ring closed (its last position"
        " is its first), not crossing itself, spanning at most 0.5 degrees.",
    )


class PlotIn(Strict):
    # EUDR: a Point describes a plot of at most 4 ha (the domain refuses a larger one)
    model_config = ConfigDict(
        json_schema_extra={
            "if": {
                "properties": {"geometry": {"properties": {"type": {"const": "Point"}}}},
                "required": ["geometry"],
            },
            "then": {"properties": {"area_ha": {"maximum": POINT_MAX_AREA_HA}}},
        }
    )

    farm_id: UUID
    code: str = Code
    geometry: PointGeometry | PolygonGeometry = Field(
        discriminator="type",
        description="GeoJSON Point or Polygon, [longitude, latitude] (WGS84).",
        examples=[{"type": "Point", "coordinates": [108.05, 12.68]}],
    )
    # numeric(10, 4): a square metre is the smallest area the column keeps above 0
    area_ha: float = Field(
        strict=True,
        ge=0.0001,
        le=100_000,
        description=f"Hectares, to the square metre. A Point may describe a plot of at most"
        f" {POINT_MAX_AREA_HA:g} ha (EUDR); a larger plot needs a Polygon.",
    )
    altitude_m: int | None = Field(None, strict=True, ge=-100, le=3000)
    growing_area_code: str | None = text(60)
    district: str | None = text(100)


class Plot(BaseModel):
    id: UUID
    farm_id: UUID
    code: str
    geometry: dict[str, Any]
    area_ha: float
    altitude_m: int | None
    growing_area_code: str | None
    district: str | None
    centroid_lon: float
    centroid_lat: float
    created_at: datetime


# --- trees ------------------------------------------------------------------
TreeStatus = Literal["active", "stumped", "replanted", "removed", "dead"]


class TreeIn(Strict):
    plot_id: UUID
    tag_code: str = Code
    lon: Longitude | None = None
    lat: Latitude | None = None
    species: str = text(100, min_length=1, default="Coffea canephora")
    cultivar: str | None = text(100)
    planted_on: date | None = None
    status: TreeStatus = "active"


class Tree(BaseModel):
    id: UUID
    public_id: str
    tag_code: str
    plot_id: UUID
    lon: float | None
    lat: float | None
    species: str
    cultivar: str | None
    planted_on: date | None
    status: str
    created_at: datetime


# --- devices ----------------------------------------------------------------
# the cooperative's own id, or the whole "{cooperative code}.{own id}" (trace/registry.py)
DEVICE_ID = r"^([a-z0-9][a-z0-9-]{1,39}\.)?[A-Za-z0-9_-]{3,64}$"


class _DeviceIn(Strict):
    tree_id: UUID | None = None
    device_id: str | None = Field(
        None,
        pattern=DEVICE_ID,
        description="The cooperative's own id for it (made up when not given); the"
        ' device\'s id and MQTT user name is "{cooperative code}.{this id}".',
    )


class SensorDeviceIn(_DeviceIn):
    """A soil node or weather station measures a plot, so it is bound to one."""

    kind: Literal["soil_node", "weather_station"]
    plot_id: UUID


class PortableDeviceIn(_DeviceIn):
    """A harvest scale or phone goes where the picking is: a plot is optional."""

    kind: Literal["harvest_scale", "phone"]
    plot_id: UUID | None = None


DeviceIn = Annotated[SensorDeviceIn | PortableDeviceIn, Field(discriminator="kind")]


class Device(BaseModel):
    id: str
    kind: str
    plot_id: UUID | None
    tree_id: UUID | None
    active: bool
    registered_at: datetime


class DeviceCredential(BaseModel):
    device: Device
    mqtt_username: str
    mqtt_password: str = Field(description="Shown once; only its hash is stored.")
    topic_prefix: str


# --- lots and transformations ---------------------------------------------------
LotCode = Field(
    min_length=1,
    max_length=20,
    pattern=r"^[A-Za-z0-9_.-]{1,20}$",
    description="GS1 batch/lot code (AI 10).",
)


HARVEST_SELECTORS = ("harvest_ids", "tree_ids", "plot_ids", "farm_ids")


class CherryLotIn(Strict):
    """The harvests are named by harvest_ids, or chosen by tree_ids, plot_ids or farm_ids
    within [since, until): at least one of these lists is given and not empty."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "array", "minItems": 1}}}
                for name in HARVEST_SELECTORS
            ]
        }
    )

    code: str = LotCode
    harvest_ids: list[UUID] | None = None
    tree_ids: list[UUID] | None = None
    plot_ids: list[UUID] | None = None
    farm_ids: list[UUID] | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    product_id: UUID | None = None

    @model_validator(mode="after")
    def _harvests_named(self) -> Self:
        if not any(getattr(self, name) for name in HARVEST_SELECTORS):
            raise PydanticCustomError(
                "harvests_not_named",
                "name the harvests: give harvest_ids, or tree_ids, plot_ids or farm_ids"
                " (with since/until)",
            )
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise PydanticCustomError(
                "empty_period",
                "since ({since}) must be before until ({until}): the period is [since, until)",
                {"since": self.since.isoformat(), "until": self.until.isoformat()},
            )
        return self


class Lot(BaseModel):
    id: UUID
    public_id: str
    code: str
    kind: str
    product_id: UUID | None
    quantity_kg: float
    remaining_kg: float | None = Field(None, description="Not yet consumed by a step.")
    harvest_from: date | None
    harvest_to: date | None
    created_at: datetime
    gtin: str | None = None


class LotInput(Strict):
    lot_id: UUID
    kg: Kilograms


class LotOutput(Strict):
    code: str = LotCode
    kg: Kilograms
    kind: Literal["cherry", "dried_cherry", "green", "roasted", "packed", "blend"]
    product_id: UUID | None = None


class TransformationIn(Strict):
    step: str = Field(
        min_length=1, max_length=40, pattern=r"^[a-z_]+$", examples=["drying", "hulling"]
    )
    occurred_at: AwareDatetime
    inputs: list[LotInput] = Field(min_length=1, max_length=500)
    outputs: list[LotOutput] = Field(min_length=1, max_length=500)
    place: str | None = text(200)
    place_i18n: NameVariants | None = Field(
        None,
        description='The place per language for the public page ({"vi": ..., "en": ...},'
        " either or both); `place` stays the text exports state.",
    )
    measurements: FreeObject | None = None
    evidence: list[FreeObject] | None = None


class LotQuantity(BaseModel):
    lot_id: UUID
    kg: float


class Transformation(BaseModel):
    id: UUID
    step: str
    occurred_at: datetime
    place: str | None
    place_i18n: dict[str, str] | None = None
    measurements: dict[str, Any]
    evidence: list[Any]
    created_at: datetime
    inputs: list[LotQuantity]
    outputs: list[LotQuantity]


# --- API keys -----------------------------------------------------------------
class ApiKeyIn(Strict):
    role: Literal["admin", "operator", "read-only"]
    name: str = text(100, default="")


class ApiKey(BaseModel):
    id: UUID
    name: str
    role: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class IssuedApiKey(BaseModel):
    key: ApiKey
    token: str = Field(description="Shown once; only its SHA-256 is stored.")


class Me(BaseModel):
    cooperative_id: UUID
    cooperative_code: str
    role: str
    key_id: UUID


class LabelsIn(Strict):
    lot_ids: list[UUID] = Field(min_length=1, max_length=200)


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the project's one error format."""
    meaning = {
        400: "Bad identifier",
        401: "Missing or unknown API key",
        403: "The key's role does not allow this",
        404: "Not found in your cooperative",
        409: "Already exists",
        413: "The request body is larger than the limit (details.max_bytes)",
        422: "Invalid request or a domain rule refused it",
        429: "Too many lookups from this address; wait Retry-After seconds",
        503: "The database, or for a device change the MQTT broker, did not answer or confirm;"
        " nothing was changed: try again shortly",
    }
    return {code: {"model": Error, "description": meaning[code]} for code in codes}
