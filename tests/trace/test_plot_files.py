"""Plots from GeoJSON, KML and GPX files (trace/plot_files.py): registered or updated
when every plot passes the registry's and the EU's rules, refused otherwise with each
refusal naming the feature and the rule, and nothing written."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from coffeetrace.errors import NotFound, RuleViolation, ValidationFailed
from coffeetrace.trace import plot_files, registry_versions
from coffeetrace.trace.keys import KeyRing
from tests.factories import World, make_world, square

LON, LAT = 108.05, 12.68


@pytest.fixture
def world(conn: psycopg.Connection, keys: KeyRing) -> World:
    w = make_world(conn, keys=keys, trees=1)
    conn.commit()
    return w


def feature(geometry: dict[str, Any], **props: Any) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": props}


def geojson(*features: dict[str, Any]) -> bytes:
    return json.dumps({"type": "FeatureCollection", "features": list(features)}).encode()


def plot_count(conn: psycopg.Connection, world: World) -> int:
    row = conn.execute(
        "select count(*) as n from plots where cooperative_id = %s", (world.coop["id"],)
    ).fetchone()
    return int(row["n"])


def refused(conn: psycopg.Connection, world: World, keys: KeyRing, data: bytes, **kw: Any):
    before = plot_count(conn, world)
    with pytest.raises(RuleViolation) as exc:
        plot_files.import_plots(conn, world.coop["id"], data, keys=keys, **kw)
    assert exc.value.rule == "plot_file"
    assert plot_count(conn, world) == before  # all or nothing
    return exc.value.details["refusals"]


# --- GeoJSON --------------------------------------------------------------------------------


def test_geojson_registers_and_updates_plots(
    conn: psycopg.Connection, world: World, keys: KeyRing
) -> None:
    farm = world.farm["code"]
    data = geojson(
        feature(square(LON + 0.01, LAT, 0.03), PlotCode="P-NEW", FarmCode=farm),
        feature(
            {"type": "Point", "coordinates": [LON + 0.02, LAT, 480.0]}, PlotCode="P-PT", Area=1.5
        ),
        # the world's plot P-1, moved: a new outline, a new registry version
        feature(square(LON, LAT + 0.001), PlotCode="P-1", Area=1.2),
    )
    before = world.plot["event_seq"]
    result = plot_files.import_plots(
        conn,
        world.coop["id"],
        data,
        keys=keys,
        content_type="application/geo+json",
        farm_code=farm,
    )
    assert (result["created"], result["updated"], result["unchanged"]) == (2, 1, 0)
    by_code = {p["code"]: p for p in result["plots"]}
    assert by_code["P-NEW"]["export_kind"] == "Polygon" and by_code["P-NEW"]["area_ha"] > 900
    assert by_code["P-PT"]["geometry_type"] == "Point" and by_code["P-PT"]["area_ha"] == 1.5
    assert by_code["P-1"]["action"] == "updated"
    stored = conn.execute(
        "select geometry, area_ha, event_seq from plots where id = %s", (world.plot["id"],)
    ).fetchone()
    assert stored["geometry"] == square(LON, LAT + 0.001) and float(stored["area_ha"]) == 1.2
    assert stored["event_seq"] != before
    point = conn.execute(
        "select geometry from plots where cooperative_id = %s and code = 'P-PT'",
        (world.coop["id"],),
    ).fetchone()
    assert point["geometry"] == {"type": "Point", "coordinates": [LON + 0.02, LAT]}  # no altitude
    ids = [p["plot_id"] for p in result["plots"]]
    assert registry_versions.verify_registry(conn, plot_ids=ids) == []
    # the same file again changes nothing
    again = plot_files.import_plots(conn, world.coop["id"], data, keys=keys, farm_code=farm)
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_a_geojson_walk_becomes_the_outline(
    conn: psycopg.Connection, world: World, keys: KeyRing
) -> None:
    ring = square(LON, LAT, 0.03)["coordinates"][0]
    walk = [*ring[:-1], [ring[0][0], ring[0][1] + 0.0001]]  # ends 11 m from its start
    data = geojson(feature({"type": "LineString", "coordinates": walk}, name="P-WALK"))
    result = plot_files.import_plots(
        conn, world.coop["id"], data, keys=keys, farm_code=world.farm["code"]
    )
    (done,) = result["plots"]
    assert done["source"] == "GPS walk (LineString)" and done["geometry_type"] == "Polygon"


def test_every_refusal_is_named(conn: psycopg.Connection, world: World, keys: KeyRing) -> None:
    bowtie = {
        "type": "Polygon",
        "coordinates": [
            [[LON, LAT], [LON + 0.03, LAT + 0.03], [LON + 0.03, LAT], [LON, LAT + 0.03], [LON, LAT]]
        ],
    }
    slot = {
        "type": "Polygon",
        "coordinates": [
            [
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
        ],
    }
    pt = {"type": "Point", "coordinates": [LON, LAT]}
    data = geojson(
        feature(pt, PlotCode="A-1", Area="1.5"),  # quoted: the EU reads 0
        feature(pt, PlotCode="A-2"),  # a point without its area
        feature({"type": "MultiPolygon", "coordinates": []}, PlotCode="A-3"),
        feature(bowtie, PlotCode="A-4"),
        feature(pt, PlotCode="A-5", Area=4.5),  # a point above 4 ha
        feature(slot, PlotCode="A-6"),  # the 6-decimal cut makes two vertices one
        feature(pt, PlotCode="A-5", Area=1),  # the same code twice
        feature(pt, Area=1),  # no code
        feature(pt, PlotCode="A-9", Area=1, FarmCode="NO-SUCH-FARM"),
        feature(square(LON, LAT), PlotCode="P-1", FarmCode="F-OTHER"),
    )
    refusals = refused(conn, world, keys, data, farm_code=world.farm["code"])
    rules = {r["feature"]: r["rule"] for r in refusals}
    assert rules == {
        "feature 1 (A-1)": "area_not_a_number",
        "feature 2 (A-2)": "point_area_missing",
        "feature 3 (A-3)": "geometry_type",
        "feature 4 (A-4)": "polygon_self_intersection",
        "feature 5 (A-5)": "polygon_required",
        "feature 6 (A-6)": "cut_duplicate_vertex",
        "feature 7 (A-5)": "duplicate_plot_code",
        "feature 8": "plot_code_missing",
        "feature 9 (A-9)": "farm_unknown",
        "feature 10 (P-1)": "farm_unknown",
    }
    assert all(r["message"] for r in refusals)


def test_a_plot_is_not_moved_to_another_farm(
    conn: psycopg.Connection, world: World, keys: KeyRing
) -> None:
    other = plot_files.registry.create_farm(conn, world.coop["id"], "F-2", keys=keys)
    data = geojson(feature(square(LON, LAT), PlotCode="P-1", FarmCode=other["code"], Area=1))
    (refusal,) = refused(conn, world, keys, data)
    assert refusal["rule"] == "plot_farm_mismatch"


def test_a_new_plot_needs_a_farm(conn: psycopg.Connection, world: World, keys: KeyRing) -> None:
    data = geojson(feature(square(LON, LAT), PlotCode="P-NEW", Area=1))
    (refusal,) = refused(conn, world, keys, data)
    assert refusal["rule"] == "farm_missing"
    with pytest.raises(NotFound):
        plot_files.import_plots(conn, world.coop["id"], data, keys=keys, farm_code="NOPE")


def test_another_cooperatives_farm_is_unknown(
    conn: psycopg.Connection, world: World, keys: KeyRing
) -> None:
    other = make_world(conn, keys=keys, trees=0)
    data = geojson(feature(square(LON, LAT), PlotCode="P-X", Area=1, FarmCode=other.farm["code"]))
    (refusal,) = refused(conn, world, keys, data)
    assert refusal["rule"] == "farm_unknown"


# --- KML --------------------------------------------------------------------------------------


KML = """<?xml version="1.0" encoding="UTF-8"?>
<kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2">
<Document><Folder>
  <Placemark><name>K-RING</name>
    <ExtendedData><Data name="FarmCode"><value>{farm}</value></Data></ExtendedData>
    <Polygon>
      <outerBoundaryIs><LinearRing><coordinates>
        108.05,12.68,500 108.08,12.68,500 108.08,12.71,500 108.05,12.71,500 108.05,12.68,500
      </coordinates></LinearRing></outerBoundaryIs>
      <innerBoundaryIs><LinearRing><coordinates>
        108.06,12.69 108.06,12.70 108.07,12.70 108.07,12.69 108.06,12.69
      </coordinates></LinearRing></innerBoundaryIs>
    </Polygon>
  </Placemark>
  <Placemark><name>K-PT</name>
    <ExtendedData><SchemaData><SimpleData name="Area">0.8</SimpleData></SchemaData></ExtendedData>
    <Point><coordinates>108.051,12.681,480</coordinates></Point>
  </Placemark>
  <Placemark><name>K-TRACK</name>
    <gx:Track>
      <gx:coord>108.09 12.68 500</gx:coord><gx:coord>108.091 12.68 500</gx:coord>
      <gx:coord>108.091 12.681 500</gx:coord><gx:coord>108.09 12.681 500</gx:coord>
      <gx:coord>108.09 12.68001 500</gx:coord>
    </gx:Track>
  </Placemark>
