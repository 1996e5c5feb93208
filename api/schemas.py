"""Request and response bodies of the cooperative API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, Literal, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

Code = Field(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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
class ProductIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["cherry", "dried_cherry", "green", "roasted", "packed"] = "green"
    gtin: str | None = Field(
        None, pattern=r"^[0-9]{14}$", description="GTIN-14 printed in Digital Link QR codes."
    )


class Product(BaseModel):
    id: UUID
    name: str
    kind: str
    gtin: str | None
    created_at: datetime


# --- farms ------------------------------------------------------------------
class FarmPrivate(Strict):
    """Personal data: write-only for operators, readable by admins only, never public."""

    owner_name: str | None = Field(None, max_length=200)
    phone: str | None = Field(None, max_length=40)
    national_id: str | None = Field(None, max_length=40)
    address: str | None = Field(None, max_length=400)
    data_consent: bool = False


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
    display_name: str | None = Field(None, max_length=200)
    display_name_consent: bool = Field(
        False, description="Show display_name on public pages (the farmer agreed)."
    )
    district: str | None = Field(None, max_length=100)
    commune: str | None = Field(None, max_length=100)
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
class PlotIn(Strict):
    farm_id: UUID
    code: str = Code
    geometry: dict[str, Any] = Field(
        description="GeoJSON Point or Polygon, [longitude, latitude] (WGS84).",
        examples=[{"type": "Point", "coordinates": [108.05, 12.68]}],
    )
    area_ha: float = Field(gt=0, le=100000)
    altitude_m: int | None = Field(None, ge=-100, le=3000)
    growing_area_code: str | None = Field(None, max_length=60)
    district: str | None = Field(None, max_length=100)


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
    lon: float | None = Field(None, ge=-180, le=180)
    lat: float | None = Field(None, ge=-90, le=90)
    species: str = Field("Coffea canephora", min_length=1, max_length=100)
    cultivar: str | None = Field(None, max_length=100)
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
class DeviceIn(Strict):
    kind: Literal["soil_node", "weather_station", "harvest_scale", "phone"]
    plot_id: UUID | None = None
    tree_id: UUID | None = None
    device_id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{3,64}$")


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


class CherryLotIn(Strict):
    code: str = LotCode
    harvest_ids: list[UUID] | None = None
    tree_ids: list[UUID] | None = None
    plot_ids: list[UUID] | None = None
    farm_ids: list[UUID] | None = None
    since: datetime | None = None
    until: datetime | None = None
    product_id: UUID | None = None


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
    kg: float = Field(gt=0, le=1e9)


class LotOutput(Strict):
    code: str = LotCode
    kg: float = Field(gt=0, le=1e9)
    kind: Literal["cherry", "dried_cherry", "green", "roasted", "packed", "blend"]
    product_id: UUID | None = None


class TransformationIn(Strict):
    step: str = Field(
        min_length=1, max_length=40, pattern=r"^[a-z_]+$", examples=["drying", "hulling"]
    )
    occurred_at: datetime
    inputs: list[LotInput] = Field(min_length=1, max_length=500)
    outputs: list[LotOutput] = Field(min_length=1, max_length=500)
    place: str | None = Field(None, max_length=200)
    measurements: dict[str, Any] | None = None
    evidence: list[dict[str, Any]] | None = None


class LotQuantity(BaseModel):
    lot_id: UUID
    kg: float


class Transformation(BaseModel):
    id: UUID
    step: str
    occurred_at: datetime
    place: str | None
    measurements: dict[str, Any]
    evidence: list[Any]
    created_at: datetime
    inputs: list[LotQuantity]
    outputs: list[LotQuantity]


# --- API keys -----------------------------------------------------------------
class ApiKeyIn(Strict):
    role: Literal["admin", "operator", "read-only"]
    name: str = Field("", max_length=100)


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
        422: "Invalid request or a domain rule refused it",
        429: "Too many lookups from this address; wait Retry-After seconds",
        503: "The MQTT broker did not confirm the change; nothing was changed",
    }
    return {code: {"model": Error, "description": meaning[code]} for code in codes}
