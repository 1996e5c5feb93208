"""schemathesis hooks for the API's OpenAPI document: a strategy for each format it names
that schemathesis does not know, so that generated "valid" values are valid, and filters
dropping the requests schemathesis would send otherwise than it generated them (a
tool's quirk, not the API's; each filter says which).

Loaded by `st run` through schemathesis.toml (`hooks`) and by test_schemathesis.py. They
change what is generated, never what a check accepts.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

import schemathesis
from hypothesis import strategies as st


def with_check_digit(body: str) -> str:
    """`body` followed by its GS1 mod-10 check digit (weights 3, 1, 3... from the right)."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str(-total % 10)


# format "gtin": 14 digits whose last is the GS1 check digit (the schema's pattern says
# which lengths an operation takes; a GTIN-14 fits them all)
GTINS = st.from_regex(r"\A[0-9]{13}\Z").map(with_check_digit)
schemathesis.openapi.format("gtin", GTINS)

# format "gln": a GS1 Global Location Number, 13 digits whose last is the check digit
GLNS = st.from_regex(r"\A[0-9]{12}\Z").map(with_check_digit)
schemathesis.openapi.format("gln", GLNS)


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    """Drop a stateful step whose path names nothing, as two of schemathesis's inferred
    links make it: a null taken from a list ("GET /v1/devices" items without a tree ->
    GET /v1/trees/None: a null among several candidates is not skipped as a lone one
    is), and a path parameter that is its own URI template ("{gtin}": same-origin paths
    in bodies are taken for links, and /.well-known/gs1resolver lists path templates)."""
    return not any(
        value is None or value in (f"{{{name}}}", f"%7B{name}%7D")
        for name, value in (case.path_parameters or {}).items()
    )


@schemathesis.hook
def filter_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, object] | None
) -> bool:
    """Drop a generated path value that percent-decodes to one its pattern refuses
    ("a%0Ab" for a lot code, GS1 AI 10 allowing "%"): schemathesis takes "%0A" for an
    escape and sends the value decoded (a newline), so the server would judge another
    value than the one generated."""
    if context.operation is None:
        return True
    patterns = {
        parameter.name: parameter.definition.get("schema", {}).get("pattern")
        for parameter in context.operation.iter_parameters()
        if parameter.location.value == "path"
    }
    for name, value in (path_parameters or {}).items():
        pattern = patterns.get(name)
        if pattern and isinstance(value, str) and not re.search(pattern, unquote(value)):
            return False
    return True