</Folder></Document>
</kml>
"""


def test_kml_placemarks(conn: psycopg.Connection, world: World, keys: KeyRing) -> None:
    data = KML.format(farm=world.farm["code"]).encode()
    result = plot_files.import_plots(
        conn,
        world.coop["id"],
        data,
        keys=keys,
        filename="plots.kml",
        farm_code=world.farm["code"],
    )
    by_code = {p["code"]: p for p in result["plots"]}
    assert set(by_code) == {"K-RING", "K-PT", "K-TRACK"}
    ring = conn.execute(
        "select geometry from plots where id = %s", (by_code["K-RING"]["plot_id"],)
    ).fetchone()["geometry"]
    assert len(ring["coordinates"]) == 2  # stored with its hole; the export cuts it away
    assert by_code["K-PT"]["area_ha"] == 0.8 and by_code["K-PT"]["geometry_type"] == "Point"
    assert by_code["K-TRACK"]["source"] == "GPS walk (KML gx:Track)"


def test_kml_refusals(conn: psycopg.Connection, world: World, keys: KeyRing) -> None:
    data = b"""<kml xmlns="http://www.opengis.net/kml/2.2"><Document>
      <Placemark><name>K-1</name><MultiGeometry><Point><coordinates>108.05,12.68</coordinates></Point>
        <Point><coordinates>108.06,12.68</coordinates></Point></MultiGeometry></Placemark>
      <Placemark><name>K-2</name><LineString><coordinates>108.05,12.68 108.06,12.68 108.06,12.69
      </coordinates></LineString></Placemark>
      <Placemark><name>K-3</name><Point><coordinates>108.05,12.68</coordinates></Point>
        <ExtendedData><Data name="Area"><value>one hectare</value></Data></ExtendedData></Placemark>
    </Document></kml>"""
    refusals = refused(conn, world, keys, data, farm_code=world.farm["code"])
    assert {r["code"]: r["rule"] for r in refusals} == {
        "K-1": "geometry_type",
        "K-2": "walk_not_closed",
        "K-3": "area_not_a_number",
    }


# --- GPX (a phone's GPS walk) ----------------------------------------------------------------


def gpx_walk(points: list[tuple[float, float]], name: str = "G-WALK") -> bytes:
    pts = "".join(f'<trkpt lat="{lat}" lon="{lon}"><ele>500</ele></trkpt>' for lon, lat in points)
    half = len(points) // 2
    segs = pts.split("</trkpt>")
    first = "</trkpt>".join(segs[:half]) + "</trkpt>"
    rest = "</trkpt>".join(segs[half:])
    return (
        '<?xml version="1.0"?><gpx version="1.1" creator="phone"'
        ' xmlns="http://www.topografix.com/GPX/1/1">'
        f'<wpt lat="12.682" lon="108.052"><name>G-PT</name><extensions><Area>0.5</Area>'
        "</extensions></wpt>"
        f"<trk><name>{name}</name><trkseg>{first}</trkseg><trkseg>{rest}</trkseg></trk></gpx>"
    ).encode()


def test_gpx_walk_around_a_plot(conn: psycopg.Connection, world: World, keys: KeyRing) -> None:
    # a walk round 3 ha, standing still at a corner, ending 8 m short of the start
    walk = [
        (LON, LAT),
        (LON + 0.0017, LAT),
        (LON + 0.0017, LAT),
        (LON + 0.0017, LAT + 0.0017),
        (LON, LAT + 0.0017),
        (LON, LAT + 0.00007),
    ]
    data = gpx_walk(walk)
    result = plot_files.import_plots(
        conn,
        world.coop["id"],
        data,
        keys=keys,
        content_type="application/gpx+xml",
        farm_code=world.farm["code"],
    )
    by_code = {p["code"]: p for p in result["plots"]}
    walked = by_code["G-WALK"]
    assert walked["source"] == "GPS walk (GPX track)" and walked["geometry_type"] == "Polygon"
    assert 3.0 < walked["area_ha"] < 3.6 and walked["export_kind"] == "Point"
    geometry = conn.execute(
        "select geometry from plots where id = %s", (walked["plot_id"],)
    ).fetchone()["geometry"]
    ring = geometry["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 6  # closed, the repeated corner dropped
    assert by_code["G-PT"]["area_ha"] == 0.5


def test_a_gpx_walk_that_does_not_come_back_is_refused(
    conn: psycopg.Connection, world: World, keys: KeyRing
) -> None:
    walk = [(LON, LAT), (LON + 0.002, LAT), (LON + 0.002, LAT + 0.002), (LON, LAT + 0.002)]
    refusals = refused(conn, world, keys, gpx_walk(walk), farm_code=world.farm["code"])
    (refusal,) = refusals
    assert refusal["rule"] == "walk_not_closed" and refusal["feature"] == "feature 2 (G-WALK)"
    assert "222 m" in refusal["message"]


# --- the file itself --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "content_type", "filename", "expected"),
    [
        (b"{}", "application/geo+json", None, "geojson"),
        (b"<kml/>", "application/vnd.google-earth.kml+xml; charset=utf-8", None, "kml"),
        (b"x", None, "walk.GPX", "gpx"),
        (b'\xef\xbb\xbf  {"type": "Point"}', "application/octet-stream", None, "geojson"),
        (b'<?xml version="1.0"?>\n<gpx version="1.1">', "text/xml", None, "gpx"),
        (b'<k:kml xmlns:k="http://www.opengis.net/kml/2.2">', None, None, "kml"),
    ],
)
def test_the_format_is_told(
    data: bytes, content_type: str | None, filename: str | None, expected: str
) -> None:
    assert plot_files.detect_format(data, content_type, filename) == expected


@pytest.mark.parametrize(
    "data",
    [
        b"%PDF-1.7 a plot map",
        b"",
        b'{"type": "FeatureCollection", "features": []}',
        b'<?xml version="1.0"?><!DOCTYPE kml [<!ENTITY a "aaaa">]><kml>&a;</kml>',
        b"<kml><Document>",
        b'{"type": "FeatureCollection", "features": [',
        b"<gpx></gpx>",
    ],
)
def test_what_is_not_a_plot_file_is_refused(data: bytes) -> None:
    with pytest.raises(ValidationFailed) as exc:
        plot_files.parse_plot_file(data)
    assert exc.value.details["field"] == "file"
