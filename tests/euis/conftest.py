"""The local EU test server (soap_server.py), and settings and a client pointed at it.

Everything here needs the EU's schemas and example in ../shared/reference/eudr/, and skips
with the reason when that folder is not beside the checkout. Nothing reaches the internet:
the server listens on 127.0.0.1 and the client reads its WSDLs from the package.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coffeetrace.euis.client import EuisClient, EuisConfig
from coffeetrace.settings import Settings
from tests.conftest import SHARED
from tests.euis.soap_server import EuisTestServer

EUDR = SHARED / "reference" / "eudr"
EXAMPLE = EUDR / "examples" / "submit-dds-green-coffee.xml"
USERNAME = "ct-webservice-user"
# not ASCII: the digest hashes the key's UTF-8 bytes
AUTH_KEY = "test-Authentication-Key-ĐắkLắk-7c1f"


@pytest.fixture(scope="session")
def eudr_reference() -> Path:
    if not (EUDR / "xsd4-due-diligence-statement-v3.xsd").exists() or not EXAMPLE.exists():
        pytest.skip(
            f"the EU's EUDR schemas and example are not at {EUDR} (../shared/reference/eudr "
            "beside the checkout): the SOAP test server validates every request against them"
        )
    return EUDR


@pytest.fixture
def soap_server(eudr_reference: Path) -> Iterator[EuisTestServer]:
    server = EuisTestServer(eudr_reference, username=USERNAME, auth_key=AUTH_KEY)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def euis_settings(soap_server: EuisTestServer) -> Settings:
    return Settings(
        eudr_base_url=soap_server.base_url,
        eudr_username=USERNAME,
        eudr_auth_key=AUTH_KEY,
    )


@pytest.fixture
def client(euis_settings: Settings) -> Iterator[EuisClient]:
    with EuisClient(EuisConfig.from_settings(euis_settings)) as c:
        yield c


@pytest.fixture
def example_xml(eudr_reference: Path) -> bytes:
    return EXAMPLE.read_bytes()
