"""The simulated world: deterministic, and shaped like Đắk Lắk's smallholder coffee."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from biip.gtin import Gtin

from coffeetrace.simulators.geography import COFFEE_DISTRICTS, gs1_check_digit, gtin14
from coffeetrace.simulators.plan import CULTIVARS, WorldSpec, make_plan
from coffeetrace.trace.geometry import point_in_polygon, validate_plot_geometry

SPEC = WorldSpec(coop_code="plan-test", seed=7, farms=12, harvest_trees_per_plot=20)


def fingerprint(spec: WorldSpec) -> str:
    plan = make_plan(spec)
    h = hashlib.sha256()
    for farm in plan.farms:
        h.update(repr((farm.code, farm.display_name, farm.owner_name, farm.phone)).encode())
        for plot in farm.plots:
            h.update(
                repr(
                    (plot.code, plot.geometry, plot.area_ha, plot.altitude_m, plot.harvest_sample())
                ).encode()
            )
            for row in plot.tree_rows():
                h.update(repr(row).encode())
    h.update(repr([(d.id, d.kind, d.ts_format) for d in plan.devices]).encode())
    return h.hexdigest()


def test_same_seed_same_world_and_another_seed_another() -> None:
    assert fingerprint(SPEC) == fingerprint(SPEC)
    assert fingerprint(SPEC) != fingerprint(replace(SPEC, seed=8))


def test_farms_plots_and_trees_look_like_dak_lak() -> None:
    plan = make_plan(SPEC)
    assert len(plan.farms) == 12
    mean_ha = sum(f.area_ha for f in plan.farms) / len(plan.farms)
    assert 0.8 < mean_ha < 2.5  # about 1.5 ha per household
    consented = [f for f in plan.farms if f.consent]
    assert 0 < len(consented) < len(plan.farms)
    assert all(f.display_name for f in consented)
    assert all(f.display_name is None for f in plan.farms if not f.consent)
    assert len({f.code for f in plan.farms}) == len(plan.farms)
    districts = {d.name for d in COFFEE_DISTRICTS}
    for plot in plan.plots:
        validate_plot_geometry(plot.geometry, plot.area_ha)
        assert plot.district.name in districts
        assert 400 <= plot.altitude_m <= 900
        assert 12.4 < plot.shape.lat < 13.4 and 107.9 < plot.shape.lon < 108.6
        density = plot.tree_count / plot.area_ha
        assert 1_000 <= density <= 1_333, plot.code  # grid 1,111-1,333/ha, edges cut
        trees = list(plot.trees())
        assert len(trees) == plot.tree_count
        assert {t.cultivar for t in trees} <= set(CULTIVARS)
        assert all(point_in_polygon(t.lon, t.lat, plot.geometry) for t in trees[::97])
        assert all(1995 <= t.planted_on.year <= 2022 for t in trees)
        assert len({t.tag_code for t in trees}) == len(trees)


def test_devices_per_plot_farm_and_district() -> None:
    plan = make_plan(SPEC)
    kinds = [d.kind for d in plan.devices]
    assert kinds.count("soil_node") == len(plan.plots)
    assert kinds.count("harvest_scale") + kinds.count("phone") == len(plan.farms)
    assert kinds.count("weather_station") == len({f.district.name for f in plan.farms})
    # whole ids, as the registry qualifies them: "{coop code}.{own id}"
    assert all(
        d.id.startswith("plan-test.") and len(d.id.split(".", 1)[1]) <= 64 for d in plan.devices
    )
    assert len({d.id for d in plan.devices}) == len(plan.devices)


def test_exact_tree_count_for_scale_runs() -> None:
    plan = make_plan(WorldSpec(coop_code="plan-scale", trees=25_000))
    assert plan.tree_count == 25_000
    assert sum(1 for p in plan.plots for _ in p.tree_rows()) == 25_000


@pytest.mark.parametrize("prefix,ref", [("8936051", 1), ("8936051", 2), ("893605", 12345)])
def test_product_gtins_have_a_valid_check_digit(prefix: str, ref: int) -> None:
    gtin = gtin14(prefix, ref)
    assert len(gtin) == 14
    assert Gtin.parse(gtin).value.lstrip("0") == gtin.lstrip("0")
    wrong = gtin[:-1] + str((int(gtin[-1]) + 1) % 10)
    with pytest.raises(Exception):  # noqa: B017 - biip's own parse error type
        Gtin.parse(wrong)


def test_check_digit_known_value() -> None:
    # GS1's worked example: 629104150021 -> check digit 3
    assert gs1_check_digit("629104150021") == 3
