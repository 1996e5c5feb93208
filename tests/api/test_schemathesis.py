"""schemathesis against the running API's OpenAPI, every check schemathesis has.

Bounded: a few generated examples per operation, valid and invalid, with an admin key of
a cooperative that has lots, so ids in paths mostly miss (404) and invalid bodies are
refused (422); both must still be documented, well-formed answers, and a valid request
may only be refused where schemathesis.toml says why. `OPTIONS` on every path must list
the documented methods, and a short stateful run follows the links between operations.
`st run --checks all` (docs/api.md) is the deeper run of the same checks and exceptions.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from hypothesis.stateful import run_state_machine_as_test
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.core.parameters import ParameterLocation
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import allow_header_conformance

from coffeetrace.settings import Settings
from coffeetrace.trace.keys import KeyRing
from tests.api import schemathesis_hooks  # noqa: F401  (the "gtin" format's strategy)
from tests.api.builders import make_tenant
from tests.api.server import serve

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = int(os.environ.get("COFFEETRACE_SCHEMATHESIS_EXAMPLES", "5"))  # more: deeper run
STATEFUL_EXAMPLES = 8
FAST = hypothesis_settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def load_schema(base: str) -> schemathesis.BaseSchema:
    """The served OpenAPI with the repository's schemathesis.toml (its per-operation
    exceptions), every check enabled; DELETE left out: revoking the test's own admin key
    would turn the rest into 401s."""
    config = SchemathesisConfig.from_path(ROOT / "schemathesis.toml")
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json", config=config)
    return schema.exclude(method="DELETE")


def modes_for(operation: schemathesis.APIOperation) -> list[GenerationMode]:
    """Valid requests for every operation; invalid ones where a body or a query can be
    broken (invalid path values are the `st run` coverage phase's: generating them here
    costs seconds an operation)."""
    locations = {parameter.location for parameter in operation.iter_parameters()}
    if operation.body or ParameterLocation.QUERY in locations:
        return [GenerationMode.POSITIVE, GenerationMode.NEGATIVE]
    return [GenerationMode.POSITIVE]


def test_every_check_is_enabled() -> None:
    """schemathesis.toml turns no check off: it only widens expected statuses."""
    load_all_checks()
    config = SchemathesisConfig.from_path(ROOT / "schemathesis.toml")
    project = config.projects.get_default()
    names = CHECKS.get_all_names()
    assert len(names) >= 14
    assert all(project.checks_config_for().get_by_name(name=name).enabled for name in names)


def test_api_conforms_to_its_openapi(
    settings: Settings, conn: psycopg.Connection, keys: KeyRing
) -> None:
    load_all_checks()
    tenant = make_tenant(conn, keys=keys)
    headers = tenant.auth("admin")
    failures: list[str] = []
    statuses: list[int] = []
    with serve(settings) as base:
        schema = load_schema(base)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 35
        for operation in operations:
            for mode in modes_for(operation):
                # the key is given, not generated: no invalid case is invalid by its key alone
                @given(case=operation.as_strategy(generation_mode=mode, headers=headers))
                @FAST
                def check(case: schemathesis.Case) -> None:
                    # no `checks=`: every check the configuration enables, which is all
                    response = case.call_and_validate(base_url=base, headers=headers)
                    statuses.append(response.status_code)

                try:
                    check()
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing in the request to break
                except (Exception, FailureGroup) as exc:  # collect them all, then report
                    label = f"{operation.method.upper()} {operation.path} ({mode.value})"
                    failures.append(f"{label}: {exc}"[:2000])
        for path in sorted({operation.path for operation in operations}):
            case = next(op for op in operations if op.path == path).Case()
            url = base + re.sub(r"\{[^}]+\}", "x", path)  # any value: OPTIONS does not look
            response = requests.options(url, timeout=10)
            try:
                case.validate_response(response, checks=[allow_header_conformance])
            except (Exception, FailureGroup) as exc:
                failures.append(f"OPTIONS {path}: {exc}"[:2000])
    assert not failures, "\n\n".join(failures)
    # the run reached the handlers: successes as well as refusals, and no 401 (key works)
    assert len(statuses) >= 2 * len(operations)
    assert sum(200 <= s < 300 for s in statuses) >= 20 and 401 not in statuses


def test_links_between_operations_hold(
    settings: Settings, conn: psycopg.Connection, keys: KeyRing
) -> None:
    """A short stateful run: a resource one answer names is there in the next request."""
    tenant = make_tenant(conn, keys=keys)
    headers = tenant.auth("admin")
    with serve(settings) as base:
        machine = load_schema(base).as_state_machine()

        class Authorized(machine):  # type: ignore[misc,valid-type]
            def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, object]:
                return {"base_url": base, "headers": headers}

        run_state_machine_as_test(
            Authorized,
            settings=hypothesis_settings(
                max_examples=STATEFUL_EXAMPLES,
                stateful_step_count=6,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            ),
        )
