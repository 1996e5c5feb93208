"""Plot geometry rules (EUDR) at registration, and point-in-polygon."""

from __future__ import annotations

import psycopg
import pytest

from coffeetrace.errors import RuleViolation
from coffeetrace.trace import geometry, registry
from coffeetrace.trace.keys import KeyRing
from tests.factories import make_world, square

LON, LAT = 108.05, 12.68


def poly(*ring: tuple[float, float]) -> dict:
    return {"type": "Polygon", "coordinates": [[list(p) for p in ring]]}


@pytest.mark.parametrize(
    "geom, rule",
    [
        (
            poly((LON, LAT), (LON + 0.001, LAT), (LON + 0.001, LAT + 0.001), (LON, LAT + 0.001)),
            "polygon_closed",
        ),
        (poly((LON, LAT), (LON + 0.001, LAT), (LON, LAT)), "polygon_points"),
        # a bow tie: edges 1 and 3 cross
        (
            poly(
                (LON, LAT),
                (LON + 0.001, LAT + 0.001),
                (LON + 0.001, LAT),
                (LON, LAT + 0.001),
                (LON, LAT),
            ),
            "polygon_self_intersection",
        ),
        (
            poly((LON, 95.0), (LON + 0.001, 95.0), (LON + 0.001, 95.001), (LON, 95.0)),
            "coordinate_bounds",
        ),
        (
            poly((181.0, LAT), (181.001, LAT), (181.001, LAT + 0.001), (181.0, LAT)),
            "coordinate_bounds",
        ),
        # latitude and longitude swapped: 108 is no latitude
        (
            poly((LAT, LON), (LAT + 0.001, LON), (LAT + 0.001, LON + 0.001), (LAT, LON)),
            "coordinate_bounds",
        ),
        # within bounds, but a "plot" a degree (about 110 km) wide is a typing error
        (poly((LON, LAT), (LON + 1, LAT), (LON + 1, LAT + 1), (LON, LAT)), "coordinate_sanity"),
        ({"type": "Point", "coordinates": [0, 0]}, "coordinate_sanity"),
        ({"type": "Point", "coordinates": ["108", "12"]}, "position_shape"),
        ({"type": "LineString", "coordinates": [[LON, LAT], [LON + 1, LAT]]}, "geometry_type"),
        # all on one line: no area
        (poly((LON, LAT), (LON + 0.001, LAT), (LON + 0.002, LAT), (LON, LAT)), "polygon_area"),
        # a spike folding back over an edge
        (
            poly(
                (LON, LAT),
                (LON + 0.002, LAT),
                (LON + 0.002, LAT + 0.001),
                (LON + 0.001, LAT),
                (LON + 0.001, LAT + 0.002),
                (LON, LAT + 0.002),
                (LON, LAT),
            ),
            "polygon_self_intersection",
        ),
    ],
)
def test_invalid_geometry_is_refused_at_registration(
    conn: psycopg.Connection, geom: dict, rule: str, keys: KeyRing
) -> None:
    w = make_world(conn, keys=keys, trees=0)
    with pytest.raises(RuleViolation) as exc:
        registry.create_plot(conn, w.coop["id"], w.farm["id"], "BAD", geom, 1.0, keys=keys)
    assert exc.value.rule == rule
    assert exc.value.status_code == 422
    assert exc.value.message


def test_point_only_up_to_four_hectares(conn: psycopg.Connection, keys: KeyRing) -> None:
    w = make_world(conn, keys=keys, trees=0)
    point = {"type": "Point", "coordinates": [LON, LAT]}
    registry.create_plot(conn, w.coop["id"], w.farm["id"], "SMALL", point, 4.0, keys=keys)
    with pytest.raises(RuleViolation) as exc:
        registry.create_plot(conn, w.coop["id"], w.farm["id"], "LARGE", point, 4.5, keys=keys)
    assert exc.value.rule == "polygon_required"
    big = registry.create_plot(
        conn, w.coop["id"], w.farm["id"], "LARGE", square(LON, LAT, 0.02), 4.5, keys=keys
    )
    assert big["centroid_lon"] == pytest.approx(LON + 0.01)


def test_valid_polygons_pass_including_holes() -> None:
    geometry.validate_plot_geometry(square(LON, LAT))
    outer = [[LON, LAT], [LON + 0.01, LAT], [LON + 0.01, LAT + 0.01], [LON, LAT + 0.01], [LON, LAT]]
    hole = [
        [LON + 0.004, LAT + 0.004],
        [LON + 0.006, LAT + 0.004],
        [LON + 0.006, LAT + 0.006],
        [LON + 0.004, LAT + 0.004],
    ]
    with_hole = {"type": "Polygon", "coordinates": [outer, hole]}
    geometry.validate_plot_geometry(with_hole)
    assert geometry.point_in_polygon(LON + 0.002, LAT + 0.002, with_hole)
    assert not geometry.point_in_polygon(LON + 0.0055, LAT + 0.0045, with_hole)
    assert not geometry.point_in_polygon(LON + 0.02, LAT, with_hole)
    assert geometry.point_in_polygon(LON, LAT + 0.005, with_hole)  # on the boundary


def test_area_of_a_small_square() -> None:
    ring = [(p[0], p[1]) for p in square(LON, LAT, 0.001)["coordinates"][0]]
    # 0.001 deg is about 111 m north-south and 108.5 m east-west at 12.68 N
    assert geometry.ring_area_m2(ring) == pytest.approx(111.2 * 108.5, rel=0.01)
