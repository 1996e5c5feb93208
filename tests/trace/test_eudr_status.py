"""plots_status, the public page's summary of a lot's EUDR geolocation, counts each
plot as the export describes it (eudr.plot_features)."""

from __future__ import annotations

from typing import Any

from coffeetrace.trace import eudr
from tests.factories import square

POINT = {"type": "Point", "coordinates": [108.05, 12.68]}


def plot(code: str, geometry: dict[str, Any], area_ha: float) -> dict[str, Any]:
    return {
        "code": code,
        "geometry": geometry,
        "area_ha": area_ha,
        "centroid_lon": 108.05,
        "centroid_lat": 12.68,
        "commune": None,
        "district": "Buôn Ma Thuột",
        "farm_district": None,
        "province": "Đắk Lắk",
        "country": "VN",
        "owner_name": None,
        "data_consent": False,
        "consent_withdrawn_at": None,
        "display_name": None,
        "display_name_consent": False,
        "farm_code": "F-1",
        "growing_area_code": None,
    }


def test_status_counts_plots_as_exported() -> None:
    plots = [
        plot("small-polygon", square(108.05, 12.68), 1.0),  # exported as a Point
        plot("small-point", POINT, 4.0),  # a Point up to 4 ha, itself
        plot("large", square(108.05, 12.68, 0.03), 9.0),  # a Polygon above 4 ha
    ]
    status = eudr.plots_status(plots)
    exported = [eudr.plot_features(p, "Coop")[0]["geometry"]["type"] for p in plots]
    assert exported == ["Point", "Point", "Polygon"]
    assert status["ok"] is True and status["plots"] == 3
    assert (status["points"], status["polygons"]) == (2, 1)
    assert status["point_max_area_ha"] == 4.0


def test_a_large_plot_without_a_polygon_is_a_problem_not_a_point() -> None:
    status = eudr.plots_status([plot("large", POINT, 5.0), plot("ok", POINT, 1.0)])
    assert status["ok"] is False
    assert status["problems"] == [{"plot": "large", "problem": "polygon_required"}]
    assert (status["points"], status["polygons"]) == (1, 0)
