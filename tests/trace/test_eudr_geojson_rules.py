"""The EU's GeoJSON rules (RULES.md, file description 1.3), one by one, as trace/eudr.py
applies them to `export eudr` and to each producer of a due diligence statement: the
6-decimal cut and what it may break, holes, the 4-ha rule, the type of Area and the case
of the property names."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import shapely
import shapely.geometry

from coffeetrace.errors import RuleViolation
from coffeetrace.trace import eudr, lots, registry
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world, square
from tests.trace.builders import insert_harvest

LON, LAT = 108.05, 12.68


def plot(geometry: dict[str, Any], area_ha: float | Decimal, **extra: Any) -> dict[str, Any]:
    lon, lat = (
        geometry["coordinates"]
        if geometry["type"] == "Point"
        else (
            sum(p[0] for p in geometry["coordinates"][0][:-1])
            / (len(geometry["coordinates"][0]) - 1),
            sum(p[1] for p in geometry["coordinates"][0][:-1])
            / (len(geometry["coordinates"][0]) - 1),
        )
    )
    return {
        "code": "P-7",
        "geometry": geometry,
        "area_ha": area_ha,
        "centroid_lon": lon,
        "centroid_lat": lat,
        "commune": "Ea Tu",
        "district": "Buôn Ma Thuột",
        "farm_district": None,
        "province": "Đắk Lắk",
        "country": "vn ",
        **extra,
    }


def ring_square(lon: float, lat: float, side: float) -> list[list[float]]:
    return square(lon, lat, side)["coordinates"][0]


# --- [longitude, latitude], 6 decimals after the cut ------------------------------------


def test_coordinates_are_cut_not_rounded() -> None:
    assert eudr.cut(108.0412139) == 108.041213  # rounding would give ...214
    assert eudr.cut(108.041213) == 108.041213  # float arithmetic would lose the last digit
    assert eudr.cut(-73.9999999) == -73.999999  # toward zero
    assert eudr.cut(12.5) == 12.5
    assert eudr.cut(12.68 + 0.03) == 12.71  # float noise (12.709999999999999) is no digit
    assert eudr.cut_position([108.0412139, 12.6678429, 512.0]) == [108.041213, 12.667842]


def test_text_has_exactly_six_decimals_in_lon_lat_order() -> None:
    features = eudr.plot_features(plot({"type": "Point", "coordinates": [LON, LAT]}, 1), "Coop")
    text = eudr.dumps({"type": "FeatureCollection", "features": features}, compact=True)
    assert '"coordinates":[108.050000,12.680000]' in text  # a flat Point, [lon, lat]
    assert json.loads(text)["features"][0]["geometry"]["coordinates"] == [LON, LAT]


def test_adjacent_vertices_that_meet_after_the_cut_are_dropped() -> None:
    ring = ring_square(LON, LAT, 0.03)
    ring.insert(1, [LON + 0.0000004, LAT])  # 4 cm from the corner: the same after the cut
    (polygon,) = eudr.eu_polygons({"type": "Polygon", "coordinates": [ring]}, "plot P-7")
    assert len(polygon) == 5 and len({tuple(p) for p in polygon[:-1]}) == 4
    assert polygon[0] == polygon[-1]


def test_vertices_that_coincide_after_the_cut_are_refused() -> None:
    # a slot 0.4 m wide: its two sides fall on one line after the cut
    ring = [
        [108.0, 12.0],
        [108.00002, 12.0],
        [108.00002, 12.00002],
        [108.0000109, 12.00002],
        [108.0000109, 12.000005],
        [108.0000105, 12.000005],
        [108.0000105, 12.00002],
        [108.0, 12.00002],
        [108.0, 12.0],
    ]
    assert shapely.Polygon(ring).is_valid
    with pytest.raises(RuleViolation) as exc:
        eudr.cut_ring(ring, "plot P-7")
    assert exc.value.rule == "cut_duplicate_vertex"
    assert "plot P-7" in exc.value.message


def test_a_ring_the_cut_makes_cross_itself_is_refused() -> None:
    ring = [
        [108.0, 12.0],
        [108.00002, 12.0],
        [108.00002, 12.00002],
        [108.0000102, 12.00002],
        [108.0000078, 12.0000089],
        [108.0000082, 12.0000112],
        [108.000009, 12.00002],
        [108.0, 12.00002],
        [108.0, 12.0],
    ]
    assert shapely.Polygon(ring).is_valid
    with pytest.raises(RuleViolation) as exc:
        eudr.cut_ring(ring, "plot P-7")
    assert exc.value.rule == "cut_self_intersection"


def test_a_ring_the_cut_collapses_is_refused() -> None:
    tiny = [[LON, LAT], [LON + 4e-7, LAT], [LON + 4e-7, LAT + 4e-7], [LON, LAT]]
    with pytest.raises(RuleViolation) as exc:
        eudr.cut_ring(tiny, "plot P-7")
    assert exc.value.rule == "cut_collapsed"


def test_a_plot_the_cut_breaks_is_a_problem_of_the_page_status() -> None:
    slot = [
        [108.0, 12.0],
        [108.03, 12.0],
        [108.03, 12.03],
        [108.0150009, 12.03],
        [108.0150009, 12.01],
        [108.0150005, 12.01],
        [108.0150005, 12.03],
        [108.0, 12.03],
        [108.0, 12.0],
    ]
    status = eudr.plots_status([plot({"type": "Polygon", "coordinates": [slot]}, 900)])
    assert status["ok"] is False
    (problem,) = status["problems"]
    assert "coincide" in problem["problem"]


# --- no holes ------------------------------------------------------------------------------


def test_a_plot_with_a_hole_is_sent_as_hole_free_polygons() -> None:
    outer = ring_square(LON, LAT, 0.03)  # about 1,000 ha
    hole = list(reversed(ring_square(LON + 0.01, LAT + 0.01, 0.01)))
    geometry = {"type": "Polygon", "coordinates": [outer, hole]}
    features = eudr.plot_features(plot(geometry, 900), "Coop")
    assert len(features) >= 2
    pieces = [shapely.geometry.shape(f["geometry"]) for f in features]
    for f, piece in zip(features, pieces, strict=True):
        assert len(f["geometry"]["coordinates"]) == 1  # an outer ring only
        assert piece.is_valid and piece.exterior.is_ccw
    # together they cover the plot without its hole, and no more
    whole = shapely.Polygon(outer, [hole])
    union = shapely.union_all(pieces)
    assert union.symmetric_difference(whole).area < 1e-9 * whole.area
    assert sum(p.area for p in pieces) == pytest.approx(whole.area, rel=1e-6)
    places = [f["properties"]["ProductionPlace"] for f in features]
    assert places[0].endswith(f"(part 1 of {len(features)})")


def test_a_plot_with_two_holes_loses_both() -> None:
    outer = ring_square(LON, LAT, 0.04)
    holes = [
        list(reversed(ring_square(LON + 0.005, LAT + 0.005, 0.005))),
        list(reversed(ring_square(LON + 0.025, LAT + 0.02, 0.005))),
    ]
    rings = eudr.eu_polygons({"type": "Polygon", "coordinates": [outer, *holes]}, "plot P-7")
    pieces = [shapely.Polygon(r) for r in rings]
    assert all(p.is_valid for p in pieces)
    whole = shapely.Polygon(outer, holes)
    assert shapely.union_all(pieces).symmetric_difference(whole).area < 1e-9 * whole.area


# --- polygons above 4 ha, points with Area up to it ----------------------------------


def test_four_hectares_is_the_last_point() -> None:
    geometry = square(LON, LAT, 0.0015)  # 2.6 ha measured
    at_four = eudr.plot_features(plot(geometry, 4.0), "Coop")
    assert [f["geometry"]["type"] for f in at_four] == ["Point"]
    assert at_four[0]["properties"]["Area"] == 4.0
    above = eudr.plot_features(plot(geometry, 4.0001), "Coop")
    assert [f["geometry"]["type"] for f in above] == ["Polygon"]
    assert "Area" not in above[0]["properties"]


def test_a_polygon_measuring_more_than_four_hectares_stays_a_polygon() -> None:
    geometry = square(LON, LAT, 0.003)  # about 10.6 ha, declared 3
    assert eudr.measured_area_ha(geometry) > 4
    (feature,) = eudr.plot_features(plot(geometry, 3.0), "Coop")
    assert feature["geometry"]["type"] == "Polygon"


def test_a_point_above_four_hectares_is_refused() -> None:
    with pytest.raises(RuleViolation) as exc:
        eudr.plot_features(plot({"type": "Point", "coordinates": [LON, LAT]}, 4.5), "Coop")
    assert exc.value.rule == "polygon_required"


def test_the_point_of_a_small_polygon_lies_on_it() -> None:
    # a crescent (U-shaped) plot: its vertex mean lies in the gap, off the plot
    u = [
        [LON, LAT],
        [LON + 0.0012, LAT],
        [LON + 0.0012, LAT + 0.0012],
        [LON + 0.0009, LAT + 0.0012],
        [LON + 0.0009, LAT + 0.0003],
        [LON + 0.0003, LAT + 0.0003],
        [LON + 0.0003, LAT + 0.0012],
        [LON, LAT + 0.0012],
        [LON, LAT],
    ]
    geometry = {"type": "Polygon", "coordinates": [u]}
    p = plot(geometry, 1.0, centroid_lon=LON + 0.0006, centroid_lat=LAT + 0.0008)
    assert not shapely.Polygon(u).covers(shapely.Point(p["centroid_lon"], p["centroid_lat"]))
    (feature,) = eudr.plot_features(p, "Coop")
    lon, lat = feature["geometry"]["coordinates"]
    assert shapely.Polygon(u).buffer(1e-6).covers(shapely.Point(lon, lat))
    # a polygon whose centroid is on it keeps the stored centroid
    on = plot(square(LON, LAT), 1.0)
    (kept,) = eudr.plot_features(on, "Coop")
    assert kept["geometry"]["coordinates"] == eudr.cut_position(
        [on["centroid_lon"], on["centroid_lat"]]
    )


# --- Area is a number; property names in the EU's case ------------------------------


def test_area_is_a_json_number_in_range() -> None:
    (feature,) = eudr.plot_features(
        plot({"type": "Point", "coordinates": [LON, LAT]}, Decimal("0.0001")), "Coop"
    )
    area = feature["properties"]["Area"]
    assert type(area) is float and area == 0.0001
    text = eudr.dumps({"type": "FeatureCollection", "features": [feature]})
    assert re.search(r'"Area": 0\.0001[,}]', text)  # a number, not "0.0001"
    with pytest.raises(RuleViolation) as exc:
        eudr.point_area({"code": "P-7", "area_ha": 0.00004})
    assert exc.value.rule == "point_area"


def test_property_names_are_the_eus_in_their_case() -> None:
    features = [
        *eudr.plot_features(plot({"type": "Point", "coordinates": [LON, LAT]}, 1), "Coop"),
        *eudr.plot_features(plot(square(LON, LAT, 0.03), 900), "Coop"),
    ]
    for f in features:
        assert set(f["properties"]) <= set(eudr.EU_PROPERTIES)
        assert {"ProducerName", "ProducerCountry", "ProductionPlace"} <= set(f["properties"])
        assert f["properties"]["ProducerCountry"] == "VN"  # ISO alpha-2, upper case
        assert f["properties"]["ProductionPlace"].startswith("P-7, Ea Tu, Buôn Ma Thuột")
    assert "Area" in features[0]["properties"] and "Area" not in features[1]["properties"]
    text = eudr.dumps({"type": "FeatureCollection", "features": features})
    for wrong in ("productionplace", "producerName", "area", "AREA"):
        assert f'"{wrong}"' not in text


def test_extra_properties_come_after_the_eus() -> None:
    (feature,) = eudr.plot_features(
        plot({"type": "Point", "coordinates": [LON, LAT]}, 1), "Coop", {"PlotCode": "P-7"}
    )
    assert list(feature["properties"]) == [*eudr.EU_PROPERTIES, "PlotCode"]


# --- export eudr follows the same rules -------------------------------------------------


def test_export_eudr_splits_a_holed_plot_and_cuts_coordinates(
    conn: psycopg.Connection, keys: KeyRing
) -> None:
    world = make_world(conn, keys=keys, trees=1)
    coop = world.coop["id"]
    outer = [[p[0] + 0.00000019, p[1]] for p in ring_square(LON, LAT, 0.03)]
    hole = list(reversed(ring_square(LON + 0.01, LAT + 0.01, 0.01)))
    holed = registry.create_plot(
        conn,
        coop,
        world.farm["id"],
        "P-HOLE",
        {"type": "Polygon", "coordinates": [outer, hole]},
        800.0,
        keys=keys,
    )
    tree = registry.create_tree(
        conn, coop, holed["id"], "T-H", keys=keys, lon=LON + 0.001, lat=LAT + 0.001
    )
    h = insert_harvest(conn, tree, 10)
    lot = lots.build_cherry_lot(conn, coop, code="CH-H", harvest_ids=[h], keys=keys)
    collection = eudr.export_eudr(conn, lot["id"])
    features = [f for f in collection["features"] if f["properties"]["PlotCode"] == "P-HOLE"]
    assert len(features) >= 2
    for f in features:
        assert f["geometry"]["type"] == "Polygon" and len(f["geometry"]["coordinates"]) == 1
        for lon, lat in f["geometry"]["coordinates"][0]:
            assert lon == eudr.cut(lon) and lat == eudr.cut(lat)
    assert {f["properties"]["Share"] for f in features} == {1.0}
    text = eudr.dumps(collection)
    numbers = re.findall(r"-?\d+\.\d+", text.split('"properties"')[0])
    assert numbers and all(len(n.split(".")[1]) == 6 for n in numbers)
