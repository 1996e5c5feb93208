"""Plots from the files field teams record them in: GeoJSON, KML (Google Earth and phone
apps) and GPX (a phone's GPS walk around the plot). Every plot of a file is checked, by
the registry's geometry rules and the EU's (eudr.check_plot: the 6-decimal cut, holes,
4 ha, Area), before any is written; one refusal refuses the file, and each refusal
names the feature and the rule (RuleViolation "plot_file" with `refusals`).

What a file gives for each plot:
- its code: the GeoJSON property `PlotCode` (or `code`, `name`), the KML Placemark's or
  the GPX track's, route's or waypoint's `name`;
- its farm: the property `FarmCode` (KML ExtendedData, GPX extensions), else the
  request's farm; a plot of that code already registered keeps its farm, and gets the
  file's outline and area as a new registry version;
- its geometry: a Point or a Polygon (holes allowed: the export cuts them away). A GPS
  walk (a GeoJSON or KML LineString, a KML gx:Track, a GPX track or route) is the
  plot's outline: closed when it ends within WALK_CLOSE_MAX_M of its start. Altitudes
  are dropped;
- its area in ha: the property `Area` (a JSON number in GeoJSON; text in KML and GPX,
  which have no numbers), required for a Point; a Polygon without one is measured.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import PurePath
from typing import Any
from uuid import UUID

from psycopg.types.json import Jsonb

from coffeetrace.db import DbConn, Row
from coffeetrace.errors import NotFound, RuleViolation, ValidationFailed
from coffeetrace.sql import load_queries
from coffeetrace.trace import eudr, registry
from coffeetrace.trace import queries as q
from coffeetrace.trace.geometry import distance_m, geometry_centroid, validate_plot_geometry
from coffeetrace.trace.jsonutil import loads_bounded
from coffeetrace.trace.keys import KeyRing
from coffeetrace.trace.registry_versions import record_versions

SQL = load_queries("coffeetrace.trace", "plot_files.sql")

FORMATS = ("geojson", "kml", "gpx")
MEDIA_TYPES = {
    "application/geo+json": "geojson",
    "application/json": "geojson",
    "application/vnd.google-earth.kml+xml": "kml",
    "application/gpx+xml": "gpx",
}
EXTENSIONS = {".geojson": "geojson", ".json": "geojson", ".kml": "kml", ".gpx": "gpx"}
# A walk that ends farther than this from where it started did not go round the plot.
WALK_CLOSE_MAX_M = 50.0
MAX_PLOTS = 5_000  # per file
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")  # the API's plot and farm codes
AREA_MAX_HA = 100_000.0
CODE_KEYS = ("PlotCode", "plot_code", "code", "name", "Name")
FARM_KEYS = ("FarmCode", "farm_code", "farm")
AREA_KEYS = ("Area", "area_ha")


@dataclass(frozen=True)
class Candidate:
    """One plot as a file describes it, before any check against the registry."""

    index: int  # 1-based, in the file's order
    code: str | None
    farm_code: str | None
    geometry: dict[str, Any] | None
    area_ha: float | None
    source: str  # what the file held: "Polygon", "GPS walk (GPX track)", ...
    refusal: tuple[str, str] | None = None  # (rule, message) found while reading it

    @property
    def label(self) -> str:
        return f"feature {self.index}" + (f" ({self.code})" if self.code else "")


def _refusal(candidate: Candidate, rule: str, message: str) -> dict[str, Any]:
    return {
        "feature": candidate.label,
        "index": candidate.index,
        "code": candidate.code,
        "rule": rule,
        "message": message,
    }


# --- the file's format -------------------------------------------------------------------


def detect_format(data: bytes, content_type: str | None, filename: str | None) -> str:
    """ "geojson", "kml" or "gpx": from the media type, else the file name's extension,
    else the content (a JSON object; an XML root named kml or gpx)."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in MEDIA_TYPES:
        return MEDIA_TYPES[media]
    if filename:
        suffix = PurePath(filename).suffix.lower()
        if suffix in EXTENSIONS:
            return EXTENSIONS[suffix]
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"{"):
        return "geojson"
    if head.startswith(b"<"):
        tag = re.search(rb"<(?:[A-Za-z_][\w.-]*:)?(kml|gpx)[\s>]", head)
        if tag:
            return tag.group(1).decode()
    raise ValidationFailed(
        "cannot tell the file's format: send GeoJSON (application/geo+json), KML"
        " (application/vnd.google-earth.kml+xml) or GPX (application/gpx+xml), or a file"
        " named .geojson, .kml or .gpx",
        field="file",
        content_type=media or None,
    )


