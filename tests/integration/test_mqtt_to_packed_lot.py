"""The Trace issue's "done when", end to end: harvests published over MQTT by a phone at the
tree, stored by the ingest service, built into a lot, dried, hulled, graded into two grades,
blended with another farm's lot, roasted and packed; the packed lot traces back to the
exact trees with the right shares and forward from each of them, and its exports hold."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import jsonschema
import psycopg
import pytest

from coffeetrace.credentials import new_device_secret
from coffeetrace.embedded import EmbeddedBroker
from coffeetrace.ingest.service import IngestService
from coffeetrace.settings import Settings
from coffeetrace.trace import epcis, eudr, registry, verification
from coffeetrace.trace.keys import KeyRing
from tests.conftest import SHARED
from tests.factories import World
from tests.ingest.helpers import publish_all, wait_until
from tests.trace.chain import build_chain, check_backward_shares, check_forward_reach


@pytest.fixture
def ingest(settings: Settings, shipped_broker: EmbeddedBroker) -> Iterator[Settings]:
    own = settings.model_copy(update={"mqtt_url": shipped_broker.url})
    service = IngestService(own)
    service.start()
    try:
        yield own
    finally:
        service.stop()


def harvest_over_mqtt(settings: Settings) -> Any:
    def harvest(
        conn: psycopg.Connection, world: World, tree: dict[str, Any], kg: float, time: datetime
    ) -> Any:
        if "phone" not in world.devices:
            world.devices["phone"] = registry.register_device(
                conn, world.coop["id"], "phone", secret=new_device_secret()
            )
            # the phone was handed out before the season's first picking
            conn.execute(
                "update devices set registered_at = %s where id = %s",
                (time.replace(month=1, day=1), world.devices["phone"].username),
            )
        conn.commit()  # ingest sees the registry once it is committed
        phone = world.devices["phone"].username
        msg_id = uuid.uuid4().hex
        payload = {
            "msg_id": msg_id,
            "ts": time.isoformat(),
            "tree": tree["tag_code"],
            "cherry_kg": kg,
            "ripeness_pct": 90,
            "picker": "PK-0007",
        }
        publish_all(
            settings.effective_mqtt_url(),
            [(f"{settings.topic_prefix}/devices/{phone}/harvest", json.dumps(payload))],
        )
        query = "select id from harvest_events where device_id = %s and msg_id = %s"
        assert wait_until(
            lambda: conn.execute(query, (phone, msg_id)).fetchone() is not None, timeout=30
        ), "the harvest did not reach the store"
        row = conn.execute(query, (phone, msg_id)).fetchone()
        assert row is not None
        return row["id"]

    return harvest


def test_harvests_over_mqtt_trace_to_the_packed_lot(
    conn: psycopg.Connection, ingest: Settings, keys: KeyRing
) -> None:
    built = build_chain(conn, keys=keys, harvest=harvest_over_mqtt(ingest))
    stored = conn.execute(
        "select count(*) as n, sum(cherry_kg) as kg from harvest_events"
        " where picker_code = 'PK-0007'"
    ).fetchone()
    assert stored == {"n": 4, "kg": 50}
    check_backward_shares(conn, built)
    check_forward_reach(conn, built)

    doc = epcis.export_epcis(conn, built["packed"]["id"], "https://trace.example.vn")
    assert doc["type"] == "EPCISDocument"
    schema_path = SHARED / "reference" / "epcis" / "EPCIS-JSON-Schema.json"
    if schema_path.exists():  # GS1's schema sits beside the checkout in CI
        validator = jsonschema.Draft7Validator(
            json.loads(schema_path.read_text()),
            format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER,
        )
        assert not list(validator.iter_errors(doc))
    features = eudr.export_eudr(conn, built["packed"]["id"])["features"]
    assert {f["geometry"]["type"] for f in features} == {"Point", "Polygon"}

    assert verification.verify_lot(conn, built["packed"]["id"], keys=keys)["ok"] is True
    event = conn.execute(
        "select seq, kind from trace_events where kind = 'transformation' order by seq limit 1"
    ).fetchone()
    assert event is not None
    conn.execute(
        "update trace_events set payload = jsonb_set(payload, '{step}', '\"washing\"')"
        " where seq = %s",
        (event["seq"],),
    )
    report = verification.verify_lot(conn, built["packed"]["id"], keys=keys)
    assert report["ok"] is False
    assert event["seq"] in {p["seq"] for p in report["problems"]}
