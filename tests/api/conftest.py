"""Fixtures of the API tests: the app on a fresh database and two cooperatives."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from coffeetrace.api.app import create_app
from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.api.builders import Tenant, make_tenant


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings.model_copy(update={"page_cache_recheck_s": 0.0}))


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def tenant_a(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    return make_tenant(conn, keys=keys)


@pytest.fixture
def tenant_b(conn: psycopg.Connection, keys: KeyRing) -> Tenant:
    return make_tenant(conn, keys=keys, gtin="08930000000026", lon=108.10)