# --- positions and walks ---------------------------------------------------------------------


def _position(value: Any) -> list[float] | None:
    """[lon, lat] of a GeoJSON position (an altitude dropped), None when it is not one."""
    if (
        isinstance(value, list)
        and len(value) in (2, 3)
        and all(isinstance(c, int | float) and not isinstance(c, bool) for c in value)
    ):
        return [float(value[0]), float(value[1])]
    return None


def _deduped(points: Iterable[list[float]]) -> list[list[float]]:
    """Without consecutive repeats (a phone standing still records one place many times)."""
    out: list[list[float]] = []
    for p in points:
        if not out or out[-1] != p:
            out.append(p)
    return out


def walk_polygon(points: Sequence[list[float]]) -> tuple[dict[str, Any] | None, str | None]:
    """The Polygon a GPS walk around a plot outlines: (geometry, None), or (None, why not)
    when it has fewer than 3 distinct positions or ends more than WALK_CLOSE_MAX_M from
    where it started."""
    ring = _deduped(points)
    if len(ring) > 1 and ring[0] == ring[-1]:
        ring = ring[:-1]
    if len({tuple(p) for p in ring}) < 3:
        return None, f"the walk has {len(ring)} distinct positions; an outline needs 3 or more"
    gap = distance_m(ring[-1][0], ring[-1][1], ring[0][0], ring[0][1])
    if gap > WALK_CLOSE_MAX_M:
        return None, (
            f"the walk ends {gap:.0f} m from where it started (at most"
            f" {WALK_CLOSE_MAX_M:.0f} m): walk back to the start to close the outline"
        )
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}, None


# --- GeoJSON -----------------------------------------------------------------------------------


def _first(props: dict[str, Any], keys: Sequence[str]) -> Any:
    return next((props[k] for k in keys if props.get(k) not in (None, "")), None)


def _text_or_none(value: Any) -> str | None:
    return str(value).strip() if isinstance(value, str | int) and str(value).strip() else None


def _geojson_area(props: dict[str, Any]) -> tuple[float | None, tuple[str, str] | None]:
    value = _first(props, AREA_KEYS)
    if value is None:
        return None, None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None, (
            "area_not_a_number",
            f"Area {json.dumps(value, ensure_ascii=False)} is not a number: the EU system"
            " counts a quoted Area as 0; write it as a JSON number of hectares",
        )
    return float(value), None


def _geojson_geometry(geom: Any) -> tuple[dict[str, Any] | None, str, tuple[str, str] | None]:
    kind = geom.get("type") if isinstance(geom, dict) else None
    coords = geom.get("coordinates") if isinstance(geom, dict) else None
    if kind == "Point":
        pos = _position(coords)
        if pos is None:
            return None, kind, ("position_shape", "a Point's coordinates are [longitude, latitude]")
        return {"type": "Point", "coordinates": pos}, kind, None
    if kind == "Polygon":
        if not isinstance(coords, list) or not coords:
            return None, kind, ("polygon_shape", "a Polygon's coordinates are a list of rings")
        rings = []
        for ring in coords:
            positions = [_position(p) for p in ring] if isinstance(ring, list) else [None]
            if any(p is None for p in positions):
                return None, kind, ("position_shape", "a position is [longitude, latitude]")
            rings.append([p for p in positions if p is not None])
        return {"type": "Polygon", "coordinates": rings}, kind, None
    if kind == "LineString":
        positions = [_position(p) for p in coords] if isinstance(coords, list) else [None]
        if any(p is None for p in positions):
            return None, kind, ("position_shape", "a position is [longitude, latitude]")
        polygon, why = walk_polygon([p for p in positions if p is not None])
        source = "GPS walk (LineString)"
        return polygon, source, None if why is None else ("walk_not_closed", why)
    if kind in ("MultiPolygon", "MultiPoint", "MultiLineString", "GeometryCollection"):
        return (
            None,
            kind,
            (
                "geometry_type",
                f"a {kind} is several places: give each plot a Feature of its own (a Point or"
                " a Polygon)",
            ),
        )
    return (
        None,
        str(kind),
        (
            "geometry_type",
            "a plot's geometry is a Point or a Polygon (or a walk: a LineString)",
        ),
    )


