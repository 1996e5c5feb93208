"""A broker of our own for the end-to-end simulator tests: the project's shipped Mosquitto
configuration (large in-flight and queue limits), so that what is measured is ingest,
not a machine broker's default limits."""

from __future__ import annotations

import pytest

from coffeetrace.embedded import EmbeddedBroker
from coffeetrace.settings import Settings


@pytest.fixture
def own_broker_url(shipped_broker: EmbeddedBroker) -> str:
    return shipped_broker.url


@pytest.fixture
def sim_settings(settings: Settings, own_broker_url: str) -> Settings:
    return settings.model_copy(update={"mqtt_url": own_broker_url})
