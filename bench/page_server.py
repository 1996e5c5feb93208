"""The server of `coffeetrace bench page`: the product's app, served as `coffeetrace api`
serves it, plus one endpoint that exists only here.

`GET /bench/ceiling` is an `async` handler answering constant bytes: the page's own bytes,
read once per worker process from the file named by COFFEETRACE_BENCH_CEILING_FILE (the
bench writes it after its first fetch of the page). It costs what the framework, the
server and the machine cost for an answer of the page's size and nothing else: the
ceiling the page is measured against.

Run as `python -m coffeetrace_bench.page_server PORT WORKERS`; settings come from the
environment like the product's.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Response

from coffeetrace.api.app import create_app
from coffeetrace.settings import get_settings

CEILING_PATH = "/bench/ceiling"
CEILING_FILE_ENV = "COFFEETRACE_BENCH_CEILING_FILE"
HTML = "text/html; charset=utf-8"


def create_bench_app() -> FastAPI:
    """create_app() with the ceiling endpoint mounted."""
    app = create_app()
    body: list[bytes] = []

    @app.get(CEILING_PATH, include_in_schema=False)
    async def ceiling() -> Response:
        if not body:
            source = os.environ.get(CEILING_FILE_ENV)
            body.append(Path(source).read_bytes() if source else b"")
        return Response(body[0], media_type=HTML)

    return app


def main(argv: list[str]) -> None:
    # imported here: coffeetrace.cli loads every installed command, this package's too,
    # which imports this module (a cycle if it were at the top)
    from coffeetrace.cli.api import uvicorn_options

    port, workers = int(argv[0]), int(argv[1])
    settings = get_settings()
    options = uvicorn_options(settings, host="127.0.0.1", port=port, workers=workers, verbose=False)
    uvicorn.run("coffeetrace_bench.page_server:create_bench_app", **options)


if __name__ == "__main__":
    main(sys.argv[1:])