# a MultiPolygon in a Feature in a FeatureCollection is 7 levels deep; a file far deeper
# is no plot file
MAX_JSON_DEPTH = 32


def parse_geojson(data: bytes) -> list[Candidate]:
    """The plots of a GeoJSON FeatureCollection, Feature or bare geometry."""
    try:
        doc = loads_bounded(data.decode("utf-8-sig"), max_depth=MAX_JSON_DEPTH)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed(f"the file is not GeoJSON: {exc}", field="file") from None
    kind = doc.get("type") if isinstance(doc, dict) else None
    if kind == "FeatureCollection":
        features = doc.get("features")
        if not isinstance(features, list):
            raise ValidationFailed("a FeatureCollection's features are a list", field="file")
    elif kind == "Feature":
        features = [doc]
    elif isinstance(kind, str):
        features = [{"type": "Feature", "geometry": doc, "properties": {}}]
    else:
        raise ValidationFailed('the file is not GeoJSON: no "type" at its top', field="file")
    _check_count(len(features))
    found = []
    for i, feature in enumerate(features, start=1):
        if not isinstance(feature, dict):
            found.append(
                Candidate(i, None, None, None, None, "?", ("feature_shape", "not a Feature"))
            )
            continue
        given = feature.get("properties")
        props: dict[str, Any] = given if isinstance(given, dict) else {}
        geometry, source, refusal = _geojson_geometry(feature.get("geometry"))
        area, area_refusal = _geojson_area(props)
        found.append(
            Candidate(
                index=i,
                code=_text_or_none(_first(props, CODE_KEYS)),
                farm_code=_text_or_none(_first(props, FARM_KEYS)),
                geometry=geometry,
                area_ha=area,
                source=source,
                refusal=refusal or area_refusal,
            )
        )
    return found


# --- KML and GPX -------------------------------------------------------------------------------


def _xml(data: bytes, what: str) -> ET.Element:
    # a document type may declare entities (billion laughs, external files): KML and GPX
    # need none, so one is refused before parsing
    if re.search(rb"<!(DOCTYPE|ENTITY)", data[:65536], re.IGNORECASE):
        raise ValidationFailed(f"the {what} file declares a DOCTYPE or entities", field="file")
    try:
        return ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValidationFailed(f"the file is not {what}: {exc}", field="file") from None


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> Iterator[ET.Element]:
    return (e for e in element if _local(e.tag) == name)


def _child_text(element: ET.Element, name: str) -> str | None:
    for e in _children(element, name):
        if e.text and e.text.strip():
            return e.text.strip()
    return None


def _descendants(element: ET.Element, names: Iterable[str]) -> list[ET.Element]:
    wanted = set(names)
    return [e for e in element.iter() if _local(e.tag) in wanted]


def _text_area(value: str | None) -> tuple[float | None, tuple[str, str] | None]:
    if value is None:
        return None, None
    try:
        area = float(value.replace(",", "."))
    except ValueError:
        return None, ("area_not_a_number", f"Area {value!r} is not a number of hectares")
    return area, None


