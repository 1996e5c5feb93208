"""The chain's public URLs from outside: proofs that check against the checkpoint they
name, and hostile or wrong input answered with a 4xx and a reason, never a 5xx."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from coffeetrace.trace import merkle
from tests.api.builders import Tenant


def test_proofs_check_against_the_published_checkpoint(
    client: TestClient, tenant_a: Tenant
) -> None:
    code = tenant_a.world.coop["code"]
    cp = client.get(f"/chain/{code}/checkpoint").json()
    size, root = cp["body"]["tree_size"], bytes.fromhex(cp["body"]["root_hash"])
    history = client.get(f"/chain/{code}/checkpoints?limit=2").json()["checkpoints"]
    assert history[0]["id"] == cp["id"]
    older = history[1]["body"]
    assert older["tree_size"] < size
    proof = client.get(
        f"/chain/{code}/consistency?first={older['tree_size']}&second={size}"
    ).json()["proof"]
    assert merkle.verify_consistency(
        older["tree_size"],
        size,
        bytes.fromhex(older["root_hash"]),
        root,
        [bytes.fromhex(p) for p in proof],
    )
    seq = cp["body"]["head_seq"]
    inc = client.get(f"/chain/{code}/inclusion?seq={seq}&tree_size={size}").json()
    leaf = merkle.leaf_hash(bytes.fromhex(inc["hash"]))
    assert merkle.verify_inclusion(
        inc["position"], size, leaf, [bytes.fromhex(p) for p in inc["proof"]], root
    )


@pytest.mark.parametrize(
    "path",
    [
        "/chain/{code}/consistency?first=0&second=1",
        "/chain/{code}/consistency?first=2&second=1",
        "/chain/{code}/consistency?first=1&second=99999999",
        "/chain/{code}/consistency?first=1&second=99999999999999999999999",
        "/chain/{code}/consistency?first=abc&second=1",
        "/chain/{code}/consistency?first=-1&second=1",
        "/chain/{code}/inclusion?seq=1&tree_size=99999999",
        "/chain/{code}/inclusion?seq=0&tree_size=1",
        "/chain/{code}/inclusion?seq=%00&tree_size=1",
        "/chain/{code}/inclusion?seq=999999999&tree_size=1",
        "/chain/{code}/checkpoints?before=0",
        "/chain/{code}/checkpoints?limit=100000",
        "/chain/no-such-coop/checkpoint",
        "/chain/%00/checkpoint",
        "/chain/%ED%A0%80/checkpoint",
        "/chain/" + "a" * 5000 + "/checkpoint",
    ],
)
def test_hostile_chain_queries_get_a_4xx_with_a_reason(
    client: TestClient, tenant_a: Tenant, path: str
) -> None:
    response = client.get(path.format(code=tenant_a.world.coop["code"]))
    assert 400 <= response.status_code < 500, response.text
    body: dict[str, Any] = response.json()
    assert body.get("message") or body.get("error")


def test_the_other_tenants_chain_is_public_but_only_its_own(
    client: TestClient, tenant_a: Tenant, tenant_b: Tenant
) -> None:
    a = client.get(f"/chain/{tenant_a.world.coop['code']}/checkpoint").json()
    b = client.get(f"/chain/{tenant_b.world.coop['code']}/checkpoint").json()
    assert a["body"]["cooperative_id"] == str(tenant_a.world.coop["id"])
    assert b["body"]["cooperative_id"] == str(tenant_b.world.coop["id"])
    # a seq of A's chain is not an event of B's
    seq = a["body"]["head_seq"]
    size = b["body"]["tree_size"]
    wrong = client.get(f"/chain/{tenant_b.world.coop['code']}/inclusion?seq={seq}&tree_size={size}")
    assert wrong.status_code == 404
