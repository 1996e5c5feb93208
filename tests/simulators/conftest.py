"""A broker of our own for the end-to-end simulator tests: the project's shipped Mosquitto
configuration (large in-flight and queue limits), so that what is measured is ingest,
not a machine broker's default limits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coffeetrace.embedded import EmbeddedBroker, free_port
from coffeetrace.settings import Settings


@pytest.fixture(scope="module")
def own_broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    broker = EmbeddedBroker(Path(tmp_path_factory.mktemp("sim-broker")), free_port())
    broker.start()
    try:
        yield broker.url
    finally:
        broker.stop()


@pytest.fixture
def sim_settings(settings: Settings, own_broker_url: str) -> Settings:
    return settings.model_copy(update={"mqtt_url": own_broker_url})