def _kml_coordinates(element: ET.Element | None) -> list[list[float]] | None:
    if element is None:
        return None
    text = _child_text(element, "coordinates")
    if text is None:
        return None
    points = []
    for chunk in text.split():
        parts = chunk.split(",")
        try:
            points.append([float(parts[0]), float(parts[1])])
        except (IndexError, ValueError):
            return None
    return points


def _kml_ring(boundary: ET.Element) -> list[list[float]] | None:
    ring = next(_children(boundary, "LinearRing"), None)
    return _kml_coordinates(ring)


def _kml_geometry(
    placemark: ET.Element,
) -> tuple[dict[str, Any] | None, str, tuple[str, str] | None]:
    shapes = _descendants(placemark, ("Point", "Polygon", "LineString", "Track", "MultiGeometry"))
    if not shapes:
        return None, "?", ("geometry_missing", "the Placemark has no Point, Polygon or walk")
    if any(_local(s.tag) == "MultiGeometry" for s in shapes) or len(shapes) > 1:
        return (
            None,
            "MultiGeometry",
            (
                "geometry_type",
                "the Placemark holds several geometries: give each plot a Placemark of its own",
            ),
        )
    (shape,) = shapes
    kind = _local(shape.tag)
    bad = ("position_shape", f'the {kind}\'s coordinates are not "longitude,latitude" tuples')
    if kind == "Point":
        points = _kml_coordinates(shape)
        if not points or len(points) != 1:
            return None, kind, bad
        return {"type": "Point", "coordinates": points[0]}, kind, None
    if kind == "Polygon":
        outer = next(_children(shape, "outerBoundaryIs"), None)
        rings = [_kml_ring(outer)] if outer is not None else [None]
        rings += [_kml_ring(b) for b in _children(shape, "innerBoundaryIs")]
        if any(r is None for r in rings):
            return None, kind, bad
        return {"type": "Polygon", "coordinates": [r for r in rings if r is not None]}, kind, None
    if kind == "LineString":
        points = _kml_coordinates(shape)
        source = "GPS walk (KML LineString)"
    else:  # gx:Track: <gx:coord>lon lat alt</gx:coord>
        source = "GPS walk (KML gx:Track)"
        points = []
        for coord in _children(shape, "coord"):
            parts = (coord.text or "").split()
            try:
                points.append([float(parts[0]), float(parts[1])])
            except (IndexError, ValueError):
                return None, source, bad
    if not points:
        return None, source, bad
    polygon, why = walk_polygon(points)
    return polygon, source, None if why is None else ("walk_not_closed", why)


def _kml_data(placemark: ET.Element) -> dict[str, str]:
    """ExtendedData of a Placemark: <Data name="..."><value>...</value></Data> and
    <SchemaData><SimpleData name="...">...</SimpleData></SchemaData>."""
    data: dict[str, str] = {}
    for d in _descendants(placemark, ("Data",)):
        value = _child_text(d, "value")
        if d.get("name") and value is not None:
            data[str(d.get("name"))] = value
    for d in _descendants(placemark, ("SimpleData",)):
        if d.get("name") and d.text and d.text.strip():
            data[str(d.get("name"))] = d.text.strip()
    return data


def parse_kml(data: bytes) -> list[Candidate]:
    """The plots of a KML document: one per Placemark."""
    root = _xml(data, "KML")
    if _local(root.tag) != "kml":
        raise ValidationFailed("the file is not KML: its root element is not <kml>", field="file")
    placemarks = _descendants(root, ("Placemark",))
    _check_count(len(placemarks))
    found = []
    for i, placemark in enumerate(placemarks, start=1):
        extended = _kml_data(placemark)
        geometry, source, refusal = _kml_geometry(placemark)
        area, area_refusal = _text_area(_first(extended, AREA_KEYS))
        found.append(
            Candidate(
                index=i,
                code=_text_or_none(_first(extended, CODE_KEYS)) or _child_text(placemark, "name"),
                farm_code=_text_or_none(_first(extended, FARM_KEYS)),
                geometry=geometry,
                area_ha=area,
                source=source,
                refusal=refusal or area_refusal,
            )
        )
    return found


def _gpx_point(element: ET.Element) -> list[float] | None:
    try:
        return [float(element.get("lon", "")), float(element.get("lat", ""))]
    except ValueError:
        return None


def _gpx_extensions(element: ET.Element) -> dict[str, str]:
    found: dict[str, str] = {}
    for ext in _children(element, "extensions"):
        for e in ext.iter():
            if e is not ext and e.text and e.text.strip():
                found.setdefault(_local(e.tag), e.text.strip())
    return found


def parse_gpx(data: bytes) -> list[Candidate]:
    """The plots of a GPX file: each track (its segments joined, in order) and route is a
    walk around a plot; each waypoint a Point (its area in <extensions><Area>)."""
    root = _xml(data, "GPX")
    if _local(root.tag) != "gpx":
        raise ValidationFailed("the file is not GPX: its root element is not <gpx>", field="file")
    items = [e for e in root if _local(e.tag) in ("wpt", "rte", "trk")]
    _check_count(len(items))
    found = []
    for i, item in enumerate(items, start=1):
        kind = _local(item.tag)
        ext = _gpx_extensions(item)
        area, area_refusal = _text_area(_first(ext, AREA_KEYS))
        code = _text_or_none(_first(ext, CODE_KEYS)) or _child_text(item, "name")
        refusal: tuple[str, str] | None = None
        geometry: dict[str, Any] | None
        if kind == "wpt":
            point = _gpx_point(item)
            geometry = None if point is None else {"type": "Point", "coordinates": point}
            source = "GPX waypoint"
            if point is None:
                refusal = ("position_shape", "the waypoint's lat and lon are not numbers")
        else:
            source = "GPS walk (GPX track)" if kind == "trk" else "GPS walk (GPX route)"
            names = ("trkpt",) if kind == "trk" else ("rtept",)
            points = [_gpx_point(p) for p in _descendants(item, names)]
            if any(p is None for p in points):
                geometry, refusal = (
                    None,
                    ("position_shape", "a point's lat and lon are not numbers"),
                )
            else:
                geometry, why = walk_polygon([p for p in points if p is not None])
                refusal = None if why is None else ("walk_not_closed", why)
        found.append(
            Candidate(
                index=i,
                code=code,
                farm_code=_text_or_none(_first(ext, FARM_KEYS)),
                geometry=geometry,
                area_ha=area,
                source=source,
                refusal=refusal or area_refusal,
            )
        )
    return found


def _check_count(n: int) -> None:
    if n == 0:
        raise ValidationFailed(
            "the file holds no plot (no feature, placemark, track or waypoint)", field="file"
        )
    if n > MAX_PLOTS:
        raise ValidationFailed(
            f"the file holds {n} plots; at most {MAX_PLOTS} per file", field="file"
        )


def parse_plot_file(
    data: bytes, *, content_type: str | None = None, filename: str | None = None
) -> list[Candidate]:
    """The plots a GeoJSON, KML or GPX file describes (detect_format); ValidationFailed
    when the file is none of them or holds no plot."""
    fmt = detect_format(data, content_type, filename)
    return {"geojson": parse_geojson, "kml": parse_kml, "gpx": parse_gpx}[fmt](data)


# --- the rules ----------------------------------------------------------------------------------


def plot_area(candidate: Candidate) -> float | None:
    """The area to register: the file's, else a Polygon's measured one (to the m²)."""
    if candidate.area_ha is not None:
        return candidate.area_ha
    if candidate.geometry is not None and candidate.geometry["type"] == "Polygon":
        try:
            return round(eudr.measured_area_ha(candidate.geometry), 4)
        except (TypeError, ValueError, IndexError):
            return None
    return None


def check_candidates(candidates: Sequence[Candidate]) -> list[dict[str, Any]]:
    """The refusals of the file's plots by the rules that need no database: a code, an
    area, the geometry by the registry's rules and the EU's (eudr.check_plot)."""
    refusals = []
    seen: dict[str, int] = {}
    for c in candidates:
        if c.refusal is not None:
            refusals.append(_refusal(c, *c.refusal))
            continue
        if c.code is None:
            refusals.append(
                _refusal(c, "plot_code_missing", "no plot code (property PlotCode, or a name)")
            )
            continue
        if not CODE.match(c.code):
            refusals.append(
                _refusal(
                    c,
                    "plot_code_invalid",
                    f"plot code {c.code!r}: 1 to 40 letters, digits, '.', '_' or '-',"
                    " starting with a letter or digit",
                )
            )
            continue
        if c.code in seen:
            refusals.append(
                _refusal(c, "duplicate_plot_code", f"feature {seen[c.code]} has the same code")
            )
            continue
        seen[c.code] = c.index
        assert c.geometry is not None  # a candidate without one carries its refusal
        try:  # the shape first: a crossed ring has no area to speak of
            validate_plot_geometry(c.geometry)
        except RuleViolation as exc:
            refusals.append(_refusal(c, exc.rule, exc.message))
            continue
        area = plot_area(c)
        if c.geometry is not None and c.geometry["type"] == "Point" and area is None:
            refusals.append(
                _refusal(
                    c,
                    "point_area_missing",
                    "a Point needs the plot's area in ha (property Area, a number): the EU"
                    " counts a Point without one as 4 ha",
                )
            )
            continue
        if area is None or not eudr.AREA_MIN_HA <= area <= AREA_MAX_HA:
            refusals.append(
                _refusal(
                    c,
                    "area_out_of_range",
                    f"area {area} ha: a plot is {eudr.AREA_MIN_HA} to {AREA_MAX_HA:g} ha",
                )
            )
            continue
        try:
            validate_plot_geometry(c.geometry, area)
            lon, lat = geometry_centroid(c.geometry)
            eudr.check_plot(
                {
                    "code": c.code,
                    "geometry": c.geometry,
                    "area_ha": area,
                    "centroid_lon": lon,
                    "centroid_lat": lat,
                }
            )
        except (RuleViolation, ValidationFailed) as exc:
            rule = exc.rule if isinstance(exc, RuleViolation) else "geometry_invalid"
            refusals.append(_refusal(c, rule, exc.message))
    return refusals


def _refuse(refusals: list[dict[str, Any]], total: int) -> RuleViolation:
    listed = "; ".join(f"{r['feature']}: {r['rule']}: {r['message']}" for r in refusals[:5])
    more = f"; and {len(refusals) - 5} more" if len(refusals) > 5 else ""
    return RuleViolation(
        "plot_file",
        f"{len(refusals)} of {total} plots refused, none registered: {listed}{more}",
        refusals=refusals,
        plots=total,
    )


# --- the registry ---------------------------------------------------------------------------


def _same(stored: Row, geometry: dict[str, Any], area: float) -> bool:
    return json.dumps(stored["geometry"], sort_keys=True) == json.dumps(
        geometry, sort_keys=True
    ) and Decimal(stored["area_ha"]) == Decimal(str(round(area, 4)))


def update_plot_geometry(
    conn: DbConn,
    cooperative_id: UUID,
    plot_id: UUID,
    geometry: dict[str, Any],
    area_ha: float,
    *,
    keys: KeyRing,
) -> Row:
    """A registered plot's new outline and area, checked as registry.create_plot checks
    them, recorded as the plot's new registry version."""
    validate_plot_geometry(geometry, area_ha)
    lon, lat = geometry_centroid(geometry)
    row = q.one(
        conn,
        SQL["plot_files_update_plot"],
        {
            "id": plot_id,
            "cooperative_id": cooperative_id,
            "geometry": Jsonb(geometry),
            "area_ha": area_ha,
            "centroid_lon": lon,
            "centroid_lat": lat,
        },
    )
    if row is None:
        raise NotFound(f"plot {plot_id} does not exist in this cooperative")
    event = record_versions(conn, keys, cooperative_id, "plot", [plot_id])
    return {**row, "event_seq": event["seq"]}


def import_plots(
    conn: DbConn,
    cooperative_id: UUID,
    data: bytes,
    *,
    keys: KeyRing,
    content_type: str | None = None,
    filename: str | None = None,
    farm_code: str | None = None,
) -> dict[str, Any]:
    """Register the file's plots in the cooperative, or update those registered with the
    same code (its farm kept), all or none: {"created", "updated", "unchanged",
    "plots": [{"feature", "code", "plot_id", "farm_id", "action", "source",
    "geometry_type", "area_ha", "export_kind"}]}. RuleViolation "plot_file" listing every
    refused plot ({"feature", "index", "code", "rule", "message"}); NotFound when
    `farm_code` (the farm of plots that name none) is not one of the cooperative's."""
    candidates = parse_plot_file(data, content_type=content_type, filename=filename)
    refusals = check_candidates(candidates)
    ok = [c for c in candidates if c.index not in {r["index"] for r in refusals}]
    codes = sorted({c.farm_code for c in ok if c.farm_code} | ({farm_code} if farm_code else set()))
    farms = {
        r["code"]: r["id"]
        for r in q.rows(
            conn, SQL["plot_files_farms"], {"cooperative_id": cooperative_id, "codes": codes}
        )
    }
    if farm_code is not None and farm_code not in farms:
        raise NotFound(f"farm {farm_code!r} does not exist in your cooperative", farm=farm_code)
    existing = {
        r["code"]: r
        for r in q.rows(
            conn,
            SQL["plot_files_plots"],
            {"cooperative_id": cooperative_id, "codes": [c.code for c in ok]},
        )
    }
    plans: list[tuple[Candidate, UUID, Row | None]] = []
    for c in ok:
        assert c.code is not None
        stored = existing.get(c.code)
        if c.farm_code is not None and c.farm_code not in farms:
            refusals.append(
                _refusal(
                    c, "farm_unknown", f"farm {c.farm_code!r} is not one of your cooperative's"
                )
            )
            continue
        farm_id = farms.get(c.farm_code or farm_code or "")
        if stored is not None:
            if c.farm_code is not None and farm_id != stored["farm_id"]:
                refusals.append(
                    _refusal(
                        c,
                        "plot_farm_mismatch",
                        f"plot {c.code} is registered to another farm; a file does not move"
                        " plots between farms",
                    )
                )
                continue
            plans.append((c, stored["farm_id"], stored))
        elif farm_id is None:
            refusals.append(
                _refusal(
                    c,
                    "farm_missing",
                    "a new plot needs its farm: the property FarmCode, or the request's farm",
                )
            )
        else:
            plans.append((c, farm_id, None))
    if refusals:
        raise _refuse(sorted(refusals, key=lambda r: r["index"]), len(candidates))
    done = []
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for c, farm_id, stored in plans:
        assert c.code is not None and c.geometry is not None
        area = plot_area(c)
        assert area is not None
        if stored is None:
            row = registry.create_plot(
                conn, cooperative_id, farm_id, c.code, c.geometry, area, keys=keys
            )
            action = "created"
        elif _same(stored, c.geometry, area):
            row, action = stored, "unchanged"
        else:
            row = update_plot_geometry(
                conn, cooperative_id, stored["id"], c.geometry, area, keys=keys
            )
            action = "updated"
        counts[action] += 1
        done.append(
            {
                "feature": c.label,
                "code": c.code,
                "plot_id": row["id"],
                "farm_id": farm_id,
                "action": action,
                "source": c.source,
                "geometry_type": c.geometry["type"],
                "area_ha": round(area, 4),
                "export_kind": eudr.export_kind({"geometry": c.geometry, "area_ha": area}),
            }
        )
    return {**counts, "plots": done}
